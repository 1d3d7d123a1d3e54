package rueidisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

func requireServices() bool { return os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" }

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if requireServices() {
		t.Fatalf("%s (SESSIONS_REQUIRE_SERVICES=1)", msg)
	}
	t.Skip(msg)
}

// singleOption returns the client options for the single-node server:
// SESSIONS_REDIS_URL, or redis://127.0.0.1:6379/0.
func singleOption(t testing.TB) rueidis.ClientOption {
	t.Helper()
	u := os.Getenv("SESSIONS_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	if _, err := url.Parse(u); err != nil {
		t.Fatalf("SESSIONS_REDIS_URL: %v", err)
	}
	o, err := rueidis.ParseURL(u)
	if err != nil {
		t.Fatalf("SESSIONS_REDIS_URL: %v", err)
	}
	return o
}

// clusterOption returns the client options for the test cluster:
// SESSIONS_REDIS_CLUSTER (comma-separated seeds) or 127.0.0.1:7001-7003, as
// started by .ci/redis-cluster.sh.
func clusterOption(testing.TB) rueidis.ClientOption {
	addrs := []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
	if env := os.Getenv("SESSIONS_REDIS_CLUSTER"); env != "" {
		addrs = strings.Split(env, ",")
	}
	return rueidis.ClientOption{InitAddress: addrs, ShuffleInit: true}
}

// newClient connects with o (near-cache on), skipping or failing t when the
// server is unreachable, and closes the client at cleanup.
func newClient(t testing.TB, o rueidis.ClientOption, what string) rueidis.Client {
	t.Helper()
	o.Dialer.Timeout = 2 * time.Second
	c, err := rueidis.NewClient(o)
	if err != nil {
		unavailable(t, "%s at %v unreachable: %v", what, o.InitAddress, err)
	}
	t.Cleanup(c.Close)
	return c
}

func singleClient(t testing.TB) rueidis.Client {
	return newClient(t, singleOption(t), "Redis (SESSIONS_REDIS_URL)")
}

func clusterClient(t testing.TB) rueidis.Client {
	t.Helper()
	c := newClient(t, clusterOption(t), "Redis Cluster (SESSIONS_REDIS_CLUSTER; .ci/redis-cluster.sh start)")
	if c.Mode() != rueidis.ClientModeCluster {
		unavailable(t, "%v is not a Redis Cluster", clusterOption(t).InitAddress)
	}
	return c
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// testPrefix returns a key prefix unique to t and removes every key under
// it when t ends (SCAN on every primary: tests only).
func testPrefix(t testing.TB, c rueidis.Client) string {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 80 {
		name = name[len(name)-80:]
	}
	prefix := "sessionkit-test:rueidis:" + name + ":" + hex.EncodeToString(r[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range c.Nodes() {
			var cursor uint64
			for {
				e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(prefix+"*").Count(500).Build()).AsScanEntry()
				if err != nil {
					break // a replica, or the node is gone
				}
				for _, k := range e.Elements {
					n.Do(ctx, n.B().Del().Key(k).Build())
				}
				if cursor = e.Cursor; cursor == 0 {
					break
				}
			}
		}
	})
	return prefix
}

// newStore returns a Store on c under a fresh prefix unless opts names one.
func newStore(t testing.TB, c rueidis.Client, opts *Options) *Store {
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

func newID(t testing.TB) string {
	t.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:])
}

type rueidisResult struct{ hit bool }

// cacheProbe reads key through c's near-cache with a 300 ms bound and
// reports whether the reply came from memory.
func cacheProbe(ctx context.Context, c rueidis.Client, key string) *rueidisResult {
	r := c.DoCache(ctx, c.B().Get().Key(key).Cache(), 300*time.Millisecond)
	return &rueidisResult{hit: r.IsCacheHit()}
}
