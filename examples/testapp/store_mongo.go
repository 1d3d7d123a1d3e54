package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/mongostore"
)

// -store mongo -dsn mongodb://HOST:PORT/DB keeps sessions in the collection
// "sessions" of database DB. The default is where .ci/mongo.sh starts
// FerretDB.
func init() {
	backends["mongo"] = backend{open: openMongo, defaultDSN: "mongodb://127.0.0.1:27017/sessionkit", canBack: true}
	if !slices.Contains(kinds, "mongo") {
		kinds = append(kinds, "mongo")
	}
}

func openMongo(ctx context.Context, dsn string, logger *slog.Logger) (sessions.Store, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
		return nil, nil, usageError{fmt.Errorf("mongo: -dsn %q: want mongodb://HOST:PORT/DB", dsn)}
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		return nil, nil, usageError{fmt.Errorf("mongo: -dsn %q names no database: want mongodb://HOST:PORT/DB", dsn)}
	}
	opts := options.Client().ApplyURI(dsn)
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(10 * time.Second)
	}
	if opts.ConnectTimeout == nil {
		opts.SetConnectTimeout(10 * time.Second)
	}
	if opts.MaxConnecting == nil {
		// The driver opens at most 2 connections at a time by default;
		// a burst of concurrent requests then queues behind handshakes.
		opts.SetMaxConnecting(16)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("mongo: -dsn: %w", err)}
	}
	closeClient := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	}
	fail := func(err error) (sessions.Store, func(), error) {
		closeClient()
		return nil, nil, fmt.Errorf("mongo: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		return fail(err)
	}
	store, err := mongostore.New(client.Database(db), &mongostore.Options{Logger: logger})
	if err != nil {
		return fail(err)
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		return fail(err)
	}
	return store, closeClient, nil
}
