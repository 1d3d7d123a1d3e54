package benchmarks

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for scs's postgresstore
	"github.com/redis/go-redis/v9"
)

// The local services, overridable with the same variables as the store
// modules' tests.
const (
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultMySQLDSN    = "root@tcp(127.0.0.1:3306)/test"
)

func redisURL() string    { return envOr("SESSIONS_REDIS_URL", defaultRedisURL) }
func postgresDSN() string { return envOr("SESSIONS_POSTGRES_DSN", defaultPostgresDSN) }
func mysqlDSN() string    { return envOr("SESSIONS_MYSQL_DSN", defaultMySQLDSN) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// runID makes the keys and tables of one process unique, so that runs
// sharing a server never see each other's data.
var runID = func() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}()

// reachability remembers, per service, whether it answered a ping.
var (
	reachMu sync.Mutex
	reach   = map[string]error{}
)

// requireService skips tb (or fails it under SESSIONS_REQUIRE_SERVICES=1)
// when the named service does not answer.
func requireService(tb testing.TB, name string) {
	tb.Helper()
	reachMu.Lock()
	err, known := reach[name]
	if !known {
		err = ping(name)
		reach[name] = err
	}
	reachMu.Unlock()
	if err == nil {
		return
	}
	if os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" {
		tb.Fatalf("%s required (SESSIONS_REQUIRE_SERVICES=1) but unreachable: %v", name, err)
	}
	tb.Skipf("%s unreachable, skipping (SESSIONS_REQUIRE_SERVICES=1 makes this fail): %v", name, err)
}

func ping(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	switch name {
	case "redis":
		opts, err := redis.ParseURL(redisURL())
		if err != nil {
			return err
		}
		c := redis.NewClient(opts)
		defer c.Close()
		return c.Ping(ctx).Err()
	case "postgres":
		p, err := pgxpool.New(ctx, postgresDSN())
		if err != nil {
			return err
		}
		defer p.Close()
		return p.Ping(ctx)
	case "mysql":
		db, err := sql.Open("mysql", mysqlDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	}
	return fmt.Errorf("unknown service %q", name)
}

// newRedisClient returns a go-redis client for the local server.
func newRedisClient() (*redis.Client, error) {
	opts, err := redis.ParseURL(redisURL())
	if err != nil {
		return nil, err
	}
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil
}

// deleteRedisPrefix removes every key starting with prefix. SCAN is fine
// for cleaning up after a benchmark; a store never uses it.
func deleteRedisPrefix(c *redis.Client, prefix string) error {
	ctx := context.Background()
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// newPgxPool returns a pool for the local PostgreSQL server.
func newPgxPool() (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return pgxpool.New(ctx, postgresDSN())
}

// newSQLDB opens a database/sql handle with the given driver, sized like
// the default pgx pool so that no library waits for a connection more than
// another.
func newSQLDB(driver, dsn string) (*sql.DB, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(8)
	return db, nil
}

// tableName returns a table name unique to this process and purpose.
func tableName(purpose string) string {
	return "bench_" + runID + "_" + strings.NewReplacer("-", "_", "/", "_").Replace(purpose)
}
