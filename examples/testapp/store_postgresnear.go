package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/pgxstore"
)

// The postgres-near kind: -store postgres-near -dsn DSN is the postgres
// kind with pgxstore.NearCache in front: loads are served from the process
// until the table's trigger notifies a change, and never longer than
// -cache-age (the hard bound). The app creates the table and the trigger,
// and listens on a connection of its own, outside the pool. When that
// connection is lost it logs so, reads through, and reconnects.
func init() {
	backends["postgres-near"] = backend{openConfig: openPostgresNear}
	if !slices.Contains(kinds, "postgres-near") {
		kinds = append(kinds, "postgres-near")
	}
}

func openPostgresNear(ctx context.Context, cfg config, logger *slog.Logger) (sessions.Store, func(), error) {
	dsn := dsnOr(cfg.dsn, backends["postgres"].defaultDSN)
	store, closePool, err := openPostgres(ctx, dsn, logger)
	if err != nil {
		return nil, nil, err
	}
	pcfg, err := pgxpool.ParseConfig(dsn) // openPostgres parsed it already
	if err != nil {
		closePool()
		return nil, nil, usageError{fmt.Errorf("postgres-near: -dsn: %w", err)}
	}
	pgs := store.(*pgxstore.Store)
	if err := pgs.CreateNotifyTrigger(ctx); err != nil {
		closePool()
		return nil, nil, fmt.Errorf("postgres-near: %w", err)
	}
	connCfg := pcfg.ConnConfig
	if connCfg.ConnectTimeout == 0 {
		connCfg.ConnectTimeout = 10 * time.Second // as the pool's
	}
	near, err := pgxstore.NewNearCache(pgs, func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.ConnectConfig(ctx, connCfg.Copy())
	}, &pgxstore.NearCacheOptions{MaxAge: cfg.cacheAge, Logger: logger})
	if err != nil {
		closePool()
		return nil, nil, fmt.Errorf("postgres-near: %w", err)
	}
	return near, func() { _ = near.Close(); closePool() }, nil
}
