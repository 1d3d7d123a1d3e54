package sessiontest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/sessiontest"
)

// cart is the handler under test: it needs a logged-in user and counts
// the items added; /logout destroys the session.
func cart(w http.ResponseWriter, r *http.Request) {
	s := sessions.FromContext(r.Context())
	if r.URL.Path == "/logout" {
		s.Destroy()
		return
	}
	user, _ := s.Owner()
	if user == "" {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	n, err := sessions.Update(s, "items", func(n int) int { return n + 1 })
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "%s has %d items", user, n)
}

func newManager(t *testing.T) *sessions.Manager {
	st, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessions.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHandlerHelpers(t *testing.T) {
	m := newManager(t)
	h := m.Handler(http.HandlerFunc(cart))

	r := httptest.NewRequest("POST", "/add", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || sessiontest.Result(t, m, r, w) != nil {
		t.Errorf("anonymous: %d, want 401 and no session", w.Code)
	}

	r = httptest.NewRequest("POST", "/add", nil)
	sessiontest.Login(t, m, r, "alice", map[string]any{"items": 2})
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Body.String() != "alice has 3 items" {
		t.Errorf("logged in: %d %q", w.Code, w.Body)
	}
	snap := sessiontest.Result(t, m, r, w)
	if n, ok := sessiontest.Get[int](snap, "items"); !ok || n != 3 || snap.Owner != "alice" || snap.ID == "" || snap.Expiry.IsZero() {
		t.Errorf("snapshot %+v (items %d, %v)", snap, n, ok)
	}
	if _, ok := sessiontest.Get[string](snap, "items"); ok {
		t.Error("Get decoded a number into a string")
	}

	r2 := httptest.NewRequest("POST", "/logout", nil)
	r2.AddCookie(r.Cookies()[0])
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r2)
	if snap := sessiontest.Result(t, m, r2, w); snap != nil {
		t.Errorf("after logout the client still holds %+v", snap)
	}
}

// fakeT records a test's failure instead of failing it.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f)
}

func TestPrepareFailures(t *testing.T) {
	m := newManager(t)
	for name, setup := range map[string]func(*sessions.Session) error{
		"setup fails":  func(*sessions.Session) error { return errors.New("no such user") },
		"nothing kept": func(*sessions.Session) error { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeT{TB: t}
			func() {
				defer func() {
					if p := recover(); p != nil && p != f {
						panic(p)
					}
				}()
				sessiontest.Prepare(f, m, httptest.NewRequest("GET", "/", nil), setup)
			}()
			if f.failed == "" {
				t.Error("Prepare did not fail the test")
			}
		})
	}
}
