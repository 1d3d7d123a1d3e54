//go:build unix

package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// The bolt kinds keep sessions in a bbolt file of the test's own. bbolt
// locks the file for the one process that has it open, so the suite cannot
// count records while an app runs (the kinds have no count, like memory),
// and the cases that run several instances on one store skip them
// (singleProcess); TestBoltOneInstance checks what a second instance gets
// instead.
func init() {
	bolt := &storeKind{name: "bolt", persistent: true, singleProcess: true, setup: setupBolt, unreachable: unreachableBolt}
	cache := cacheKind("bolt", setupBolt, unreachableBolt, nil, nil)
	cache.singleProcess = true
	storeKinds = append(storeKinds, bolt, cache)
}

func setupBolt(t *testing.T) ([]string, func(*testing.T) int) {
	return []string{"-store", "bolt", "-dsn", filepath.Join(t.TempDir(), "sessions.bolt")}, nil
}

// unreachableBolt gives the app a file that this process holds open, and
// so locked: the app must give up within boltstore.DefaultOpenTimeout with
// the reason, not hang. The file has no network address, so the "silent"
// case skips it.
func unreachableBolt(t *testing.T, _ string) []string {
	path := filepath.Join(t.TempDir(), "sessions.bolt")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return []string{"-store", "bolt", "-dsn", path}
}

// TestBoltOneInstance: while one app has the file, a second one on the
// same file exits with status 1 and the lock error within a few seconds,
// and the first keeps serving; once the first stops, an app on the file
// sees its sessions.
func TestBoltOneInstance(t *testing.T) {
	t.Parallel()
	flags, _ := setupBolt(t)
	a := startApp(t, flags...)
	tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))

	res := runToExit(t, flags...)
	if res.code != 1 {
		t.Fatalf("second app on the same file: exit status %d, want 1; stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if strings.Contains(res.stdout, "listening on") || !strings.Contains(res.stderr, "locked") {
		t.Errorf("second app: stdout %q, stderr %q; want no \"listening on\" and the lock error", res.stdout, res.stderr)
	}
	if res.elapsed > 15*time.Second {
		t.Errorf("second app took %v to give up", res.elapsed)
	}
	t.Logf("second app exited after %v: %s", res.elapsed, strings.TrimSpace(res.stderr))

	want(t, a.get(t, "/get?key=a", tok), http.StatusOK, "1")
	a.stop()
	b := startApp(t, flags...)
	want(t, b.get(t, "/get?key=a", tok), http.StatusOK, "1")
}
