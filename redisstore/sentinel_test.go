package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/sessiontest"
)

// sentinelSetup starts a private primary, a replica and one Sentinel
// monitoring them as "sk", and returns a failover client for it.
func sentinelSetup(t *testing.T) (primary, replica *privateRedis, sentinel string, c *redis.Client) {
	t.Helper()
	primary = startPrivateRedis(t)
	host, port, _ := net.SplitHostPort(primary.addr)
	replica = startPrivateRedis(t, "--replicaof", host, port)

	addr := freeAddr(t)
	_, sport, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	cfg := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
		"sentinel monitor sk %s %s 1\nsentinel down-after-milliseconds sk 2000\nsentinel failover-timeout sk 10000\n",
		sport, dir, filepath.Join(dir, "sentinel.log"), host, port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(primary.bin, conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sentinel: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// The replica must have finished its initial sync before anything
	// relies on replication: a replica still loading the primary's
	// snapshot acknowledges no WAIT.
	rc := redis.NewClient(&redis.Options{Addr: replica.addr, MaxRetries: -1})
	defer rc.Close()
	waitFor(t, "the replica's link to the primary", func(ctx context.Context) bool {
		info, err := rc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{filepath.Join(primary.dir, "redis.log"), filepath.Join(replica.dir, "redis.log"), filepath.Join(dir, "sentinel.log")} {
				if b, err := os.ReadFile(f); err == nil {
					t.Logf("%s:\n%s", f, tail(b, 4000))
				}
			}
		}
	})

	sc := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer sc.Close()
	waitFor(t, "sentinel to see the primary and its replica", func(ctx context.Context) bool {
		replicas, err := sc.Replicas(ctx, "sk").Result()
		return err == nil && len(replicas) == 1
	})
	c = redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "sk",
		SentinelAddrs:         []string{addr},
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	return primary, replica, addr, c
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitFor polls cond for up to 30 seconds (readiness, not a timing
// assertion).
func waitFor(t *testing.T, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok := cond(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSentinel runs the conformance suite through a Sentinel failover
// client, then fails the primary over and checks that a session written
// (and replicated) before the failover is served, and writable, after it.
func TestSentinel(t *testing.T) {
	t.Parallel()
	_, replica, sentinel, c := sentinelSetup(t)
	if !contextAware(c) {
		t.Fatal("failover client not detected as context-aware")
	}
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		return newStore(t, c, nil)
	}, nil)

	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	id := newID(t)
	if ok, err := s.Create(ctx, id, []byte("before"), now.Add(time.Hour), "olga", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	// Make sure the replica has it (see the README's replication caveat).
	// WAIT is retried: on a loaded machine the replica's acknowledgement
	// can take longer than one WAIT's timeout (readiness, not a timing
	// assertion).
	waitFor(t, "the replica to acknowledge the write (WAIT 1)", func(ctx context.Context) bool {
		n, err := c.Wait(ctx, 1, 900*time.Millisecond).Result()
		return err == nil && n >= 1
	})

	sent := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer sent.Close()
	if err := sent.Failover(ctx, "sk").Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	waitFor(t, "the replica to become primary", func(ctx context.Context) bool {
		addr, err := sent.GetMasterAddrByName(ctx, "sk").Result()
		return err == nil && net.JoinHostPort(addr[0], addr[1]) == replica.addr
	})
	waitFor(t, "the failover client to write to the new primary", func(ctx context.Context) bool {
		_, _, _, found, err := s.Load(ctx, id, now)
		if err != nil || !found {
			return false
		}
		ok, _, err := s.Update(ctx, id, 1, []byte("after"), now.Add(time.Hour), "olga", now)
		return err == nil && ok
	})
	data, v, _, found, err := s.Load(ctx, id, now)
	if err != nil || !found || string(data) != "after" || v != 2 {
		t.Fatalf("Load after failover = %q v%d, %v, %v", data, v, found, err)
	}
	if ids, err := s.ListOwner(ctx, "olga", now); err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("ListOwner after failover = %v, %v", ids, err)
	}
}
