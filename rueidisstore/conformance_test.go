package rueidisstore

import (
	"testing"

	"github.com/redis/rueidis"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/sessiontest"
)

// TestConformance runs the store contract suite against the single-node
// server with the near-cache on, each case under a prefix of its own.
func TestConformance(t *testing.T) {
	c := singleClient(t)
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store { return newStore(t, c, nil) }, nil)
}

// TestConformanceNoCache runs the suite through a client without
// client-side caching (every Load reads through).
func TestConformanceNoCache(t *testing.T) {
	o := singleOption(t)
	o.DisableCache = true
	c := newClient(t, o, "Redis")
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store { return newStore(t, c, nil) }, nil)
}

// TestClusterConformance runs the suite against Redis Cluster.
func TestClusterConformance(t *testing.T) {
	c := clusterClient(t)
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store { return newStore(t, c, nil) }, nil)
}

var _ = rueidis.Nil
