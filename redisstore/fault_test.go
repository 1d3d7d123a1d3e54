package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessions"
)

// privateRedis is a redis-server the test starts on a free port, so that
// stopping or killing it disturbs nobody else.
type privateRedis struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
	bin  string
	args []string // extra redis-server arguments
}

// startPrivateRedis starts redis-server with an append-only file synced on
// every write, so that a killed server restarts with its data.
func startPrivateRedis(t *testing.T, args ...string) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "redis-server not installed: %v", err)
	}
	addr := freeAddr(t)
	r := &privateRedis{t: t, addr: addr, dir: t.TempDir(), bin: bin, args: args}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (r *privateRedis) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command(r.bin, "--port", port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--logfile", filepath.Join(r.dir, "redis.log"))
	r.cmd.Args = append(r.cmd.Args, r.args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.t.Fatalf("redis-server on %s did not answer: %v\n%s", r.addr, err, log)
		}
		time.Sleep(20 * time.Millisecond) // polling for readiness, not a timing assertion
	}
}

func (r *privateRedis) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v: %v", sig, err)
	}
}

func (r *privateRedis) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// kill ends the server abruptly and starts it again with the same data.
func (r *privateRedis) kill() {
	r.t.Helper()
	r.signal(syscall.SIGKILL)
	_ = r.cmd.Wait()
	r.cmd = nil
}

func (r *privateRedis) restart() {
	r.t.Helper()
	r.start()
}

// faultApp is a Manager over a Store on the private server, behind an
// httptest server, with a client that keeps cookies.
type faultApp struct {
	t       *testing.T
	srv     *httptest.Server
	client  *http.Client
	proceed chan struct{} // /slow waits on it between load and save
	loaded  chan struct{} // /slow signals it after loading
}

const storeTimeout = 300 * time.Millisecond

func newFaultApp(t *testing.T, addr string) *faultApp {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	store, err := New(c, &Options{Prefix: "fault:", Timeout: storeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessions.New(store, &sessions.Options{
		InsecureCookie: true,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &faultApp{t: t, proceed: make(chan struct{}), loaded: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/inc", func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "n", func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		n, _, err := sessions.Get[int](sessions.FromContext(r.Context()), "n")
		if err != nil {
			http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		n, _, err := sessions.Get[int](s, "n")
		if err != nil {
			http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
			return
		}
		a.loaded <- struct{}{}
		<-a.proceed
		if err := s.Set("n", n+100); err != nil {
			http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, n+100) // the save runs before this body is written
	})
	a.srv = httptest.NewServer(m.Handler(mux))
	t.Cleanup(a.srv.Close)
	jar, _ := cookiejar.New(nil)
	a.client = &http.Client{Jar: jar, Timeout: 10 * time.Second}
	return a
}

type response struct {
	status    int
	body      string
	setCookie bool
	elapsed   time.Duration
}

func (a *faultApp) get(path string) response {
	a.t.Helper()
	start := time.Now()
	resp, err := a.client.Get(a.srv.URL + path)
	if err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, strings.TrimSpace(string(body)), len(resp.Header.Values("Set-Cookie")) > 0, time.Since(start)}
}

func (a *faultApp) wantCount(path string, n int) {
	a.t.Helper()
	r := a.get(path)
	if r.status != http.StatusOK || r.body != strconv.Itoa(n) {
		a.t.Fatalf("GET %s = %d %q; want 200 %d", path, r.status, r.body, n)
	}
}

// wantOutage checks that a request needing the session fails with a 5xx,
// no later than the store timeout allows, and without a Set-Cookie.
func (a *faultApp) wantOutage(path string) {
	a.t.Helper()
	r := a.get(path)
	if r.status < 500 {
		a.t.Errorf("GET %s during the outage = %d %q; want a 5xx", path, r.status, r.body)
	}
	if r.setCookie {
		a.t.Errorf("GET %s during the outage sent Set-Cookie", path)
	}
	// The store gives up at its Timeout; allow generous scheduling slack
	// under -race, far below go-redis's own 3 s read timeout.
	if limit := storeTimeout + 2*time.Second; r.elapsed > limit {
		a.t.Errorf("GET %s during the outage took %v; want under %v", path, r.elapsed, limit)
	}
}

func TestFaultServerPaused(t *testing.T) {
	t.Parallel()
	r := startPrivateRedis(t)
	a := newFaultApp(t, r.addr)
	a.wantCount("/inc", 1)
	a.wantCount("/inc", 2)

	r.signal(syscall.SIGSTOP)
	a.wantOutage("/get")
	a.wantOutage("/inc")
	r.signal(syscall.SIGCONT)

	a.wantCount("/get", 2)
	a.wantCount("/inc", 3)
}

func TestFaultServerKilled(t *testing.T) {
	t.Parallel()
	r := startPrivateRedis(t)
	a := newFaultApp(t, r.addr)
	a.wantCount("/inc", 1)
	a.wantCount("/inc", 2)

	r.kill()
	a.wantOutage("/get")
	a.wantOutage("/inc")
	r.restart()

	a.wantCount("/get", 2)
	a.wantCount("/inc", 3)
}

// TestFaultBetweenLoadAndSave pauses the server after a request loaded its
// session and before it saves: the save fails before any byte is sent (the
// Manager's error response, no Set-Cookie) and the stored session is the
// one from before the request.
func TestFaultBetweenLoadAndSave(t *testing.T) {
	t.Parallel()
	r := startPrivateRedis(t)
	a := newFaultApp(t, r.addr)
	a.wantCount("/inc", 1)

	done := make(chan response)
	go func() {
		start := time.Now()
		resp, err := a.client.Get(a.srv.URL + "/slow")
		if err != nil {
			done <- response{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		done <- response{resp.StatusCode, strings.TrimSpace(string(body)), len(resp.Header.Values("Set-Cookie")) > 0, time.Since(start)}
	}()
	<-a.loaded
	r.signal(syscall.SIGSTOP)
	close(a.proceed)
	resp := <-done
	r.signal(syscall.SIGCONT)
	if resp.status < 500 || resp.setCookie || resp.body == "101" {
		t.Fatalf("save during the outage: %d %q (Set-Cookie %v); want a 5xx without Set-Cookie", resp.status, resp.body, resp.setCookie)
	}
	a.wantCount("/get", 1)
	a.wantCount("/inc", 2)
}

// TestFaultStoreErrors checks the store's own errors during an outage, for
// clients with and without ContextTimeoutEnabled: returned within the
// store's Timeout, wrapped with the operation, and matching
// context.DeadlineExceeded.
func TestFaultStoreErrors(t *testing.T) {
	t.Parallel()
	r := startPrivateRedis(t)
	for _, aware := range []bool{true, false} {
		c := redis.NewClient(&redis.Options{Addr: r.addr, ContextTimeoutEnabled: aware, MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		s, err := New(c, &Options{Timeout: storeTimeout})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		id, now := newID(t), time.Now()
		if ok, err := s.Create(ctx, id, []byte("x"), now.Add(time.Hour), "", now); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		r.signal(syscall.SIGSTOP)
		start := time.Now()
		_, _, _, found, err := s.Load(ctx, id, now)
		elapsed := time.Since(start)
		r.signal(syscall.SIGCONT)
		if found || !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "redisstore: load: ") {
			t.Fatalf("ContextTimeoutEnabled=%v: Load during the outage = %v, %v; want a wrapped deadline error", aware, found, err)
		}
		if elapsed > storeTimeout+2*time.Second {
			t.Fatalf("ContextTimeoutEnabled=%v: Load took %v with Timeout %v", aware, elapsed, storeTimeout)
		}
		if _, _, _, found, err := s.Load(ctx, id, now); !found || err != nil {
			t.Fatalf("ContextTimeoutEnabled=%v: Load after the outage = %v, %v", aware, found, err)
		}
	}
}
