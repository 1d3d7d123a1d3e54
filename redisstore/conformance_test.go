package redisstore

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/cachestore"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/sessiontest"
)

// TestConformance runs the store contract suite against the single-node
// server, each case under a key prefix of its own.
func TestConformance(t *testing.T) {
	c := newClient(t)
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		return newStore(t, c, nil)
	}, nil)
}

// TestConformanceContextUnaware runs the suite through a client created
// without ContextTimeoutEnabled, where the store enforces contexts itself.
func TestConformanceContextUnaware(t *testing.T) {
	opts := redisOptions(t)
	opts.ContextTimeoutEnabled = false
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		s := newStore(t, c, nil)
		if s.ctxAware {
			t.Fatal("store treats the client as context-aware")
		}
		return s
	}, nil)
}

// TestClusterConformance runs the suite against Redis Cluster.
func TestClusterConformance(t *testing.T) {
	c := clusterClient(t)
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		return newStore(t, c, nil)
	}, nil)
}

// TestCacheStoreConformance runs the suite on a cachestore with a memstore
// in front of Redis.
func TestCacheStoreConformance(t *testing.T) {
	c := newClient(t)
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		cs, err := cachestore.New(new(memstore.Store), newStore(t, c, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}, nil)
}
