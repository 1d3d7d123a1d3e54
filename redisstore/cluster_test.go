package redisstore

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	clusterOnce  sync.Once
	clusterAddrs []string
	clusterErr   error
)

// clusterClient returns a client for the test cluster: SESSIONS_REDIS_CLUSTER
// (comma-separated seed addresses), or 127.0.0.1:7001-7003 as started by
// .ci/redis-cluster.sh.
func clusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	clusterOnce.Do(func() {
		env := os.Getenv("SESSIONS_REDIS_CLUSTER")
		addrs := []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
		if env != "" {
			addrs = strings.Split(env, ",")
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		info, err := c.ClusterInfo(ctx).Result()
		switch {
		case err != nil:
			clusterErr = err
		case !strings.Contains(info, "cluster_state:ok"):
			clusterErr = errString("cluster_state is not ok")
		default:
			clusterAddrs = addrs
		}
	})
	if clusterErr != nil {
		msg := "Redis Cluster unreachable: " + clusterErr.Error() + "; run .ci/redis-cluster.sh start or set SESSIONS_REDIS_CLUSTER"
		if requireServices() {
			t.Fatalf("%s (SESSIONS_REQUIRE_SERVICES=1)", msg)
		}
		t.Skip(msg)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: clusterAddrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

type errString string

func (e errString) Error() string { return string(e) }

// TestClusterOwnerAcrossSlots proves that one owner's sessions, spread over
// many slots and nodes, are created, listed, touched, updated and deleted
// without CROSSSLOT errors, and that every script touched one slot only.
func TestClusterOwnerAcrossSlots(t *testing.T) {
	t.Parallel()
	c := clusterClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	const n = 60
	owner := "owner-" + newID(t)[:8]
	var ids []string
	slots := map[int64]bool{}
	for range n {
		id := newID(t)
		ids = append(ids, id)
		if ok, err := s.Create(ctx, id, []byte(id[:4]), now.Add(10*time.Second), owner, now); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		slot, err := c.ClusterKeySlot(ctx, s.sessionKey(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
	}
	idxSlot, err := c.ClusterKeySlot(ctx, s.ownerKey(owner)).Result()
	if err != nil {
		t.Fatal(err)
	}
	delete(slots, idxSlot)
	if len(slots) < n/2 {
		t.Fatalf("sessions landed in only %d slots besides the index's", len(slots))
	}
	// Which nodes hold the sessions: the test is only meaningful across nodes.
	nodes := map[string]bool{}
	for _, id := range ids {
		node, err := c.MasterForKey(ctx, s.sessionKey(id))
		if err != nil {
			t.Fatal(err)
		}
		nodes[node.Options().Addr] = true
	}
	if len(nodes) < 2 {
		t.Fatalf("sessions on %d node(s); want several", len(nodes))
	}

	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	got, err := s.ListOwner(ctx, owner, now)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, sorted) {
		t.Fatalf("ListOwner = %d ids, %v; want %d", len(got), err, n)
	}
	// Touch past the index horizon (index extension on another slot), and
	// Update with an owner change (index write on a third slot).
	for _, id := range ids[:10] {
		if found, err := s.Touch(ctx, id, now.Add(time.Hour), now); !found || err != nil {
			t.Fatalf("Touch = %v, %v", found, err)
		}
	}
	other := owner + "-other"
	if ok, _, err := s.Update(ctx, ids[10], 1, []byte("moved"), now.Add(time.Hour), other, now); !ok || err != nil {
		t.Fatalf("Update = %v, %v", ok, err)
	}
	// After the original expiry only the touched sessions are live.
	later := now.Add(time.Minute)
	got, err = s.ListOwner(ctx, owner, later)
	slices.Sort(got)
	want := slices.Clone(ids[:10])
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ListOwner at +1m = %v, %v; want the 10 touched sessions", got, err)
	}
	// Scripts missing on every node: DeleteOwner's pipelined EVALSHA falls
	// back to SCRIPT LOAD.
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.DeleteOwner(ctx, owner, later)
	if err != nil || deleted != 10 {
		t.Fatalf("DeleteOwner = %d, %v; want 10 live", deleted, err)
	}
	for _, id := range ids {
		if id == ids[10] {
			continue
		}
		if n, _ := c.Exists(ctx, s.sessionKey(id)).Result(); n != 0 {
			t.Fatalf("DeleteOwner left %s", id)
		}
	}
	if _, _, _, found, err := s.Load(ctx, ids[10], later); !found || err != nil {
		t.Fatalf("DeleteOwner removed another owner's session: %v, %v", found, err)
	}
}
