package redisstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/sessiontest"
)

func TestMinReplicasOptions(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	for _, tc := range []struct {
		name string
		c    redis.UniversalClient
		o    Options
	}{
		{"negative MinReplicas", c, Options{MinReplicas: -1}},
		{"negative ReplicaTimeout", c, Options{MinReplicas: 1, ReplicaTimeout: -time.Second}},
		{"ReplicaTimeout not under Timeout", c, Options{MinReplicas: 1, Timeout: time.Second, ReplicaTimeout: time.Second}},
		{"ReplicaTimeout under a millisecond", c, Options{MinReplicas: 1, ReplicaTimeout: time.Microsecond}},
		{"Ring", ring, Options{MinReplicas: 1}},
	} {
		if _, err := New(tc.c, &tc.o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: New = %v; want ErrInvalidOption", tc.name, err)
		}
	}
	s, err := New(c, &Options{MinReplicas: 1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.replicaTimeout != 500*time.Millisecond {
		t.Errorf("default ReplicaTimeout = %v; want half of Timeout", s.replicaTimeout)
	}
	// A Ring is fine while nothing waits for replicas.
	if _, err := New(ring, nil); err != nil {
		t.Errorf("New(ring, nil) = %v", err)
	}
}

// replicatedPair starts a private primary with one replica and waits until
// the replica is in sync.
func replicatedPair(t *testing.T) (primary, replica *privateRedis, c *redis.Client) {
	t.Helper()
	primary = startPrivateRedis(t)
	host, port, _ := net.SplitHostPort(primary.addr)
	replica = startPrivateRedis(t, "--replicaof", host, port)
	c = redis.NewClient(&redis.Options{Addr: primary.addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	waitFor(t, "the replica to sync", func(ctx context.Context) bool {
		n, err := c.Wait(ctx, 1, 100*time.Millisecond).Result()
		return err == nil && n == 1
	})
	return primary, replica, c
}

// TestMinReplicas checks that session-ending writes succeed while the
// replica acknowledges them and fail with ErrNotReplicated, within the
// store's Timeout, while it does not (a paused replica), and that other
// writes do not wait.
func TestMinReplicas(t *testing.T) {
	t.Parallel()
	_, replica, c := replicatedPair(t)
	opts := &Options{MinReplicas: 1, Timeout: time.Second, ReplicaTimeout: 200 * time.Millisecond}
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store { return newStore(t, c, opts) }, nil)

	s := newStore(t, c, opts)
	ctx := context.Background()
	now := time.Now()
	create := func(owner string) string {
		t.Helper()
		id := newID(t)
		if ok, err := s.Create(ctx, id, []byte("x"), now.Add(time.Hour), owner, now); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		return id
	}
	a, b, o1, o2 := create(""), create(""), create("olga"), create("olga")
	if err := s.Delete(ctx, a); err != nil {
		t.Fatalf("Delete with the replica up = %v", err)
	}
	if n, err := s.DeleteOwner(ctx, "olga", now); n != 2 || err != nil {
		t.Fatalf("DeleteOwner with the replica up = %d, %v", n, err)
	}
	_ = o1
	_ = o2
	r1, r3 := create(""), create("")
	create("ivan")

	replica.signal(syscall.SIGSTOP)
	defer replica.signal(syscall.SIGCONT)
	check := func(op string, err error, start time.Time) {
		t.Helper()
		if !errors.Is(err, ErrNotReplicated) || !strings.HasPrefix(err.Error(), "redisstore: "+op+": ") {
			t.Errorf("%s with the replica paused = %v; want a wrapped ErrNotReplicated", op, err)
		}
		if d := time.Since(start); d > opts.Timeout+time.Second {
			t.Errorf("%s with the replica paused took %v", op, d)
		}
	}
	start := time.Now()
	check("delete", s.Delete(ctx, b), start)
	start = time.Now()
	_, err := s.DeleteOwner(ctx, "ivan", now)
	check("delete owner", err, start)
	start = time.Now()
	_, _, err = s.Update(ctx, r1, 1, nil, time.UnixMilli(1), "", now)
	check("update", err, start)
	// Writes that do not end a session do not wait.
	if ok, _, err := s.Update(ctx, create(""), 1, []byte("y"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Errorf("Update (not a retirement) with the replica paused = %v, %v", ok, err)
	}
	if found, err := s.Touch(ctx, r3, now.Add(2*time.Hour), now); !found || err != nil {
		t.Errorf("Touch with the replica paused = %v, %v", found, err)
	}
	replica.signal(syscall.SIGCONT)
	if err := s.Delete(ctx, b); err != nil {
		t.Errorf("Delete after the replica resumed = %v", err)
	}
}

// TestClusterMinReplicas runs on the CI cluster, whose masters have no
// replicas: asking for one must fail every session-ending write, which
// shows that the WAIT reached the key's own master.
func TestClusterMinReplicas(t *testing.T) {
	t.Parallel()
	c := clusterClient(t)
	s := newStore(t, c, &Options{MinReplicas: 1, ReplicaTimeout: 50 * time.Millisecond})
	plain := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	var ids []string
	for range 8 {
		id := newID(t)
		if ok, err := plain.Create(ctx, id, []byte("x"), now.Add(time.Hour), "olga", now); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		ids = append(ids, id)
	}
	s.prefix = plain.prefix
	if err := s.Delete(ctx, ids[0]); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("Delete = %v; want ErrNotReplicated", err)
	}
	if _, err := s.DeleteOwner(ctx, "olga", now); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("DeleteOwner = %v; want ErrNotReplicated", err)
	}
	// The deletions happened; only their replication is unconfirmed.
	if ids, err := plain.ListOwner(ctx, "olga", now); len(ids) != 0 || err != nil {
		t.Errorf("ListOwner after DeleteOwner = %v, %v", ids, err)
	}
}
