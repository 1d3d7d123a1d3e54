package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Cluster drill runs on the CI cluster (.ci/redis-cluster.sh), which
// later tests and modules use too: everything it changes there is put back
// by lendReplicas' cleanup, which fails the test when it cannot.

// ciNode is a node of the shared cluster: the drill kills it and starts it
// again with the configuration it read from it.
type ciNode struct {
	addr, id string
	args     []string // redis-server arguments that restart it as it was
}

func clusterSeeds() []string {
	if v := os.Getenv("SESSIONS_REDIS_CLUSTER"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
}

func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 300 * time.Millisecond})
}

// readNodeArgs reads the settings the node was started with.
func readNodeArgs(ctx context.Context, addr string) ([]string, error) {
	c := nodeClient(addr)
	defer c.Close()
	args := []string{"--daemonize", "yes", "--cluster-enabled", "yes", "--save", "", "--appendonly", "no"}
	for _, k := range []string{"port", "bind", "dir", "cluster-config-file", "cluster-node-timeout", "logfile", "pidfile"} {
		m, err := c.ConfigGet(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("CONFIG GET %s on %s: %w", k, addr, err)
		}
		v := m[k]
		if v == "" {
			continue
		}
		if k == "bind" {
			args = append(args, append([]string{"--bind"}, strings.Fields(v)...)...)
			continue
		}
		args = append(args, "--"+k, v)
	}
	return args, nil
}

// kill ends the node with SIGKILL (a crash: no shutdown, no save).
func (n *ciNode) kill(t testing.TB) {
	t.Helper()
	c := nodeClient(n.addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Fatalf("INFO server on %s: %v", n.addr, err)
	}
	pid, _ := strconv.Atoi(infoField(info, "process_id"))
	if pid <= 1 {
		t.Fatalf("no process_id in INFO of %s", n.addr)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d (%s): %v", pid, n.addr, err)
	}
	waitUntil(t, 10*time.Second, n.addr+" to be gone", func(ctx context.Context) bool { return c.Ping(ctx).Err() != nil })
}

// start starts the node again, daemonized, on its own configuration (its
// nodes.conf makes it rejoin the cluster).
func (n *ciNode) start(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("redis-server", n.args...).CombinedOutput(); err != nil {
		t.Fatalf("restarting %s: %v\n%s", n.addr, err, out)
	}
	c := nodeClient(n.addr)
	defer c.Close()
	waitUntil(t, 10*time.Second, n.addr+" to answer", func(ctx context.Context) bool { return c.Ping(ctx).Err() == nil })
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}

func roleOf(ctx context.Context, addr string) string {
	c := nodeClient(addr)
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return ""
	}
	return infoField(info, "role")
}

func replicaInSync(ctx context.Context, addr string) bool {
	c := nodeClient(addr)
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	return err == nil && infoField(info, "master_link_status") == "up" && infoField(info, "master_sync_in_progress") == "0"
}

// clusterHealthy reports whether every node at addrs says cluster_state:ok
// and knows exactly n nodes (what .ci/redis-cluster.sh start checks).
func clusterHealthy(ctx context.Context, addrs []string, n int) error {
	for _, s := range addrs {
		c := nodeClient(s)
		info, err := c.ClusterInfo(ctx).Result()
		c.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		if infoField(info, "cluster_state") != "ok" || infoField(info, "cluster_known_nodes") != strconv.Itoa(n) {
			return fmt.Errorf("%s: cluster_state:%s, cluster_known_nodes:%s (want ok, %d)", s,
				infoField(info, "cluster_state"), infoField(info, "cluster_known_nodes"), n)
		}
	}
	return nil
}

type lentCluster struct {
	seeds   []string
	masters []*ciNode
	lent    map[string]*redisServer // master address → its lent replica
}

func (cl *lentCluster) addrs() []string {
	var a []string
	for _, m := range cl.masters {
		a = append(a, m.addr)
	}
	return a
}

// lendReplicas gives each master of the CI cluster a private replica and
// lowers the cluster's node timeout to one second; its cleanup undoes both
// and checks the cluster is as it was.
func lendReplicas(t *testing.T) *lentCluster {
	t.Helper()
	seeds := clusterSeeds()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c0 := nodeClient(seeds[0])
	defer c0.Close()
	out, err := c0.ClusterNodes(ctx).Result()
	if err != nil {
		unavailable(t, "Redis Cluster at %s (.ci/redis-cluster.sh start): %v", seeds[0], err)
	}
	cl := &lentCluster{seeds: seeds, lent: map[string]*redisServer{}}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if !strings.Contains(f[2], "master") {
			t.Fatalf("the drill expects the CI cluster (masters only); found %q", line)
		}
		addr := strings.SplitN(f[1], "@", 2)[0]
		args, err := readNodeArgs(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		cl.masters = append(cl.masters, &ciNode{addr: addr, id: f[0], args: args})
	}
	if err := clusterHealthy(ctx, cl.addrs(), len(cl.masters)); err != nil {
		unavailable(t, "Redis Cluster (.ci/redis-cluster.sh start) not healthy: %v", err)
	}
	timeouts := map[string]string{}
	for _, m := range cl.masters {
		c := nodeClient(m.addr)
		v, err := c.ConfigGet(ctx, "cluster-node-timeout").Result()
		if err == nil {
			timeouts[m.addr] = v["cluster-node-timeout"]
			err = c.ConfigSet(ctx, "cluster-node-timeout", "1000").Err()
		}
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range cl.masters {
		r := startRedis(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--cluster-config-file", "nodes.conf")
		cl.lent[m.addr] = r
	}
	// Registered after the lent servers' own cleanups, so it runs first,
	// while they are still up.
	t.Cleanup(func() { cl.restore(t, timeouts) })
	for _, m := range cl.masters {
		r := cl.lent[m.addr]
		rc := nodeClient(r.addr)
		host, port, _ := strings.Cut(m.addr, ":")
		if err := rc.ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, r.addr+" to learn the cluster", func(ctx context.Context) bool {
			nodes, err := rc.ClusterNodes(ctx).Result()
			return err == nil && strings.Contains(nodes, m.id) && strings.Count(strings.TrimSpace(nodes), "\n")+1 >= len(cl.masters)+1
		})
		if err := rc.ClusterReplicate(ctx, m.id).Err(); err != nil {
			t.Fatalf("CLUSTER REPLICATE on %s: %v", r.addr, err)
		}
		rc.Close()
	}
	for _, m := range cl.masters {
		waitSynced(t, m.addr, 1)
	}
	return cl
}

// restore puts the CI cluster back: the original masters, no lent node,
// the original node timeout.
func (cl *lentCluster) restore(t *testing.T, timeouts map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fail := func(format string, args ...any) {
		t.Errorf("restoring the CI cluster: "+format, args...)
	}
	for _, m := range cl.masters {
		c := nodeClient(m.addr)
		if c.Ping(ctx).Err() != nil {
			m.start(t)
		}
		c.Close()
		if roleOf(ctx, m.addr) != "master" {
			// Failing back needs the replica in sync with its master.
			for ctx.Err() == nil && !replicaInSync(ctx, m.addr) {
				time.Sleep(50 * time.Millisecond)
			}
			c := nodeClient(m.addr)
			err := c.Do(ctx, "cluster", "failover").Err()
			c.Close()
			if err != nil {
				fail("CLUSTER FAILOVER on %s: %v", m.addr, err)
			}
			for ctx.Err() == nil && roleOf(ctx, m.addr) != "master" {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	for _, r := range cl.lent {
		rc := nodeClient(r.addr)
		id, err := rc.ClusterMyID(ctx).Result()
		rc.Close()
		r.p.kill()
		if err != nil {
			fail("CLUSTER MYID on %s: %v", r.addr, err)
			continue
		}
		for _, m := range cl.masters {
			c := nodeClient(m.addr)
			if err := c.ClusterForget(ctx, id).Err(); err != nil && !strings.Contains(err.Error(), "Unknown node") {
				fail("CLUSTER FORGET %s on %s: %v", id, m.addr, err)
			}
			c.Close()
		}
	}
	for addr, v := range timeouts {
		c := nodeClient(addr)
		if err := c.ConfigSet(ctx, "cluster-node-timeout", v).Err(); err != nil {
			fail("CONFIG SET cluster-node-timeout on %s: %v", addr, err)
		}
		c.Close()
	}
	var err error
	for ctx.Err() == nil {
		if err = clusterHealthy(ctx, cl.addrs(), len(cl.masters)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		fail("%v", err)
		return
	}
	for _, m := range cl.masters {
		if r := roleOf(ctx, m.addr); r != "master" {
			fail("%s is %s, was master", m.addr, r)
		}
	}
	t.Logf("CI cluster restored: %d masters, no replicas, cluster_state ok on every node", len(cl.masters))
}
