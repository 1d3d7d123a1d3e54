package sessions_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// spyStore wraps a store, counts its calls and can fail them.
type spyStore struct {
	sessions.Store
	mu    sync.Mutex
	calls map[string]int
	fail  map[string]error
	// beforeUpdate, if set, runs before every Update reaches the store.
	beforeUpdate func()
}

func newSpy() *spyStore {
	return &spyStore{Store: mem(), calls: map[string]int{}, fail: map[string]error{}}
}

func (s *spyStore) hit(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	return s.fail[op]
}

func (s *spyStore) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *spyStore) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

func (s *spyStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

func (s *spyStore) setFail(op string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.fail, op)
	} else {
		s.fail[op] = err
	}
}

func (s *spyStore) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if err := s.hit("Create"); err != nil {
		return false, err
	}
	return s.Store.Create(ctx, id, data, expiry, owner, now)
}

func (s *spyStore) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if err := s.hit("Load"); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	return s.Store.Load(ctx, id, now)
}

func (s *spyStore) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if err := s.hit("Update"); err != nil {
		return false, false, err
	}
	if s.beforeUpdate != nil {
		s.beforeUpdate()
	}
	return s.Store.Update(ctx, id, version, data, expiry, owner, now)
}

func (s *spyStore) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if err := s.hit("Touch"); err != nil {
		return false, err
	}
	return s.Store.Touch(ctx, id, expiry, now)
}

func (s *spyStore) Delete(ctx context.Context, id string) error {
	if err := s.hit("Delete"); err != nil {
		return err
	}
	return s.Store.Delete(ctx, id)
}

// client is a minimal cookie-keeping client for a handler, in process.
type client struct {
	t      testing.TB
	h      http.Handler
	cookie *http.Cookie // the session cookie the "browser" holds
	name   string
}

func newClient(t testing.TB, m *sessions.Manager, h http.Handler) *client {
	return &client{t: t, h: m.Handler(h), name: m.CookieName()}
}

// get sends a request with the held cookie and applies the response's
// session cookie as a browser would.
func (c *client) get(path string) *httptest.ResponseRecorder {
	c.t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	if c.cookie != nil {
		r.AddCookie(&http.Cookie{Name: c.cookie.Name, Value: c.cookie.Value})
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	if sc := sessionCookie(w, c.name); sc != nil {
		if sc.MaxAge < 0 || sc.Value == "" {
			c.cookie = nil
		} else {
			c.cookie = sc
		}
	}
	return w
}

func sessionCookie(w *httptest.ResponseRecorder, name string) *http.Cookie {
	var found *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			if found != nil {
				panic("two Set-Cookie headers for " + name)
			}
			found = c
		}
	}
	return found
}

func setCookies(w *httptest.ResponseRecorder) []string { return w.Result().Header.Values("Set-Cookie") }

// testHandler serves a small session API used by many tests.
func testHandler(t testing.TB) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Set(r.FormValue("k"), r.FormValue("v")); err != nil {
			fail(w, err)
			return
		}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		v, ok, err := sessions.Get[string](sessions.FromContext(r.Context()), r.FormValue("k"))
		if err != nil {
			fail(w, err)
			return
		}
		if !ok {
			http.Error(w, "absent", http.StatusNotFound)
			return
		}
		w.Write([]byte(v))
	})
	mux.HandleFunc("/incr", func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "n", func(n int) int { return n + 1 })
		if err != nil {
			fail(w, err)
			return
		}
		w.Write([]byte(strconv.Itoa(n)))
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
			fail(w, err)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Renew(); err != nil {
			fail(w, err)
		}
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).RenewAfterLogin(r.FormValue("user")); err != nil {
			fail(w, err)
		}
	})
	return mux
}

func mustNew(t testing.TB, store sessions.Store, opts *sessions.Options) *sessions.Manager {
	t.Helper()
	m, err := sessions.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// idOfCookie returns the store ID of a session token.
func idOfCookie(token string) string {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

func mem() *memstore.Store {
	s, err := memstore.New(nil)
	if err != nil {
		panic(err)
	}
	return s
}

func (s *spyStore) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if err := s.hit("ListOwner"); err != nil {
		return nil, err
	}
	return s.Store.(sessions.OwnerIndex).ListOwner(ctx, owner, now)
}

func (s *spyStore) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if err := s.hit("DeleteOwner"); err != nil {
		return 0, err
	}
	return s.Store.(sessions.OwnerIndex).DeleteOwner(ctx, owner, now)
}
