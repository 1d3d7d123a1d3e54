package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/boltstore"
)

// The bolt kind: -store bolt -dsn FILE keeps sessions in the bbolt file
// FILE (default sessions.bolt, relative to the working directory), created
// if absent, with the store's buckets created in it idempotently. bbolt
// locks the file for one process: a second app on the same file exits
// with status 1 and the lock error after boltstore.DefaultOpenTimeout.
// -store cache -back bolt puts the in-memory front before it.
func init() {
	backends["bolt"] = backend{open: openBolt, defaultDSN: "sessions.bolt", canBack: true}
	if !slices.Contains(kinds, "bolt") {
		kinds = append(kinds, "bolt")
	}
}

// openBolt opens the file. bbolt takes no context: the open is bounded by
// the store's OpenTimeout (3 s), well within startTimeout.
func openBolt(ctx context.Context, path string, _ *slog.Logger) (sessions.Store, func(), error) {
	if path == "" {
		return nil, nil, usageError{fmt.Errorf("bolt: empty -dsn: want a file path")}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("bolt %s: %w", path, err)
	}
	store, err := boltstore.Open(path, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("bolt: %w", err)
	}
	return store, func() { _ = store.Close() }, nil
}
