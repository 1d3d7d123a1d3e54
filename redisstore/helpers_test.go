package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// requireServices reports whether unreachable services fail tests instead of
// skipping them.
func requireServices() bool { return os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" }

// unavailable skips (or, under SESSIONS_REQUIRE_SERVICES=1, fails) t.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if requireServices() {
		t.Fatalf("%s (SESSIONS_REQUIRE_SERVICES=1)", msg)
	}
	t.Skipf("%s; set SESSIONS_REDIS_URL or start Redis on 127.0.0.1:6379", msg)
}

var (
	singleOnce sync.Once
	singleOpts *redis.Options
	singleErr  error
)

// redisOptions returns the options for the shared single-node server:
// SESSIONS_REDIS_URL, or redis://127.0.0.1:6379/0.
func redisOptions(t testing.TB) *redis.Options {
	t.Helper()
	singleOnce.Do(func() {
		url := os.Getenv("SESSIONS_REDIS_URL")
		if url == "" {
			url = "redis://127.0.0.1:6379/0"
		}
		opts, err := redis.ParseURL(url)
		if err != nil {
			singleErr = fmt.Errorf("parse SESSIONS_REDIS_URL: %w", err)
			return
		}
		opts.ContextTimeoutEnabled = true
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			singleErr = fmt.Errorf("redis at %s unreachable: %w", opts.Addr, err)
			return
		}
		singleOpts = opts
	})
	if singleErr != nil {
		unavailable(t, "%v", singleErr)
	}
	o := *singleOpts
	return &o
}

// newClient returns a client for the shared server, closed at cleanup.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(redisOptions(t))
	t.Cleanup(func() { c.Close() })
	return c
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// testPrefix returns a key prefix unique to t (derived from its name plus
// random bytes) and removes every key under it when t ends, using SCAN.
func testPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 80 {
		name = name[len(name)-80:]
	}
	prefix := "sessionkit-test:" + name + ":" + hex.EncodeToString(r[:]) + ":"
	t.Cleanup(func() { cleanup(t, c, prefix) })
	return prefix
}

// cleanup deletes every key under prefix (tests only: SCAN is O(N)).
func cleanup(t testing.TB, c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scanDelete := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, strings.ReplaceAll(prefix, "*", `\*`)+"*", 500).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return scanDelete(ctx, m)
		})
	} else {
		err = scanDelete(ctx, c)
	}
	if err != nil {
		t.Logf("cleanup of %q: %v", prefix, err)
	}
}

// newStore returns a Store on c with a per-test prefix.
func newStore(t testing.TB, c redis.UniversalClient, opts *Options) *Store {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = testPrefix(t, c)
	}
	s, err := New(c, &o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// newID returns a random session id in the contract's format.
func newID(t testing.TB) string {
	t.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:])
}
