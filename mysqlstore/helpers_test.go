package mysqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sessionkit/sessions/mysqlstore"
)

const defaultDSN = "root@tcp(127.0.0.1:3306)/test"

// variant is a connection configuration the store must work under: the
// store promises to need no particular DSN parameter or sql_mode.
type variant struct {
	name  string
	apply func(*mysql.Config)
	// optional variants are skipped when the server rejects them (MySQL
	// has no SIMULTANEOUS_ASSIGNMENT mode).
	optional bool
}

var variants = []variant{
	{name: "default", apply: func(*mysql.Config) {}},
	{name: "clientFoundRows", apply: func(c *mysql.Config) { c.ClientFoundRows = true }},
	{name: "interpolateParams", apply: func(c *mysql.Config) { c.InterpolateParams = true }},
	{name: "nonStrictMode", apply: func(c *mysql.Config) { setParam(c, "sql_mode", "''") }},
	{name: "simultaneousAssignment", optional: true, apply: func(c *mysql.Config) {
		setParam(c, "sql_mode", "'STRICT_TRANS_TABLES,SIMULTANEOUS_ASSIGNMENT'")
	}},
}

func setParam(c *mysql.Config, k, v string) {
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	c.Params[k] = v
}

type dbResult struct {
	db  *sql.DB
	err error
}

var (
	dbsMu sync.Mutex
	dbs   = map[string]*dbResult{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, r := range dbs {
		if r.db != nil {
			_ = r.db.Close()
		}
	}
	os.Exit(code)
}

func baseDSN() string {
	if dsn := os.Getenv("SESSIONS_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return defaultDSN
}

// openVariant returns the shared *sql.DB for a variant, or an error if the
// server cannot be reached with it.
func openVariant(v variant) (*sql.DB, error) {
	dbsMu.Lock()
	defer dbsMu.Unlock()
	if r, ok := dbs[v.name]; ok {
		return r.db, r.err
	}
	r := &dbResult{}
	dbs[v.name] = r
	cfg, err := mysql.ParseDSN(baseDSN())
	if err != nil {
		r.err = fmt.Errorf("parse DSN: %w", err)
		return nil, r.err
	}
	v.apply(cfg)
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		r.err = err
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		r.err = fmt.Errorf("MySQL at %q (%s): %w", baseDSN(), v.name, err)
		return nil, r.err
	}
	r.db = db
	return db, nil
}

// testDB returns the default-variant database, skipping the test (or
// failing it under SESSIONS_REQUIRE_SERVICES=1) when MySQL is unreachable.
func testDB(tb testing.TB) *sql.DB {
	tb.Helper()
	return variantDB(tb, variants[0])
}

func variantDB(tb testing.TB, v variant) *sql.DB {
	tb.Helper()
	// Reachability is decided by the default variant.
	if _, err := openVariant(variants[0]); err != nil {
		if os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("MySQL required (SESSIONS_REQUIRE_SERVICES=1) but unreachable: %v", err)
		}
		tb.Skipf("MySQL unreachable, skipping (set SESSIONS_MYSQL_DSN, or SESSIONS_REQUIRE_SERVICES=1 to fail): %v", err)
	}
	db, err := openVariant(v)
	if err != nil {
		if v.optional {
			tb.Skipf("server does not accept variant %s: %v", v.name, err)
		}
		tb.Fatalf("variant %s: %v", v.name, err)
	}
	return db
}

// forEachVariant runs f in a parallel subtest per connection variant.
func forEachVariant(t *testing.T, f func(t *testing.T, db *sql.DB)) {
	t.Helper()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f(t, variantDB(t, v))
		})
	}
}

// tableName derives a valid, unique table name from a test name.
func tableName(testName string) string {
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

// newStore returns a store on a fresh table named after the test, dropped
// when the test ends, so tests can run in parallel.
func newStore(tb testing.TB, db *sql.DB, opts *mysqlstore.Options) (*mysqlstore.Store, string) {
	tb.Helper()
	var o mysqlstore.Options
	if opts != nil {
		o = *opts
	}
	o.Table = tableName(tb.Name())
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS `"+o.Table+"`"); err != nil {
		tb.Fatalf("drop table: %v", err)
	}
	s, err := mysqlstore.New(db, &o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := s.CreateTable(ctx); err != nil {
		tb.Fatalf("CreateTable: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		if _, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS `"+o.Table+"`"); err != nil {
			tb.Errorf("drop table %s: %v", o.Table, err)
		}
	})
	return s, "`" + o.Table + "`"
}

// testID returns a well-formed id (lower-case hex SHA-256) unique to the
// test and n.
func testID(tb testing.TB, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tb.Name(), n))
	return hex.EncodeToString(sum[:])
}

func unhex(id string) []byte {
	b, err := hex.DecodeString(id)
	if err != nil {
		panic(err)
	}
	return b
}
