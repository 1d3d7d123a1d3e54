package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/rueidisstore"
)

// The rueidis kind: -store rueidis -dsn redis://HOST:PORT/DB keeps sessions
// in Redis through rueidisstore, whose near-cache serves loads from memory
// until Redis invalidates them; -cache-age is its hard bound
// (rueidisstore.Options.MaxCacheAge). A cluster is
// redis://host:port?addr=host2:port2&addr=host3:port3. Keys and records are
// redisstore's: -store redis on the same DSN sees the same sessions.
func init() {
	backends["rueidis"] = backend{openConfig: openRueidis, defaultDSN: "redis://127.0.0.1:6379/0"}
	if !slices.Contains(kinds, "rueidis") {
		kinds = append(kinds, "rueidis")
	}
}

func openRueidis(ctx context.Context, cfg config, _ *slog.Logger) (sessions.Store, func(), error) {
	dsn := dsnOr(cfg.dsn, backends["rueidis"].defaultDSN)
	if u, err := url.Parse(dsn); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, nil, usageError{fmt.Errorf("rueidis: -dsn %q: want redis://HOST:PORT/DB", dsn)}
	}
	opts, err := rueidis.ParseURL(dsn)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("rueidis: -dsn: %w", err)}
	}
	opts.Dialer.Timeout = 5 * time.Second
	// Detect a stalled server within seconds (rueidis pings idle
	// connections and fails their commands past this).
	opts.ConnWriteTimeout = 3 * time.Second
	c, err := rueidis.NewClient(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("rueidis: %w", err)
	}
	fail := func(err error) (sessions.Store, func(), error) {
		c.Close()
		return nil, nil, fmt.Errorf("rueidis: %w", err)
	}
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		return fail(err)
	}
	store, err := rueidisstore.New(c, &rueidisstore.Options{MaxCacheAge: cfg.cacheAge})
	if err != nil {
		return fail(err)
	}
	return store, c.Close, nil
}
