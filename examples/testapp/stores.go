package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/cachestore"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/mysqlstore"
	"github.com/sessionkit/sessions/pgxstore"
	"github.com/sessionkit/sessions/redisstore"
	"github.com/sessionkit/sessions/sqlitestore"
	_ "modernc.org/sqlite" // driver "sqlite"
)

// startTimeout bounds connecting to the store, checking it and creating its
// table, so that an unreachable store ends the program well within 30 s.
const startTimeout = 20 * time.Second

// A backend opens one kind of store at dsn, creates what it needs, and
// returns the store with a function that releases its resources.
type backend struct {
	open       func(ctx context.Context, dsn string, logger *slog.Logger) (sessions.Store, func(), error)
	defaultDSN string
	canBack    bool // usable behind -store cache
	// openConfig, when set, is used instead of open: for kinds that read
	// other flags than -dsn.
	openConfig func(ctx context.Context, cfg config, logger *slog.Logger) (sessions.Store, func(), error)
}

// backends lists the store kinds the app can open.
var backends = map[string]backend{
	"memory":   {open: openMemory},
	"sqlite":   {open: openSQLite, defaultDSN: "sessions.db", canBack: true},
	"postgres": {open: openPostgres, defaultDSN: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", canBack: true},
	"mysql":    {open: openMySQL, defaultDSN: "root@tcp(127.0.0.1:3306)/test", canBack: true},
	"redis":    {open: openRedis, defaultDSN: "redis://127.0.0.1:6379/0", canBack: true},
}

// kinds lists every kind of the contract, available or not.
var kinds = []string{"memory", "sqlite", "postgres", "mysql", "redis", "cache", "cookie"}

// openStore opens the store the flags name.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (sessions.Store, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	switch cfg.store {
	case "cache":
		return openCache(ctx, cfg, logger)
	case "cookie":
		return openRevocation(ctx, cfg, logger)
	}
	b, err := lookup(cfg.store)
	if err != nil {
		return nil, nil, err
	}
	if b.openConfig != nil {
		return b.openConfig(ctx, cfg, logger)
	}
	return b.open(ctx, dsnOr(cfg.dsn, b.defaultDSN), logger)
}

func lookup(kind string) (backend, error) {
	if b, ok := backends[kind]; ok {
		return b, nil
	}
	for _, k := range kinds {
		if k == kind {
			return backend{}, fmt.Errorf("store %q: not available yet (no such store in this build)", kind)
		}
	}
	return backend{}, usageError{fmt.Errorf("unknown -store %q: want one of %s", kind, strings.Join(kinds, ", "))}
}

func dsnOr(dsn, def string) string {
	if dsn == "" {
		return def
	}
	return dsn
}

func openMemory(context.Context, string, *slog.Logger) (sessions.Store, func(), error) {
	s, err := memstore.New(nil)
	if err != nil {
		return nil, nil, err
	}
	return s, func() {}, nil
}

// sqliteDSN turns a file path into a modernc.org/sqlite DSN with the pragmas
// sqlitestore's README asks for, but journal_mode: several instances may
// start together on a new file (the e2e suite does), and a journal mode
// switch that races another connection fails at once with SQLITE_BUSY.
// CreateTable switches the file to WAL, retrying. The path is a URI path:
// '%', '?' and '#' are escaped.
func sqliteDSN(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)"
}

func openSQLite(ctx context.Context, path string, _ *slog.Logger) (sessions.Store, func(), error) {
	if path == "" {
		return nil, nil, usageError{fmt.Errorf("sqlite: empty -dsn: want a file path")}
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	fail := func(err error) (sessions.Store, func(), error) {
		db.Close()
		return nil, nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		return fail(err)
	}
	store, err := sqlitestore.New(db, nil)
	if err != nil {
		return fail(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		return fail(err)
	}
	return store, func() { db.Close() }, nil
}

func openPostgres(ctx context.Context, dsn string, _ *slog.Logger) (sessions.Store, func(), error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("postgres: -dsn: %w", err)}
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: %w", err)
	}
	fail := func(err error) (sessions.Store, func(), error) {
		pool.Close()
		return nil, nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		return fail(err)
	}
	store, err := pgxstore.New(pool, nil)
	if err != nil {
		return fail(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		return fail(err)
	}
	return store, pool.Close, nil
}

func openMySQL(ctx context.Context, dsn string, _ *slog.Logger) (sessions.Store, func(), error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("mysql: -dsn: %w", err)}
	}
	if cfg.DBName == "" {
		return nil, nil, usageError{fmt.Errorf("mysql: -dsn %q names no database", dsn)}
	}
	cfg.ParseTime = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("mysql: -dsn: %w", err)}
	}
	db := sql.OpenDB(conn)
	fail := func(err error) (sessions.Store, func(), error) {
		db.Close()
		return nil, nil, fmt.Errorf("mysql: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		return fail(err)
	}
	store, err := mysqlstore.New(db, nil)
	if err != nil {
		return fail(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		return fail(err)
	}
	return store, func() {
		_ = store.Close()
		db.Close()
	}, nil
}

func openRedis(ctx context.Context, dsn string, _ *slog.Logger) (sessions.Store, func(), error) {
	var c redis.UniversalClient
	if u, err := url.Parse(dsn); err == nil && u.Query().Has("addr") {
		// A cluster: redis://host:port?addr=host2:port2&addr=host3:port3
		opts, err := redis.ParseClusterURL(dsn)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("redis cluster: -dsn: %w", err)}
		}
		opts.ContextTimeoutEnabled = true
		c = redis.NewClusterClient(opts)
	} else {
		opts, err := redis.ParseURL(dsn)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("redis: -dsn: %w", err)}
		}
		// Honour the store's per-call deadlines at the socket, so that a
		// stalled server fails requests in seconds.
		opts.ContextTimeoutEnabled = true
		c = redis.NewClient(opts)
	}
	fail := func(err error) (sessions.Store, func(), error) {
		c.Close()
		return nil, nil, fmt.Errorf("redis: %w", err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		return fail(err)
	}
	store, err := redisstore.New(c, nil)
	if err != nil {
		return fail(err)
	}
	return store, func() { c.Close() }, nil
}

// openCache opens the back store and puts an in-memory front before it.
func openCache(ctx context.Context, cfg config, logger *slog.Logger) (sessions.Store, func(), error) {
	b, ok := backends[cfg.back]
	if !ok || !b.canBack {
		return nil, nil, usageError{fmt.Errorf("-back %q: want sqlite, postgres, mysql or redis", cfg.back)}
	}
	back, closeBack, err := b.open(ctx, dsnOr(cfg.dsn, b.defaultDSN), logger)
	if err != nil {
		return nil, nil, err
	}
	front, err := memstore.New(nil)
	if err != nil {
		closeBack()
		return nil, nil, err
	}
	store, err := cachestore.New(front, back, &cachestore.Options{MaxAge: cfg.cacheAge, Logger: logger})
	if err != nil {
		closeBack()
		return nil, nil, err
	}
	// The Manager detects the owner index and the sweeper by type
	// assertion: expose the back's.
	return store, closeBack, nil
}
