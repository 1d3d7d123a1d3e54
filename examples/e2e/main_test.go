//go:build unix

// Package e2e holds black-box end-to-end tests of sessionkit: they build the
// conformance app (../testapp), start instances of it on free ports with
// every store kind, and drive them over real HTTP.
//
// Service-backed kinds (PostgreSQL, MySQL/MariaDB, Redis) use the local
// services, or SESSIONS_POSTGRES_DSN, SESSIONS_MYSQL_DSN and
// SESSIONS_REDIS_URL; they are skipped when the service is unreachable,
// and fail instead under SESSIONS_REQUIRE_SERVICES=1. The app binary is
// built without the race detector (the library's own tests run its
// concurrency under -race; an instrumented pure-Go SQLite would make this
// suite several times slower); set E2E_APP_RACE=1 to build it with -race,
// and the suite then also fails on any race report in an app's output.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// appBinary is the conformance app built by TestMain.
var appBinary string

// appRace reports whether the app was built with -race.
var appRace = os.Getenv("E2E_APP_RACE") == "1"

// defaultParallel replaces go test's default -parallel (GOMAXPROCS): most
// tests spend their time waiting for timeouts to pass in the app, not on
// the CPU.
const defaultParallel = "16"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", defaultParallel)
	}
	dir, err := os.MkdirTemp("", "sessionkit-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	appBinary = filepath.Join(dir, "testapp")
	args := []string{"build", "-o", appBinary}
	if appRace {
		args = append(args, "-race")
	}
	args = append(args, "github.com/sessionkit/sessions/examples/testapp")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the testapp:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	runCleanups()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Run-wide cleanups (databases created once per run).
var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

func runCleanups() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// app is one running instance of the conformance app.
type app struct {
	t      *testing.T
	args   []string
	url    string // http://HOST:PORT
	name   string // the session cookie's name the flags imply
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, once done is closed
	once   sync.Once
	// sealed: client-side sessions (-store cookie); signed: signed tokens
	// (-key with a server-side store).
	sealed, signed bool
}

// startAppNoFatal is startApp for goroutines other than the test's: it
// reports a failed start with t.Errorf and returns nil.
func startAppNoFatal(t *testing.T, args ...string) *app {
	a, err := launch(t, args...)
	if err != nil {
		t.Error(err)
		return nil
	}
	return a
}

// startApp starts the app with args (plus -addr 127.0.0.1:0) and waits for
// its "listening on" line. The app is stopped, and its clean exit
// checked, when the test ends.
func startApp(t *testing.T, args ...string) *app {
	t.Helper()
	a, err := launch(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// launch starts the app and waits for its "listening on" line.
func launch(t *testing.T, args ...string) (*app, error) {
	a := &app{t: t, args: args, name: cookieName(args), done: make(chan struct{})}
	a.sealed, a.signed = sessionMode(args)
	a.cmd = exec.Command(appBinary, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	a.cmd.Stderr = &a.stderr
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the testapp: %w", err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(&a.stdout, line)
			if u, ok := strings.CutPrefix(line, "listening on "); ok && !sent {
				listening <- strings.TrimSpace(u)
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, out)
		a.err = a.cmd.Wait()
		close(a.done)
	}()
	select {
	case u := <-listening:
		t.Cleanup(func() { a.stop() })
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			return nil, fmt.Errorf("testapp %v printed %q, want listening on http://127.0.0.1:PORT", args, u)
		}
		a.url = u
		return a, nil
	case <-a.done:
		return nil, fmt.Errorf("testapp %v exited before listening (%v); stderr:\n%s", args, a.err, a.stderr.String())
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		return nil, fmt.Errorf("testapp %v: no \"listening on\" within 30 s; stderr:\n%s", args, a.stderr.String())
	}
}

// stop sends SIGTERM and checks that the app exits with status 0 within
// 10 s. It runs once; later calls do nothing.
func (a *app) stop() {
	a.once.Do(func() { a.signalAndWait(syscall.SIGTERM) })
}

// signalAndWait sends sig and checks for a clean exit within 10 s.
func (a *app) signalAndWait(sig os.Signal) {
	t := a.t
	t.Helper()
	start := time.Now()
	_ = a.cmd.Process.Signal(sig)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		t.Errorf("testapp %v did not exit within 10 s of %v", a.args, sig)
		return
	}
	if a.err != nil {
		t.Errorf("testapp %v exited after %v with %v, want status 0; stderr:\n%s", a.args, sig, a.err, a.stderr.String())
	}
	if appRace && strings.Contains(a.stderr.String(), "WARNING: DATA RACE") {
		t.Errorf("testapp %v reported a data race:\n%s", a.args, a.stderr.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("testapp %v took %v to exit", a.args, d)
	}
	if t.Failed() {
		// What the app logged about its sessions, for the failure's cause.
		var lines []string
		for l := range strings.Lines(a.stderr.String()) {
			if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 20 {
			lines = append(lines[:20], fmt.Sprintf("... and %d more\n", len(lines)-20))
		}
		if len(lines) > 0 {
			t.Logf("testapp %v logged:\n%s", a.args, strings.Join(lines, ""))
		}
	}
}

// exitResult is the outcome of a run that is expected to end by itself.
type exitResult struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// runToExit runs the app with args and waits (at most 40 s) for it to exit.
func runToExit(t *testing.T, args ...string) exitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, appBinary, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := exitResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("testapp %v still running after 40 s; stdout:\n%s", args, res.stdout)
	}
	res.code = cmd.ProcessState.ExitCode()
	if err != nil && res.code <= 0 {
		t.Fatalf("testapp %v: %v", args, err)
	}
	return res
}

// cookieName is the name of the session cookie that the app's flags imply:
// -cookie-name, or the library's default without the prefixes that
// -insecure, -domain and -path break.
func cookieName(args []string) string {
	var name, domain, path string
	insecure := false
	for i := 0; i < len(args); i++ {
		flagName, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		next := func() string {
			if hasValue {
				return value
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch flagName {
		case "cookie-name":
			name = next()
		case "domain":
			domain = next()
		case "path":
			path = next()
		case "insecure":
			insecure = !hasValue || value == "true"
		case "store", "back", "dsn", "idle", "lifetime", "same-site", "cache-age", "key", "addr", "revocation":
			next()
		}
	}
	switch {
	case name != "":
		return name
	case insecure || domain != "" || (path != "" && path != "/"):
		return "session" // the default without the prefix whose rules break
	}
	return "__Host-session"
}

// sessionMode reports whether the app's flags select client-side sessions
// (-store cookie) or signed tokens (-key with a server-side store).
func sessionMode(args []string) (sealed, signed bool) {
	keys := false
	for i, a := range args {
		switch strings.TrimLeft(a, "-") {
		case "store":
			sealed = i+1 < len(args) && args[i+1] == "cookie"
		case "store=cookie":
			sealed = true
		case "key":
			keys = true
		default:
			keys = keys || strings.HasPrefix(strings.TrimLeft(a, "-"), "key=")
		}
	}
	return sealed, keys && !sealed
}
