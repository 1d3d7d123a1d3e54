package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
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
}

// backends lists the store kinds the app can open.
var backends = map[string]backend{
	"memory": {open: openMemory},
	"sqlite": {open: openSQLite, defaultDSN: "sessions.db", canBack: true},
}

// kinds lists every kind of the contract, available or not.
var kinds = []string{"memory", "sqlite", "postgres", "mysql", "redis", "cache", "cookie"}

// openStore opens the store the flags name.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (sessions.Store, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if cfg.store == "cache" {
		return openCache(ctx, cfg, logger)
	}
	b, err := lookup(cfg.store)
	if err != nil {
		return nil, nil, err
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
// sqlitestore's README asks for. The path is a URI path: '%', '?' and '#'
// are escaped.
func sqliteDSN(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
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

// openCache opens the back store and puts an in-memory front before it.
func openCache(ctx context.Context, cfg config, logger *slog.Logger) (sessions.Store, func(), error) {
	b, ok := backends[cfg.back]
	if ok && !b.canBack {
		return nil, nil, usageError{fmt.Errorf("-back %q: want sqlite, postgres, mysql or redis", cfg.back)}
	}
	return nil, nil, fmt.Errorf("store \"cache\": not available yet (no such store in this build)")
}
