package pgxstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/pgxstore"
)

// A near cache in front of the store: loads are served from the process
// until the table's trigger reports a change, and never longer than
// MaxAge. It listens on a connection of its own, outside the pool.
func ExampleNewNearCache() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	store, err := pgxstore.New(pool, nil)
	if err != nil {
		log.Fatal(err)
	}
	near, err := pgxstore.NewNearCache(store, func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	}, &pgxstore.NearCacheOptions{MaxAge: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer near.Close()
	if err := near.CreateTable(ctx); err != nil { // the table and the notify trigger
		log.Fatal(err)
	}

	m, err := sessions.New(near, nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = m // m.Handler(mux) as in the package example
}
