package sessiontest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
)

// Prepare gives the request r a session of m prepared by setup, as if an
// earlier request had set it up: it runs setup on a new session in a
// request of its own through m's middleware, saves it to m's store, and
// adds its cookie to r. Use it to test a handler "logged in as alice"
// without a login route (Django's force_login). It fails the test if
// setup or the save fails, or if setup leaves nothing to save.
func Prepare(t testing.TB, m *sessions.Manager, r *http.Request, setup func(*sessions.Session) error) {
	t.Helper()
	var setupErr error
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setupErr = setup(sessions.FromContext(r.Context()))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil))
	if setupErr != nil {
		t.Fatalf("sessiontest.Prepare: setup: %v", setupErr)
	}
	c := cookieOf(w.Result(), m.CookieName())
	if w.Code != http.StatusOK || c == nil || c.Value == "" {
		t.Fatalf("sessiontest.Prepare: no session was saved (status %d, Set-Cookie %q): %s", w.Code, w.Result().Header.Values("Set-Cookie"), w.Body)
	}
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
}

// Login is [Prepare] with a session that logged in as owner
// ([sessions.Session.RenewAfterLogin]) and holds values.
func Login(t testing.TB, m *sessions.Manager, r *http.Request, owner string, values map[string]any) {
	t.Helper()
	Prepare(t, m, r, func(s *sessions.Session) error {
		if err := s.RenewAfterLogin(owner); err != nil {
			return err
		}
		for k, v := range values {
			if err := s.Set(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// A Snapshot is what a session held after a request, for assertions.
type Snapshot struct {
	ID     string                     // the store ID ([sessions.Session.ID])
	Owner  string                     // the owner, "" for none
	Expiry time.Time                  // when it ends without further activity
	Values map[string]json.RawMessage // every value, as JSON
}

// Get decodes the value under key into a T; ok is false if it is absent
// or does not decode.
func Get[T any](s *Snapshot, key string) (v T, ok bool) {
	if s == nil {
		return v, false
	}
	raw, present := s.Values[key]
	if !present || json.Unmarshal(raw, &v) != nil {
		return v, false
	}
	return v, true
}

// Result returns the session the client holds after the response w to the
// request r: the one w's Set-Cookie names, or, when w set none, the one r's
// cookie names. It returns nil when the client holds no live session (w
// removed the cookie, or the session was never saved). It reads the
// session through m's middleware, as a later read-only request would
// (which may extend an idle deadline in the store).
func Result(t testing.TB, m *sessions.Manager, r *http.Request, w *httptest.ResponseRecorder) *Snapshot {
	t.Helper()
	var value string
	if c := cookieOf(w.Result(), m.CookieName()); c != nil {
		if c.MaxAge < 0 || c.Value == "" {
			return nil // removed
		}
		value = c.Value
	} else if c, err := r.Cookie(m.CookieName()); err == nil {
		value = c.Value
	}
	if value == "" {
		return nil
	}
	var (
		snap *Snapshot
		err  error
	)
	h := m.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		snap, err = snapshot(sessions.FromContext(r.Context()))
	}))
	req := httptest.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: m.CookieName(), Value: value})
	h.ServeHTTP(httptest.NewRecorder(), req)
	if err != nil {
		t.Fatalf("sessiontest.Result: %v", err)
	}
	return snap
}

func snapshot(s *sessions.Session) (*Snapshot, error) {
	id, err := s.ID()
	if err != nil || id == "" {
		return nil, err
	}
	snap := &Snapshot{ID: id, Values: map[string]json.RawMessage{}}
	if snap.Owner, err = s.Owner(); err != nil {
		return nil, err
	}
	if snap.Expiry, err = s.Expiry(); err != nil {
		return nil, err
	}
	keys, err := s.Keys()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		v, _, err := sessions.Get[json.RawMessage](s, k)
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", k, err)
		}
		snap.Values[k] = v
	}
	return snap, nil
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	var found *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name {
			found = c
		}
	}
	return found
}
