package reliability

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/boltstore"
	"github.com/sessionkit/sessions/cachestore"
	"github.com/sessionkit/sessions/dynamostore"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/mysqlstore"
	"github.com/sessionkit/sessions/pgxstore"
	"github.com/sessionkit/sessions/redisstore"
	"github.com/sessionkit/sessions/sqlitestore"
)

// Every store, plain and behind the cache, goes through the same runs. The
// services are the local ones of the store modules' tests, overridable
// with the same environment variables; a store whose service is
// unreachable is skipped, or fails under SESSIONS_REQUIRE_SERVICES=1.

// linStores are the stores, each a factory of a fresh, empty store (its
// own table, key prefix or file) that the test cleans up.
var linStores = []struct {
	name string
	open func(tb testing.TB) sessions.Store
	// short divides the operations of the short form, for the slow stores
	// (dynalite, SQLite's single writer), to keep CI within its budget.
	short int
}{
	{"memstore", linMemstore, 1},
	{"sqlite", linSQLite, 2},
	{"postgres", linPostgres, 1},
	{"mariadb", linMariaDB, 1},
	{"redis", linRedis, 1},
	{"redis-cluster", linRedisCluster, 1},
	{"dynamodb", linDynamoDB, 3},
	{"bbolt", linBolt, 1},
}

// linStoreConfig is the configuration of the runs on a store.
func linStoreConfig(short int) linConfig {
	cfg := linDefaultConfig()
	if !linLong() && os.Getenv("SESSIONS_LIN_OPS") == "" {
		cfg.ops /= short
	}
	return cfg
}

// TestLinearizability checks a history of every store, plain (one
// instance) and behind the cache (one instance: no staleness allowed).
func TestLinearizability(t *testing.T) {
	for _, s := range linStores {
		t.Run(s.name, func(t *testing.T) {
			linExpect(t, s.open(t), linStoreConfig(s.short))
		})
		t.Run(s.name+"/cached", func(t *testing.T) {
			back := s.open(t)
			st, err := cachestore.New(linMemstore(t), back, &cachestore.Options{MaxAge: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			linExpect(t, st, linStoreConfig(s.short))
		})
	}
}

// linCacheMaxAge is the cache's MaxAge in the two-instance runs: the model
// allows reads exactly this staleness.
const linCacheMaxAge = 100 * time.Millisecond

// TestLinearizabilityCacheWindow checks two instances, each with its own
// cachestore front on one shared back, against the model that allows
// reads the cache's documented staleness (MaxAge) and no more, and writes
// none.
func TestLinearizabilityCacheWindow(t *testing.T) {
	for _, s := range linStores {
		t.Run(s.name, func(t *testing.T) {
			back := s.open(t)
			cfg := linStoreConfig(s.short)
			// No idle timeout: a read that touches drops the front's entry,
			// and the reads must come from the fronts to be stale.
			cfg.touch = false
			urls := linServers(t, 2, cfg.touch, func(int) sessions.Store { return linCached(t, back, linCacheMaxAge) })
			// The windowed model's search grows fast with a history's
			// length: a long run is many histories of linWindowChunk
			// operations, each checked on its own.
			total := cfg.ops
			for done := 0; done < total; done += cfg.ops {
				cfg.ops = min(linWindowChunk, total-done)
				linWindowRound(t, cfg, urls)
			}
		})
	}
}

// linWindowChunk is the longest history the cache-window runs check at
// once.
const linWindowChunk = 300

// linWindowRound records and checks one history of the cache-window run.
func linWindowRound(t *testing.T, cfg linConfig, urls []string) {
	t.Helper()
	h := linRun(t, cfg, urls)
	linSummary(t, h)
	res, _ := linCheck(t, h, linCacheMaxAge, "")
	if res == porcupine.Unknown {
		// The search has a heavy tail (one history of 300 operations in
		// about 25 timed out here): a second history decides.
		t.Logf("checker timed out; recording a second history")
		h = linRun(t, cfg, urls)
		res, _ = linCheck(t, h, linCacheMaxAge, "")
	}
	if res != porcupine.Ok {
		t.Fatalf("history not linearizable within the cache's staleness of %v (%s)", linCacheMaxAge, res)
	}
	// For the record: whether the history needed the window at all.
	// (Proving a history illegal can take long: bounded, Unknown then.)
	strict := porcupine.CheckOperationsTimeout(linModel(0, 0), h, 5*time.Second)
	t.Logf("without the window: %s (Illegal: the run served stale reads)", strict)
}

// linCached returns a cachestore with a fresh memstore front on back.
func linCached(tb testing.TB, back sessions.Store, maxAge time.Duration) sessions.Store {
	tb.Helper()
	st, err := cachestore.New(linMemstore(tb), back, &cachestore.Options{MaxAge: maxAge})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// linRunID makes the tables and keys of one test process unique.
var linRunID = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// linName returns a table name or key prefix unique to tb.
func linName(tb testing.TB) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "lin_" + linRunID + "_" + hex.EncodeToString(b[:])
}

func linEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// linUnreachable skips tb, or fails it under SESSIONS_REQUIRE_SERVICES=1.
func linUnreachable(tb testing.TB, service string, err error) {
	tb.Helper()
	if os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" {
		tb.Fatalf("%s required (SESSIONS_REQUIRE_SERVICES=1) but unreachable: %v", service, err)
	}
	tb.Skipf("%s unreachable, skipping (SESSIONS_REQUIRE_SERVICES=1 makes this fail): %v", service, err)
}

func linCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

func linMemstore(tb testing.TB) sessions.Store {
	tb.Helper()
	st, err := memstore.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func linSQLite(tb testing.TB) sessions.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "sessions.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	st, err := sqlitestore.New(db, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := linCtx()
	defer cancel()
	if err := st.CreateTable(ctx); err != nil {
		tb.Fatal(err)
	}
	return st
}

func linPostgres(tb testing.TB) sessions.Store {
	tb.Helper()
	dsn := linEnv("SESSIONS_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	ctx, cancel := linCtx()
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err == nil {
		if err = pool.Ping(ctx); err != nil {
			pool.Close()
		}
	}
	if err != nil {
		linUnreachable(tb, "PostgreSQL", err)
	}
	table := linName(tb)
	tb.Cleanup(func() {
		defer pool.Close()
		_, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`)
	})
	st, err := pgxstore.New(pool, &pgxstore.Options{Table: table})
	if err == nil {
		err = st.CreateTable(ctx)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func linMariaDB(tb testing.TB) sessions.Store {
	tb.Helper()
	db, err := sql.Open("mysql", linEnv("SESSIONS_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test"))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := linCtx()
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		linUnreachable(tb, "MariaDB", err)
	}
	table := linName(tb)
	st, err := mysqlstore.New(db, &mysqlstore.Options{Table: table})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		defer db.Close()
		_ = st.Close()
		_, _ = db.Exec("DROP TABLE IF EXISTS `" + table + "`")
	})
	if err := st.CreateTable(ctx); err != nil {
		tb.Fatal(err)
	}
	return st
}

// linRedisPrefix returns a key prefix unique to tb whose keys c deletes
// when tb ends.
func linRedisPrefix(tb testing.TB, c redis.UniversalClient) string {
	prefix := linName(tb) + ":"
	tb.Cleanup(func() {
		defer c.Close()
		ctx, cancel := linCtx()
		defer cancel()
		del := func(ctx context.Context, n *redis.Client) error {
			iter := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				n.Del(ctx, iter.Val())
			}
			return iter.Err()
		}
		switch c := c.(type) {
		case *redis.ClusterClient:
			_ = c.ForEachMaster(ctx, del)
		case *redis.Client:
			_ = del(ctx, c)
		}
	})
	return prefix
}

func linRedis(tb testing.TB) sessions.Store {
	tb.Helper()
	opt, err := redis.ParseURL(linEnv("SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/0"))
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	ctx, cancel := linCtx()
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		linUnreachable(tb, "Redis", err)
	}
	st, err := redisstore.New(c, &redisstore.Options{Prefix: linRedisPrefix(tb, c)})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func linRedisCluster(tb testing.TB) sessions.Store {
	tb.Helper()
	addrs := strings.Split(linEnv("SESSIONS_REDIS_CLUSTER", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"), ",")
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second, ContextTimeoutEnabled: true})
	ctx, cancel := linCtx()
	defer cancel()
	info, err := c.ClusterInfo(ctx).Result()
	if err == nil && !strings.Contains(info, "cluster_state:ok") {
		err = fmt.Errorf("cluster_state is not ok")
	}
	if err != nil {
		c.Close()
		linUnreachable(tb, "Redis Cluster (.ci/redis-cluster.sh start)", err)
	}
	st, err := redisstore.New(c, &redisstore.Options{Prefix: linRedisPrefix(tb, c)})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func linDynamoDB(tb testing.TB) sessions.Store {
	tb.Helper()
	c := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(linEnv("SESSIONS_DYNAMODB_ENDPOINT", "http://127.0.0.1:4567")),
		Credentials:  credentials.NewStaticCredentialsProvider("sessionkit", "sessionkit", ""),
	})
	ctx, cancel := linCtx()
	defer cancel()
	if _, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}); err != nil {
		linUnreachable(tb, "DynamoDB (.ci/dynamodb.sh start)", err)
	}
	table := strings.ReplaceAll(linName(tb), "_", "-")
	st, err := dynamostore.New(c, &dynamostore.Options{Table: table})
	if err == nil {
		err = st.CreateTable(ctx)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := linCtx()
		defer cancel()
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return st
}

func linBolt(tb testing.TB) sessions.Store {
	tb.Helper()
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "sessions.bolt"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}
