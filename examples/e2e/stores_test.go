//go:build unix

package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"
)

// A storeKind is one entry of the table every end-to-end case runs on.
type storeKind struct {
	name string
	// persistent: sessions survive an app restart.
	persistent bool
	// cache: -store cache (a memory front before the back).
	cache bool
	// singleProcess: one process at a time owns the store (bbolt's file
	// lock), so cases that run several instances on one store skip it.
	singleProcess bool
	// emulated: the store is an emulator that serves about a thousand
	// requests a second (dynalite), or serializes writes (the FerretDB
	// proxy of the mongo kinds), so the cases that hammer one session
	// with concurrent requests send fewer of them (the behaviour checked is
	// the same: no write lost, every answer 200).
	emulated bool
	// redis: the (back) store is Redis, so the outage tests can run it on a
	// private redis-server.
	redis bool
	// setup prepares storage of the test's own and returns the app flags
	// that select it, and a function counting the session records in it
	// (nil when the store cannot be observed from outside the app).
	setup func(t *testing.T) (flags []string, count func(t *testing.T) int)
	// serviceAddr returns the address (host:port) of the shared service the
	// kind's store lives on, and dsnVia rewrites a -dsn to reach it through
	// another address; both nil for stores that are not network services,
	// and for Redis, whose outages run on a private server.
	serviceAddr func() string
	dsnVia      func(dsn, addr string) string
	// unreachable returns app flags naming a store at addr (host:port),
	// where nothing answers; nil for the memory store. SQLite, which has no
	// address, gets a path it cannot create.
	unreachable func(t *testing.T, addr string) []string
	// sealed: client-side sessions (-store cookie), whose cookie value
	// changes with every write, and signed: signed tokens (-key on a
	// server-side kind), 71 characters instead of 43.
	sealed, signed bool
	// skipCases names the cases that cannot apply to the kind, with why.
	skipCases map[string]string
}

// storeKinds is the table of store kinds.
var storeKinds = []*storeKind{
	{name: "memory", setup: func(*testing.T) ([]string, func(*testing.T) int) {
		return []string{"-store", "memory"}, nil
	}},
	{name: "sqlite", persistent: true, setup: setupSQLite, unreachable: unreachableSQLite},
	{name: "postgres", persistent: true, setup: setupPostgres, unreachable: unreachablePostgres,
		serviceAddr: postgresAddr, dsnVia: postgresVia},
	{name: "mysql", persistent: true, setup: setupMySQL, unreachable: unreachableMySQL,
		serviceAddr: mysqlAddr, dsnVia: mysqlVia},
	{name: "redis", persistent: true, redis: true, setup: setupRedis, unreachable: unreachableRedis},
	cacheKind("redis", setupRedis, unreachableRedis, nil, nil),
	cacheKind("postgres", setupPostgres, unreachablePostgres, postgresAddr, postgresVia),
	cacheKind("sqlite", setupSQLite, unreachableSQLite, nil, nil),
	cacheKind("mysql", setupMySQL, unreachableMySQL, mysqlAddr, mysqlVia),
	{name: "redis-cluster", persistent: true, setup: setupRedisCluster, unreachable: unreachableRedisCluster},
}

func cacheKind(back string, setup func(*testing.T) ([]string, func(*testing.T) int), unreachable func(*testing.T, string) []string,
	serviceAddr func() string, dsnVia func(dsn, addr string) string) *storeKind {
	withBack := func(flags []string) []string {
		out := []string{"-store", "cache", "-back", back}
		for i := 0; i < len(flags); i++ {
			if flags[i] == "-store" {
				i++ // -store BACK becomes -back BACK
				continue
			}
			out = append(out, flags[i])
		}
		return out
	}
	return &storeKind{
		name:       "cache-" + back,
		persistent: true,
		cache:      true,
		redis:      back == "redis",
		setup: func(t *testing.T) ([]string, func(*testing.T) int) {
			flags, count := setup(t)
			return withBack(flags), count
		},
		unreachable: func(t *testing.T, addr string) []string { return withBack(unreachable(t, addr)) },
		serviceAddr: serviceAddr,
		dsnVia:      dsnVia,
	}
}

// requireServices reports whether unreachable services fail the tests.
func requireServices() bool { return os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" }

// unavailable skips t (or fails it under SESSIONS_REQUIRE_SERVICES=1).
func unavailable(t *testing.T, service string, err error) {
	t.Helper()
	if requireServices() {
		t.Fatalf("%s required (SESSIONS_REQUIRE_SERVICES=1) but unreachable: %v", service, err)
	}
	t.Skipf("%s unreachable, skipping (SESSIONS_REQUIRE_SERVICES=1 fails instead): %v", service, err)
}

// runID distinguishes this run's databases from other runs'.
var runID = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// seq numbers the per-test schemas and databases.
var seq atomic.Int64

// ---- SQLite ----

func setupSQLite(t *testing.T) ([]string, func(*testing.T) int) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	var (
		once sync.Once
		db   *sql.DB
	)
	t.Cleanup(func() {
		if db != nil {
			db.Close()
		}
	})
	count := func(t *testing.T) int {
		t.Helper()
		once.Do(func() {
			var err error
			db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
		})
		return countRows(t, db, `SELECT count(*) FROM sessions`)
	}
	return []string{"-store", "sqlite", "-dsn", path}, count
}

func unreachableSQLite(t *testing.T, _ string) []string {
	return []string{"-store", "sqlite", "-dsn", filepath.Join(t.TempDir(), "no", "such", "dir", "sessions.db")}
}

func countRows(t *testing.T, db *sql.DB, query string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
		t.Fatalf("counting session records: %v", err)
	}
	return n
}

// ---- PostgreSQL ----

// postgres holds this run's database: one per run, created on first use
// and dropped at the end; each test gets a schema of its own in it.
var postgres struct {
	once  sync.Once
	err   error
	admin *pgxpool.Pool // the service's own database
	pool  *pgxpool.Pool // this run's database
	dsn   string        // this run's database
}

func postgresAdminDSN() string {
	if dsn := os.Getenv("SESSIONS_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// withPostgresParams returns dsn with the database and extra run-time
// parameters replaced, for URL and keyword/value DSNs alike.
func withPostgresParams(dsn, db string, params map[string]string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + db
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	dsn += " dbname=" + db
	for k, v := range params {
		dsn += " " + k + "=" + v
	}
	return dsn
}

func postgresRun(t *testing.T) {
	t.Helper()
	postgres.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		admin, err := pgxpool.New(ctx, postgresAdminDSN())
		if err == nil {
			err = admin.Ping(ctx)
		}
		if err != nil {
			postgres.err = err
			return
		}
		name := "sk_e2e_" + runID
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
			postgres.err = err
			admin.Close()
			return
		}
		postgres.admin = admin
		postgres.dsn = withPostgresParams(postgresAdminDSN(), name, nil)
		postgres.pool, postgres.err = pgxpool.New(ctx, postgres.dsn)
		atExit(func() {
			if postgres.pool != nil {
				postgres.pool.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: dropping database %s: %v\n", name, err)
			}
			admin.Close()
		})
	})
	if postgres.err != nil {
		unavailable(t, "PostgreSQL", postgres.err)
	}
}

func setupPostgres(t *testing.T) ([]string, func(*testing.T) int) {
	postgresRun(t)
	schema := fmt.Sprintf("t%d", seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := postgres.pool.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := postgres.pool.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	dsn := withPostgresParams(postgresAdminDSN(), "sk_e2e_"+runID, map[string]string{"search_path": schema})
	count := func(t *testing.T) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var n int
		if err := postgres.pool.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.sessions`).Scan(&n); err != nil {
			t.Fatalf("counting session records: %v", err)
		}
		return n
	}
	return []string{"-store", "postgres", "-dsn", dsn}, count
}

// postgresAddr returns the PostgreSQL service's host:port.
func postgresAddr() string {
	cfg, err := pgxpool.ParseConfig(postgresAdminDSN())
	if err != nil {
		return ""
	}
	return net.JoinHostPort(cfg.ConnConfig.Host, fmt.Sprint(cfg.ConnConfig.Port))
}

// postgresVia returns dsn with its host and port replaced by addr.
func postgresVia(dsn, addr string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Host = addr
		return u.String()
	}
	host, port, _ := net.SplitHostPort(addr)
	return dsn + " host=" + host + " port=" + port
}

func unreachablePostgres(_ *testing.T, addr string) []string {
	return []string{"-store", "postgres", "-dsn", "postgres://postgres@" + addr + "/test?sslmode=disable"}
}

// ---- MySQL / MariaDB ----

// mysqlSrv holds a connection to the server; each test gets a database of
// its own, dropped when it ends.
var mysqlSrv struct {
	once sync.Once
	err  error
	db   *sql.DB
	cfg  *mysql.Config
}

func mysqlRun(t *testing.T) {
	t.Helper()
	mysqlSrv.once.Do(func() {
		dsn := os.Getenv("SESSIONS_MYSQL_DSN")
		if dsn == "" {
			dsn = "root@tcp(127.0.0.1:3306)/test"
		}
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			mysqlSrv.err = err
			return
		}
		cfg.Timeout = 5 * time.Second
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			mysqlSrv.err = err
			return
		}
		db := sql.OpenDB(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			mysqlSrv.err = err
			return
		}
		mysqlSrv.db, mysqlSrv.cfg = db, cfg
		atExit(func() { db.Close() })
	})
	if mysqlSrv.err != nil {
		unavailable(t, "MySQL", mysqlSrv.err)
	}
}

func setupMySQL(t *testing.T) ([]string, func(*testing.T) int) {
	mysqlRun(t)
	name := fmt.Sprintf("sk_e2e_%s_%d", runID, seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := mysqlSrv.db.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := mysqlSrv.db.ExecContext(ctx, "DROP DATABASE `"+name+"`"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	cfg := mysqlSrv.cfg.Clone()
	cfg.DBName = name
	count := func(t *testing.T) int {
		t.Helper()
		return countRows(t, mysqlSrv.db, "SELECT count(*) FROM `"+name+"`.sessions")
	}
	return []string{"-store", "mysql", "-dsn", cfg.FormatDSN()}, count
}

// mysqlAddr returns the MySQL service's host:port.
func mysqlAddr() string {
	if mysqlSrv.cfg == nil {
		return ""
	}
	return mysqlSrv.cfg.Addr
}

// mysqlVia returns dsn with its address replaced by addr.
func mysqlVia(dsn, addr string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return dsn
	}
	cfg.Addr = addr
	return cfg.FormatDSN()
}

func unreachableMySQL(_ *testing.T, addr string) []string {
	return []string{"-store", "mysql", "-dsn", "root@tcp(" + addr + ")/test"}
}

// ---- Redis ----

// redisDBs are the Redis DB numbers this suite may use, one test at a time
// each (other packages' tests use DB 0 with key prefixes). A test holds its
// DB for its whole duration, flushed before and after.
var redisDBs = func() chan int {
	c := make(chan int, 7)
	for n := 9; n <= 15; n++ {
		c <- n
	}
	return c
}()

var redisSrv struct {
	once sync.Once
	err  error
	url  *url.URL
}

func redisBaseURL() string {
	if u := os.Getenv("SESSIONS_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

func redisRun(t *testing.T) {
	t.Helper()
	redisSrv.once.Do(func() {
		opts, err := redis.ParseURL(redisBaseURL())
		if err != nil {
			redisSrv.err = err
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			redisSrv.err = err
			return
		}
		redisSrv.url, redisSrv.err = url.Parse(redisBaseURL())
	})
	if redisSrv.err != nil {
		unavailable(t, "Redis", redisSrv.err)
	}
}

// redisURL returns base with the DB number db.
func redisURL(base *url.URL, db int) string {
	u := *base
	u.Path = fmt.Sprintf("/%d", db)
	return u.String()
}

func setupRedis(t *testing.T) ([]string, func(*testing.T) int) {
	redisRun(t)
	var db int
	select {
	case db = <-redisDBs:
	case <-time.After(3 * time.Minute):
		t.Fatal("no free Redis DB number within 3 minutes")
	}
	dsn := redisURL(redisSrv.url, db)
	opts, err := redis.ParseURL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.FlushDB(ctx).Err(); err != nil {
			t.Errorf("FLUSHDB %d: %v", db, err)
		}
	}
	flush()
	t.Cleanup(func() {
		flush()
		c.Close()
		redisDBs <- db
	})
	return []string{"-store", "redis", "-dsn", dsn}, func(t *testing.T) int { return countRedis(t, c) }
}

// countRedis counts the session records (redisstore's "session:id:" keys;
// owner indexes are not sessions) in c's DB.
func countRedis(t *testing.T, c *redis.Client) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	iter := c.Scan(ctx, 0, "session:id:*", 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("counting session records: %v", err)
	}
	return n
}

func unreachableRedis(_ *testing.T, addr string) []string {
	return []string{"-store", "redis", "-dsn", "redis://" + addr + "/0"}
}

// ---- the environment of one test ----

// env is one test's store: app flags selecting storage of its own, and a
// way to count its records.
type env struct {
	kind  *storeKind
	flags []string
	count func(t *testing.T) int
}

func newEnv(t *testing.T, k *storeKind) *env {
	t.Helper()
	flags, count := k.setup(t)
	return &env{kind: k, flags: flags, count: count}
}

// fresh returns an env of the same kind with storage of t's own.
func (e *env) fresh(t *testing.T) *env {
	t.Helper()
	return newEnv(t, e.kind)
}

// alongside returns the env for another app that runs while one of e's
// does: e itself, or fresh storage of t's own for a kind that one process
// owns at a time.
func (e *env) alongside(t *testing.T) *env {
	t.Helper()
	if e.kind.singleProcess {
		return e.fresh(t)
	}
	return e
}

// via returns the env's app flags with the -dsn rewritten to reach the
// service through addr.
func (e *env) via(addr string) []string {
	flags := append([]string(nil), e.flags...)
	for i := 0; i+1 < len(flags); i++ {
		if flags[i] == "-dsn" {
			flags[i+1] = e.kind.dsnVia(flags[i+1], addr)
		}
	}
	return flags
}

// start starts an app on the test's store with extra flags.
func (e *env) start(t *testing.T, extra ...string) *app {
	t.Helper()
	return startApp(t, append(append([]string(nil), e.flags...), extra...)...)
}

// records returns the number of session records in the store, or -1 when
// the store cannot be observed (memory).
func (e *env) records(t *testing.T) int {
	t.Helper()
	if e.count == nil {
		return -1
	}
	return e.count(t)
}

// wantRecords checks the number of session records, where observable.
func (e *env) wantRecords(t *testing.T, want int, why string) {
	t.Helper()
	if e.count == nil {
		return
	}
	if got := e.count(t); got != want {
		t.Fatalf("%s: the store holds %d session records, want %d", why, got, want)
	}
}

// ---- Redis Cluster ----

// The cluster kinds run against the cluster .ci/redis-cluster.sh starts
// (SESSIONS_REDIS_CLUSTER: comma-separated seed addresses; default
// 127.0.0.1:7001-7003). A cluster has only DB 0 and the app takes no key
// prefix, so tests share the keyspace: their sessions never collide (random
// IDs), but records cannot be counted per test, so "nothing created" is
// checked through behaviour, as for the memory store.

var redisCluster struct {
	once  sync.Once
	err   error
	seeds []string
}

func clusterSeeds() []string {
	if s := os.Getenv("SESSIONS_REDIS_CLUSTER"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
}

// clusterDSN is the testapp -dsn naming a cluster with the given seeds.
func clusterDSN(seeds []string) string {
	q := url.Values{}
	for _, s := range seeds[1:] {
		q.Add("addr", s)
	}
	if len(seeds) == 1 {
		q.Add("addr", seeds[0])
	}
	return "redis://" + seeds[0] + "?" + q.Encode()
}

func setupRedisCluster(t *testing.T) ([]string, func(*testing.T) int) {
	t.Helper()
	redisCluster.once.Do(func() {
		redisCluster.seeds = clusterSeeds()
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: redisCluster.seeds, DialTimeout: 2 * time.Second})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := c.ClusterInfo(ctx).Result()
		switch {
		case err != nil:
			redisCluster.err = err
		case !strings.Contains(info, "cluster_state:ok"):
			redisCluster.err = fmt.Errorf("cluster state is not ok:\n%s", info)
		}
	})
	if redisCluster.err != nil {
		unavailable(t, "Redis Cluster (start it with .ci/redis-cluster.sh start)", redisCluster.err)
	}
	return []string{"-store", "redis", "-dsn", clusterDSN(redisCluster.seeds)}, nil
}

func unreachableRedisCluster(_ *testing.T, addr string) []string {
	return []string{"-store", "redis", "-dsn", clusterDSN([]string{addr})}
}
