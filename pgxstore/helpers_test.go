package pgxstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionkit/sessions/pgxstore"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	poolOnce sync.Once
	pool     *pgxpool.Pool
	poolErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pool != nil {
		pool.Close()
	}
	os.Exit(code)
}

// testPool returns the shared pool, skipping the test (or failing it under
// SESSIONS_REQUIRE_SERVICES=1) when PostgreSQL is unreachable.
func testPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	poolOnce.Do(func() {
		dsn := os.Getenv("SESSIONS_POSTGRES_DSN")
		if dsn == "" {
			dsn = defaultDSN
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := pgxpool.New(ctx, dsn)
		if err == nil {
			err = p.Ping(ctx)
			if err != nil {
				p.Close()
			}
		}
		if err != nil {
			poolErr = fmt.Errorf("PostgreSQL at %q: %w", dsn, err)
			return
		}
		pool = p
	})
	if poolErr != nil {
		if os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("PostgreSQL required (SESSIONS_REQUIRE_SERVICES=1) but unreachable: %v", poolErr)
		}
		tb.Skipf("PostgreSQL unreachable, skipping (set SESSIONS_POSTGRES_DSN, or SESSIONS_REQUIRE_SERVICES=1 to fail): %v", poolErr)
	}
	return pool
}

// testSchema creates a schema named after the test, dropped (with its
// tables) when the test ends, so tests can run in parallel.
func testSchema(tb testing.TB, p *pgxpool.Pool) string {
	tb.Helper()
	name := schemaName(tb.Name())
	ctx := context.Background()
	if _, err := p.Exec(ctx, `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`); err != nil {
		tb.Fatalf("drop schema: %v", err)
	}
	if _, err := p.Exec(ctx, `CREATE SCHEMA "`+name+`"`); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := p.Exec(context.Background(), `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// schemaName derives a valid, unique identifier from a test name.
func schemaName(testName string) string {
	sum := sha256.Sum256([]byte(testName))
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(sum[:6]))
	return b.String()
}

// newStore returns a store on a fresh table in the test's own schema.
func newStore(tb testing.TB, opts *pgxstore.Options) (*pgxstore.Store, *pgxpool.Pool, string) {
	tb.Helper()
	p := testPool(tb)
	var o pgxstore.Options
	if opts != nil {
		o = *opts
	}
	o.Schema = testSchema(tb, p)
	s, err := pgxstore.New(p, &o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		tb.Fatalf("CreateTable: %v", err)
	}
	table := o.Table
	if table == "" {
		table = pgxstore.DefaultTable
	}
	return s, p, `"` + o.Schema + `"."` + table + `"`
}

// testID returns a well-formed id (lower-case hex SHA-256) unique to the
// test and n.
func testID(tb testing.TB, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tb.Name(), n))
	return hex.EncodeToString(sum[:])
}

// countingDB wraps a DB and counts the statements sent through it (Exec,
// Query and QueryRow calls).
type countingDB struct {
	pgxstore.DB
	mu    sync.Mutex
	execs int
}

func (c *countingDB) add() {
	c.mu.Lock()
	c.execs++
	c.mu.Unlock()
}

func (c *countingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c.add()
	return c.DB.Exec(ctx, sql, args...)
}

func (c *countingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.add()
	return c.DB.Query(ctx, sql, args...)
}

func (c *countingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.add()
	return c.DB.QueryRow(ctx, sql, args...)
}

func (c *countingDB) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.execs
}

var _ pgxstore.DB = (pgx.Tx)(nil)
var _ pgxstore.DB = (*pgx.Conn)(nil)
var _ pgxstore.DB = (*pgxpool.Pool)(nil)
