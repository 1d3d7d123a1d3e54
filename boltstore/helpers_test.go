package boltstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionkit/sessions/boltstore"
)

// t0 is an arbitrary "now": the store compares against the caller's clock
// only, so tests use fixed instants.
var t0 = time.UnixMilli(1_750_000_000_000)

// helperEnv, when set, makes the test binary act as a second process for
// the lock tests (see helperMain) instead of running tests.
const helperEnv = "BOLTSTORE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// tempPath returns a path for a bolt file in a directory of the test's own.
func tempPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "sessions.bolt")
}

// newStore opens a store on a fresh file, closed when the test ends.
// There is no server: every test, and every conformance case, has a file
// of its own, so t.Parallel() is safe.
func newStore(tb testing.TB, opts *boltstore.Options) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.Open(tempPath(tb), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// checkIndexes fails the test when the indexes do not match the records.
func checkIndexes(tb testing.TB, s *boltstore.Store, after string) {
	tb.Helper()
	if err := s.CheckIndexes(); err != nil {
		tb.Fatalf("after %s: %v", after, err)
	}
}

// testID returns a well-formed id (lower-case hex SHA-256) unique to the
// test and n.
func testID(tb testing.TB, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tb.Name(), n))
	return hex.EncodeToString(sum[:])
}

// rawKey returns the 32 bytes an id stands for.
func rawKey(id string) []byte {
	b, err := hex.DecodeString(id)
	if err != nil {
		panic(err)
	}
	return b
}

var bg = context.Background()
