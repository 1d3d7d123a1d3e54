//go:build unix

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a private redis-server, for outages.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	aof  bool
	cmd  *exec.Cmd
	done chan struct{}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRedisServer starts a private redis-server; with aof, it persists
// every write to an append-only file in its directory, so that it survives
// SIGKILL.
func startRedisServer(t *testing.T, aof bool) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if requireServices() {
			t.Fatalf("redis-server required (SESSIONS_REQUIRE_SERVICES=1) but not found: %v", err)
		}
		t.Skipf("no redis-server binary for a private server: %v", err)
	}
	s := &redisServer{t: t, bin: bin, port: freePort(t), dir: t.TempDir(), aof: aof}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func (s *redisServer) start() {
	t := s.t
	t.Helper()
	args := []string{"--port", fmt.Sprint(s.port), "--bind", "127.0.0.1", "--dir", s.dir, "--save", ""}
	if s.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	s.cmd = exec.Command(s.bin, args...)
	s.done = make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("private redis-server on port %d not answering: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *redisServer) signal(sig syscall.Signal) {
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redis-server: %v: %v", sig, err)
	}
}

// kill ends the server (resuming it first if it was stopped).
func (s *redisServer) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	<-s.done
}

// redisFlags returns the app flags for the kind's store on a Redis at dsn.
func redisFlags(k *storeKind, dsn string) []string {
	if k.cache {
		return []string{"-store", "cache", "-back", "redis", "-dsn", dsn}
	}
	return []string{"-store", "redis", "-dsn", dsn}
}

// outageRequests are the requests sent while the store is down: every one
// needs the session, so every one must fail with a 5xx and no cookie.
var outageRequests = []struct {
	path       string
	withCookie bool
}{
	{"/get?key=a", true},
	{"/keys", true},
	{"/set?key=a&value=2", true},
	{"/set?key=new&value=2", true},
	{"/incr?key=n", true},
	{"/delete?key=a", true},
	{"/clear", true},
	{"/destroy", true},
	{"/renew", true},
	{"/login?user=u", true},
	{"/expiry?idle=5", true},
	{"/status?code=201&key=a&value=3", true},
	{"/set?key=a&value=1", false},
	{"/login?user=u", false},
	{"/logout-all?user=u", false},
}

// duringOutage sends outageRequests, all at once, and checks their answers.
func duringOutage(t *testing.T, a *app, tok string) {
	t.Helper()
	results := parallel(t, len(outageRequests), func(i int) *result {
		token := ""
		if outageRequests[i].withCookie {
			token = tok
		}
		return a.get(t, outageRequests[i].path, token)
	})
	for _, r := range results {
		if r.code < 500 {
			t.Errorf("GET %s during a store outage: %d %q, want a 5xx", r.path, r.code, r.body)
		}
		if r.elapsed > 15*time.Second {
			t.Errorf("GET %s during a store outage took %v, want at most 15 s", r.path, r.elapsed)
		}
		if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
			t.Errorf("GET %s during a store outage: Set-Cookie %q", r.path, sc)
		}
	}
	// A route that does not touch the session does not notice.
	r := a.get(t, "/", tok)
	want(t, r, http.StatusOK, "ok")
	if r.elapsed > 2*time.Second {
		t.Errorf("GET / during a store outage took %v", r.elapsed)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// afterOutage checks that the session survived with its data, waiting up to
// 15 s for the app to reconnect.
func afterOutage(t *testing.T, a *app, tok string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := a.get(t, "/keys", tok)
		if r.code == http.StatusOK {
			want(t, r, http.StatusOK, `["a"]`)
			break
		}
		if r.code < 500 || time.Now().After(deadline) {
			t.Fatalf("GET /keys after the outage: %d %q", r.code, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	want(t, a.get(t, "/get?key=a", tok), http.StatusOK, "1")
	r := a.get(t, "/set?key=b&value=2", tok)
	want(t, r, http.StatusOK, "ok")
	noCookieWith(t, a, r, "") // no removal cookie
	want(t, a.get(t, "/keys", tok), http.StatusOK, `["a","b"]`)
}

func testOutagePaused(t *testing.T, e *env) {
	if !e.kind.redis {
		// A shared service cannot be paused: hold its traffic instead.
		te := e.fresh(t)
		p := startProxy(t, e.kind.serviceAddr())
		a := startApp(t, te.via(p.addr)...)
		tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
		p.pause()
		defer p.resume()
		if e.kind.cache {
			time.Sleep(1200 * time.Millisecond) // past -cache-age: the front must ask the back
		}
		duringOutage(t, a, tok)
		p.resume()
		afterOutage(t, a, tok)
		return
	}
	srv := startRedisServer(t, false)
	a := startApp(t, redisFlags(e.kind, srv.url())...)
	tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	srv.signal(syscall.SIGSTOP)
	resumed := false
	defer func() {
		if !resumed {
			srv.signal(syscall.SIGCONT)
		}
	}()
	if e.kind.cache {
		time.Sleep(1200 * time.Millisecond)
	}
	duringOutage(t, a, tok)
	srv.signal(syscall.SIGCONT)
	resumed = true
	afterOutage(t, a, tok)
}

func testOutageKilled(t *testing.T, e *env) {
	if !e.kind.redis {
		// A shared service cannot be killed: cut its connections instead.
		te := e.fresh(t)
		p := startProxy(t, e.kind.serviceAddr())
		a := startApp(t, te.via(p.addr)...)
		tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
		p.kill()
		if e.kind.cache {
			time.Sleep(1200 * time.Millisecond)
		}
		duringOutage(t, a, tok)
		p.restart()
		afterOutage(t, a, tok)
		return
	}
	srv := startRedisServer(t, true)
	a := startApp(t, redisFlags(e.kind, srv.url())...)
	tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	srv.kill()
	if e.kind.cache {
		time.Sleep(1200 * time.Millisecond)
	}
	duringOutage(t, a, tok)
	srv.start() // same port, same append-only file
	afterOutage(t, a, tok)
}

// eventually polls check until it reports true, failing t after within.
func eventually(t *testing.T, within time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, got := check()
		if ok {
			return
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not seen within %v (last: %s)", what, within, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testCacheInstances(t *testing.T, e *env) {
	const cacheAge = time.Second
	within := cacheAge + 750*time.Millisecond // plus request latency
	a := e.start(t, "-cache-age", cacheAge.String())
	b := e.start(t, "-cache-age", cacheAge.String())
	sees := func(x *app, path, tok string, code int, body string) func() (bool, string) {
		return func() (bool, string) {
			r := x.get(t, path, tok)
			if r.code >= 500 {
				t.Fatalf("GET %s: %d %q", path, r.code, r.body)
			}
			return r.code == code && r.body == body, fmt.Sprintf("%d %q", r.code, r.body)
		}
	}

	tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	want(t, b.get(t, "/get?key=a", tok), http.StatusOK, "1") // b caches it now
	want(t, a.get(t, "/set?key=a&value=2", tok), http.StatusOK, "ok")
	eventually(t, within, "instance B seeing A's write", sees(b, "/get?key=a", tok, http.StatusOK, "2"))
	want(t, b.get(t, "/set?key=b&value=3", tok), http.StatusOK, "ok")
	eventually(t, within, "instance A seeing B's write", sees(a, "/get?key=b", tok, http.StatusOK, "3"))

	// Concurrent increments through both instances are never lost.
	results := parallel(t, 20, func(i int) *result {
		x := a
		if i%2 == 1 {
			x = b
		}
		return x.get(t, "/incr?key=n&delay=100", tok)
	})
	for _, r := range results {
		wantCode(t, r, http.StatusOK)
	}
	eventually(t, within, "both instances seeing 20 increments", func() (bool, string) {
		ra, rb := a.get(t, "/get?key=n", tok), b.get(t, "/get?key=n", tok)
		return ra.body == "20" && rb.body == "20", ra.body + " / " + rb.body
	})

	// A renewal on A retires the old ID on B too.
	r := a.get(t, "/renew", tok)
	want(t, r, http.StatusOK, "ok")
	renewed := newSession(t, a, r)
	eventually(t, within, "instance B dropping the renewed ID", sees(b, "/get?key=a", tok, http.StatusNotFound, "not found"))
	want(t, b.get(t, "/get?key=a", renewed), http.StatusOK, "2")

	// A destroy on B ends the session on A too.
	want(t, a.get(t, "/get?key=a", renewed), http.StatusOK, "2") // a caches it now
	want(t, b.get(t, "/destroy", renewed), http.StatusOK, "ok")
	eventually(t, within, "instance A seeing B's destroy", sees(a, "/get?key=a", renewed, http.StatusNotFound, "not found"))
	noSession(t, a, renewed)
	e.wantRecords(t, 0, "after the destroy")

	// Logging out everywhere from A reaches sessions B serves.
	c := newClient(b)
	want(t, c.get(t, "/login?user=zoe"), http.StatusOK, "ok")
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	want(t, a.get(t, "/logout-all?user=zoe", ""), http.StatusOK, "1")
	eventually(t, within, "instance B seeing A's logout-all", sees(b, "/get?key=a", c.token(), http.StatusNotFound, "not found"))
}

// TestStartup checks the app's refusals that do not depend on a store.
func TestStartup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"-store", "cookie"}, 2, "-key"},
		{[]string{"-store", "cookie", "-key", strings.Repeat("k", 32), "-revocation", "cookie"}, 2, "revocation"},
		{[]string{"-store", "cookie", "-key", strings.Repeat("k", 32), "-revocation", "cache"}, 2, "revocation"},
		{[]string{"-store", "memory", "-revocation", "memory"}, 2, "revocation"},
		{[]string{"-store", "nosuch"}, 2, "nosuch"},
		{[]string{"-store", "cache", "-back", "memory"}, 2, "memory"},
		{[]string{"-store", "cache", "-back", "cookie"}, 2, "cookie"},
		{[]string{"-nosuchflag"}, 2, "nosuchflag"},
		{[]string{"-idle", "soon"}, 2, "idle"},
		{[]string{"extra"}, 2, "extra"},
		{[]string{"-cache-age", "0s", "-store", "cache"}, 2, "cache-age"},
		{[]string{"-store", "postgres", "-dsn", "::not a dsn::"}, 2, "postgres"},
		{[]string{"-store", "mysql", "-dsn", "nope"}, 2, "mysql"},
		{[]string{"-store", "redis", "-dsn", "http://127.0.0.1/0"}, 2, "redis"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			res := runToExit(t, tc.args...)
			if res.code != tc.code || strings.Contains(res.stdout, "listening on") || !strings.Contains(res.stderr, tc.inStderr) {
				t.Fatalf("testapp %q: exit %d, stdout %q, stderr %q; want exit %d and %q on stderr",
					tc.args, res.code, res.stdout, res.stderr, tc.code, tc.inStderr)
			}
		})
	}

	t.Run("address in use", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cmd := exec.Command(appBinary, "-addr", ln.Addr().String())
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), "listening on") {
			t.Fatalf("testapp on a busy address: %v, output %q", err, out)
		}
	})

	t.Run("keys accepted", func(t *testing.T) {
		t.Parallel()
		a := startApp(t, "-key", strings.Repeat("a", 32), "-key", strings.Repeat("b", 40))
		want(t, a.get(t, "/", ""), http.StatusOK, "ok")
	})

	t.Run("help", func(t *testing.T) {
		t.Parallel()
		out, err := exec.Command(appBinary, "-h").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "-store") {
			t.Fatalf("testapp -h: %v\n%s", err, out)
		}
	})

	t.Run("methods", func(t *testing.T) {
		t.Parallel()
		a := startApp(t)
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			r := a.do(t, m, "/set?key=a&value=1")
			wantCode(t, r, http.StatusMethodNotAllowed)
			noSetCookie(t, r)
		}
		wantCode(t, a.get(t, "/nosuchroute", ""), http.StatusNotFound)
		wantCode(t, a.get(t, "/get?key=a&delay=soon", ""), http.StatusBadRequest)
		wantCode(t, a.get(t, "/get?key=a&delay=-1", ""), http.StatusBadRequest)
	})
}
