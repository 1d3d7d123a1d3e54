package sessiontest_test

import (
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/sessiontest"
)

// A store's own test file runs the suite with a function that returns a
// fresh, empty store for each subtest. This one checks memstore; a store on
// a database would open its connection (skipping the test when the service
// is unreachable) and give each subtest its own table or key prefix derived
// from t.Name(), removing it with t.Cleanup.
func ExampleTestStore() {
	_ = func(t *testing.T) { // func TestConformance(t *testing.T)
		sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
			s, err := memstore.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, nil)
	}
}

// A store that keeps expiries in whole seconds, on a server whose own
// expiry clock the test controls (like miniredis), declares both.
func ExampleOptions() {
	var server interface{ FastForward(time.Duration) } // e.g. a *miniredis.Miniredis
	_ = &sessiontest.Options{
		Precision: time.Second,
		Advance:   func(t *testing.T, d time.Duration) { server.FastForward(d) },
	}
}
