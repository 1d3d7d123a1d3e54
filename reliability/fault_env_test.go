package reliability

import (
	"context"
	"database/sql"

	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// The fault, soak and sweep tests start their own servers (redis-server,
// PostgreSQL, MariaDB) on free loopback ports, or use the shared local
// services; each skips when what it needs is missing, and fails instead
// under SESSIONS_REQUIRE_SERVICES=1.

func requireServices() bool { return os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" }

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if requireServices() {
		t.Fatalf("%s (SESSIONS_REQUIRE_SERVICES=1)", msg)
	}
	t.Skip(msg)
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitUntil polls cond every 50 ms for up to limit (readiness, not a
// timing assertion).
func waitUntil(t testing.TB, limit time.Duration, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok := cond(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is a server process the test started; Cleanup kills it.
type proc struct {
	t   testing.TB
	cmd *exec.Cmd
	mu  sync.Mutex
}

func startProc(t testing.TB, log string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	if log != "" {
		f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		t.Cleanup(func() { f.Close() })
	}
	if err := cmd.Start(); err != nil {
		unavailable(t, "start %s: %v", name, err)
	}
	p := &proc{t: t, cmd: cmd}
	t.Cleanup(p.kill)
	return p
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill ends the process with SIGKILL (after SIGCONT, in case it was
// stopped) and reaps it.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// --- Redis -----------------------------------------------------------------

type redisServer struct {
	t    testing.TB
	addr string
	dir  string
	p    *proc
	bin  string
	args []string
}

// startRedis starts a private redis-server; extra arguments follow the
// defaults (no persistence).
func startRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "redis-server not installed: %v", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	all := append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
		"--logfile", filepath.Join(dir, "redis.log")}, args...)
	r := &redisServer{t: t, addr: addr, dir: dir, p: startProc(t, "", bin, all...), bin: bin, args: all}
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	waitUntil(t, 10*time.Second, "redis-server on "+addr, func(ctx context.Context) bool { return c.Ping(ctx).Err() == nil })
	return r
}

// startSentinel starts a Sentinel monitoring primary as "sk" with quorum 1
// and a one-second down-after.
func startSentinel(t testing.TB, primary string, replicas int) string {
	t.Helper()
	addr := freeAddr(t)
	_, sport, _ := net.SplitHostPort(addr)
	host, port, _ := net.SplitHostPort(primary)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	cfg := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
		"sentinel monitor sk %s %s 1\nsentinel down-after-milliseconds sk 1000\nsentinel failover-timeout sk 10000\n",
		sport, dir, filepath.Join(dir, "sentinel.log"), host, port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, "", "redis-server", conf, "--sentinel")
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer sc.Close()
	waitUntil(t, 30*time.Second, "sentinel to see the replicas", func(ctx context.Context) bool {
		r, err := sc.Replicas(ctx, "sk").Result()
		return err == nil && len(r) == replicas
	})
	return addr
}

// --- TCP proxy -------------------------------------------------------------

// tcpProxy forwards loopback connections to target. cut drops every
// connection and refuses new ones (a network partition that resets);
// restore listens again on the same address.
type tcpProxy struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
}

func (p *tcpProxy) handle(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) { _, _ = io.Copy(dst, src); done <- struct{}{} }
	go cp(up, c)
	go cp(c, up)
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *tcpProxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port was just released; retry briefly
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Errorf("proxy restore: %v", err)
		return
	}
	p.serve(ln)
}

// --- PostgreSQL ------------------------------------------------------------

type pgServer struct {
	t    testing.TB
	bin  string
	dir  string
	port string
	log  string
}

// pgBin finds the newest /usr/lib/postgresql/*/bin.
func pgBin() string {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(m) == 0 {
		return ""
	}
	return filepath.Dir(m[len(m)-1])
}

// asPostgres runs a PostgreSQL tool as the postgres user when the test
// runs as root (the server refuses root).
func asPostgres(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// startPostgres initdb's a private instance in a temp dir on a free port
// (trust auth) and starts it; extra are postgres -c settings.
func startPostgres(t testing.TB, extra ...string) *pgServer {
	t.Helper()
	bin := pgBin()
	if bin == "" {
		unavailable(t, "PostgreSQL server binaries not found under /usr/lib/postgresql")
	}
	base, err := os.MkdirTemp("", "sessionkit-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres", base).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	s := &pgServer{t: t, bin: bin, dir: filepath.Join(base, "data"), port: port, log: filepath.Join(base, "pg.log")}
	if out, err := asPostgres(filepath.Join(bin, "initdb"), "-D", s.dir, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		unavailable(t, "initdb: %v\n%s", err, out)
	}
	opts := "-c listen_addresses=127.0.0.1 -c port=" + port + " -c unix_socket_directories= -c fsync=off -c max_connections=200"
	for _, e := range extra {
		opts += " -c " + e
	}
	conf := filepath.Join(s.dir, "postgresql.auto.conf")
	var b strings.Builder
	for _, kv := range strings.Split(opts, " -c ") {
		kv = strings.TrimPrefix(kv, "-c ")
		if k, v, ok := strings.Cut(kv, "="); ok {
			fmt.Fprintf(&b, "%s = '%s'\n", k, v)
		}
	}
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		_ = exec.Command("chown", "postgres", conf).Run()
	}
	s.start()
	t.Cleanup(func() { _ = s.ctl("stop", "-m", "immediate") })
	return s
}

func (s *pgServer) ctl(args ...string) error {
	all := append([]string{"-D", s.dir, "-l", s.log, "-w", "-t", "30"}, args...)
	out, err := asPostgres(filepath.Join(s.bin, "pg_ctl"), all...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %v\n%s", args, err, out)
	}
	return nil
}

func (s *pgServer) start() {
	s.t.Helper()
	if err := s.ctl("start"); err != nil {
		log, _ := os.ReadFile(s.log)
		s.t.Fatalf("%v\n%s", err, log)
	}
}

func (s *pgServer) addr() string { return "127.0.0.1:" + s.port }

// dsn is a pgx connection string for the instance's postgres database.
func pgDSN(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable connect_timeout=1", host, port)
}

// --- MariaDB ---------------------------------------------------------------

type mariaServer struct {
	t    testing.TB
	dir  string
	port string
	p    *proc
	log  string
}

// startMaria installs a private MariaDB data dir and starts mariadbd on a
// free port.
func startMaria(t testing.TB) *mariaServer {
	t.Helper()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			unavailable(t, "mariadbd not installed")
		}
	}
	base := t.TempDir()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	s := &mariaServer{t: t, dir: filepath.Join(base, "data"), port: port, log: filepath.Join(base, "maria.log")}
	user := "--user=" + currentUser()
	if out, err := exec.Command("mariadb-install-db", "--no-defaults", user, "--datadir="+s.dir,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		unavailable(t, "mariadb-install-db: %v\n%s", err, out)
	}
	s.start()
	t.Cleanup(func() {
		if s.p != nil {
			s.p.kill()
		}
	})
	return s
}

func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return os.Getenv("USER")
}

func (s *mariaServer) start() {
	s.t.Helper()
	s.p = startProc(s.t, s.log, "/usr/sbin/mariadbd", "--no-defaults", "--user="+currentUser(), "--datadir="+s.dir,
		"--bind-address=127.0.0.1", "--port="+s.port, "--socket="+filepath.Join(s.dir, "sock"),
		"--skip-name-resolve", "--innodb-flush-log-at-trx-commit=2", "--max-connections=300",
		"--innodb-buffer-pool-size=256M", "--pid-file="+filepath.Join(s.dir, "pid"))
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:"+s.port+")/")
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	waitUntil(s.t, 60*time.Second, "mariadbd on port "+s.port, func(ctx context.Context) bool {
		_, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS test")
		return err == nil
	})
}

// restart kills mariadbd (SIGKILL: a crash, recovered by InnoDB) and starts
// it again on the same data dir.
func (s *mariaServer) restart() {
	s.p.kill()
	s.start()
}

func (s *mariaServer) addr() string { return "127.0.0.1:" + s.port }

type nopLogger struct{}

func (nopLogger) Print(...any) {}

func init() { _ = mysql.SetLogger(nopLogger{}) }

// waitSynced waits until n replicas of the server at addr acknowledge its
// writes.
func waitSynced(t testing.TB, addr string, n int64) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	waitUntil(t, 30*time.Second, "the replicas of "+addr+" to sync", func(ctx context.Context) bool {
		k, err := c.Wait(ctx, int(n), 100*time.Millisecond).Result()
		return err == nil && k >= n
	})
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...interface{}) {}

func init() { redis.SetLogger(discardRedisLog{}) }
