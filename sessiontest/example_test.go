package sessiontest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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

// A handler test prepares a logged-in session with Login, runs the handler
// and reads back what the session holds with Result.
func ExampleLogin() {
	st, _ := memstore.New(nil)
	m, _ := sessions.New(st, nil)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		user, _ := s.Owner()
		sessions.AddFlash(s, "flash", "welcome back, "+user)
	}))

	t := &testing.T{} // in a real test, the test's own t
	r := httptest.NewRequest("GET", "/", nil)
	sessiontest.Login(t, m, r, "alice", map[string]any{"theme": "dark"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	snap := sessiontest.Result(t, m, r, w)
	flashes, _ := sessiontest.Get[[]string](snap, "flash")
	theme, _ := sessiontest.Get[string](snap, "theme")
	fmt.Println(snap.Owner, theme, flashes)
	// Output: alice dark [welcome back, alice]
}
