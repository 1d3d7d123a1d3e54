package sessions_test

// Regression tests for the security review (issue 14): each dangerous
// interleaving is forced deterministically with stepStore, which runs
// another request or operation at a chosen point of a store call, and the
// races are also run under stress.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/cachestore"
	"github.com/sessionkit/sessions/memstore"
)

// retiredExpiry is the expiry a renewal retires the old record with.
var retiredExpiry = time.UnixMilli(1)

// stepStore wraps a memstore. before, when set, runs before every call
// reaches the store, with the operation's name, id and expiry (zero where
// the operation has none); delay slows every call down.
type stepStore struct {
	*memstore.Store
	mu      sync.Mutex
	before  func(op, id string, expiry time.Time)
	delay   time.Duration
	failErr error // every call fails with it, when set
}

func newStepStore() *stepStore { return &stepStore{Store: mem()} }

// at makes fn run once, before the first call for which match is true.
func (s *stepStore) at(match func(op, id string, expiry time.Time) bool, fn func()) {
	var fired atomic.Bool
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = func(op, id string, expiry time.Time) {
		// fn's own store calls pass here too, and do not fire it again.
		if match(op, id, expiry) && fired.CompareAndSwap(false, true) {
			fn()
		}
	}
}

func (s *stepStore) step(op, id string, expiry time.Time) error {
	s.mu.Lock()
	before, delay, failErr := s.before, s.delay, s.failErr
	s.mu.Unlock()
	if before != nil {
		before(op, id, expiry)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	return failErr
}

// setFail makes every call fail with err (nil: succeed again).
func (s *stepStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failErr = err
}

func (s *stepStore) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if err := s.step("Create", id, expiry); err != nil {
		return false, err
	}
	return s.Store.Create(ctx, id, data, expiry, owner, now)
}

func (s *stepStore) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if err := s.step("Load", id, time.Time{}); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	return s.Store.Load(ctx, id, now)
}

func (s *stepStore) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if err := s.step("Update", id, expiry); err != nil {
		return false, false, err
	}
	return s.Store.Update(ctx, id, version, data, expiry, owner, now)
}

func (s *stepStore) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if err := s.step("Touch", id, expiry); err != nil {
		return false, err
	}
	return s.Store.Touch(ctx, id, expiry, now)
}

func (s *stepStore) Delete(ctx context.Context, id string) error {
	if err := s.step("Delete", id, time.Time{}); err != nil {
		return err
	}
	return s.Store.Delete(ctx, id)
}

func (s *stepStore) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if err := s.step("ListOwner", owner, time.Time{}); err != nil {
		return nil, err
	}
	return s.Store.ListOwner(ctx, owner, now)
}

func (s *stepStore) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if err := s.step("DeleteOwner", owner, time.Time{}); err != nil {
		return 0, err
	}
	return s.Store.DeleteOwner(ctx, owner, now)
}

// liveRecords returns how many live records st holds.
func liveRecords(t testing.TB, st *memstore.Store) int {
	t.Helper()
	if _, err := st.DeleteExpired(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	return st.Len()
}

func isOp(name string) func(string, string, time.Time) bool {
	return func(op, _ string, _ time.Time) bool { return op == name }
}

func isRetire(op, _ string, expiry time.Time) bool {
	return op == "Update" && expiry.Equal(retiredExpiry)
}

// logoutHandler is testHandler plus /logout-everywhere and /n (reads the
// integer n).
func logoutHandler(t testing.TB, m *sessions.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", testHandler(t))
	mux.HandleFunc("/n", func(w http.ResponseWriter, r *http.Request) {
		n, ok, err := sessions.Get[int](sessions.FromContext(r.Context()), "n")
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case !ok:
			http.Error(w, "absent", http.StatusNotFound)
		default:
			w.Write([]byte(strconv.Itoa(n)))
		}
	})
	mux.HandleFunc("/logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.DestroyOwner(r.Context(), r.FormValue("user")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	return mux
}

// TestRenewNeverResurrects forces each point at which another request can
// end the session while a renewal commits: before the new record is
// created, and between the create and the retirement of the old one. The
// renewal must answer ErrSessionGone without a cookie, and nothing of the
// session may stay live. Before the fix, the renewal created the new record
// from its re-loaded copy and deleted the old one unchecked.
func TestRenewNeverResurrects(t *testing.T) {
	enders := []struct {
		name string
		end  func(t *testing.T, m *sessions.Manager, other *client)
	}{
		{"DestroyOwner", func(t *testing.T, m *sessions.Manager, _ *client) {
			if _, err := m.DestroyOwner(context.Background(), "alice"); err != nil {
				t.Error(err)
			}
		}},
		{"Destroy", func(t *testing.T, _ *sessions.Manager, other *client) {
			if w := other.get("/destroy"); w.Code != 200 {
				t.Errorf("concurrent logout: %d", w.Code)
			}
		}},
		{"DestroyID", func(t *testing.T, m *sessions.Manager, other *client) {
			if err := m.DestroyID(context.Background(), idOfCookie(other.cookie.Value)); err != nil {
				t.Error(err)
			}
		}},
		{"Renew", func(t *testing.T, _ *sessions.Manager, other *client) {
			if w := other.get("/renew"); w.Code != 200 {
				t.Errorf("concurrent renewal: %d", w.Code)
			}
		}},
	}
	points := []struct {
		name  string
		match func(string, string, time.Time) bool
	}{
		{"before create", isOp("Create")},
		{"before retire", isRetire},
	}
	for _, renew := range []string{"/renew", "/login?user=alice"} {
		for _, e := range enders {
			for _, p := range points {
				t.Run(renew+"/"+e.name+"/"+p.name, func(t *testing.T) {
					st := newStepStore()
					var got error
					m := mustNew(t, st, &sessions.Options{ErrorHandler: errRecorder(&got)})
					c := newClient(t, m, logoutHandler(t, m))
					c.get("/login?user=alice")
					c.get("/set?k=a&v=1")
					other := newClient(t, m, logoutHandler(t, m))
					other.cookie = c.cookie
					st.at(p.match, func() { e.end(t, m, other) })
					w := c.get(renew)
					st.before = nil
					if e.name == "Renew" {
						// The other renewal lives on; this one must not fork it.
						if !errors.Is(got, sessions.ErrSessionGone) || len(setCookies(w)) != 0 {
							t.Errorf("racing renewal: %d %q (err %v), want ErrSessionGone without cookie", w.Code, setCookies(w), got)
						}
						if n := liveRecords(t, st.Store); n != 1 {
							t.Errorf("two racing renewals left %d live records, want exactly the winner's", n)
						}
						return
					}
					if !errors.Is(got, sessions.ErrSessionGone) || len(setCookies(w)) != 0 {
						t.Errorf("renewal of an ended session: %d %q (err %v), want ErrSessionGone without cookie", w.Code, setCookies(w), got)
					}
					if n := liveRecords(t, st.Store); n != 0 {
						t.Errorf("%d live records after the session was ended, want 0 (resurrected)", n)
					}
					if ids, _ := m.ListOwner(context.Background(), "alice"); len(ids) != 0 {
						t.Errorf("alice still has sessions %v", ids)
					}
				})
			}
		}
	}
}

// TestRenewThroughCacheNeverResurrects: instance B logs out; instance A,
// whose cache front still holds the session, renews it within the cache's
// age. No race is needed: before the fix the re-load came from the front
// and the session came back for its whole lifetime.
func TestRenewThroughCacheNeverResurrects(t *testing.T) {
	back := mem()
	newInstance := func() *sessions.Manager {
		cs, err := cachestore.New(mem(), back, &cachestore.Options{MaxAge: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return mustNew(t, cs, nil)
	}
	a, b := newInstance(), newInstance()
	ca := newClient(t, a, testHandler(t))
	ca.get("/login?user=alice")
	ca.get("/set?k=a&v=1")
	if w := ca.get("/get?k=a"); w.Body.String() != "1" { // fills A's front
		t.Fatalf("read on A: %d %q", w.Code, w.Body)
	}
	if _, err := b.DestroyOwner(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	w := ca.get("/renew")
	if w.Code != http.StatusConflict || len(setCookies(w)) != 0 {
		t.Errorf("renewal on A after logout on B: %d %q, want 409 without cookie", w.Code, setCookies(w))
	}
	if n := liveRecords(t, back); n != 0 {
		t.Errorf("%d live records in the back store after logout, want 0", n)
	}
}

// TestRenewKeepsConcurrentWrites: a write acknowledged to another request
// while a renewal commits is carried into the renewed session (it landed
// on the old record before the retirement) or refused with
// ErrSessionGone (after it); it is never acknowledged and dropped.
func TestRenewKeepsConcurrentWrites(t *testing.T) {
	points := []struct {
		name  string
		match func(string, string, time.Time) bool
	}{
		{"before create", isOp("Create")},
		{"before retire", isRetire},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			st := newStepStore()
			m := mustNew(t, st, nil)
			c := newClient(t, m, logoutHandler(t, m))
			c.get("/set?k=a&v=1")
			other := newClient(t, m, logoutHandler(t, m))
			other.cookie = c.cookie
			var code int
			st.at(p.match, func() { code = other.get("/incr").Code })
			if w := c.get("/renew"); w.Code != 200 {
				t.Fatalf("renewal: %d %q", w.Code, w.Body)
			}
			st.before = nil
			if code != 200 {
				t.Fatalf("the concurrent increment answered %d", code)
			}
			if w := c.get("/n"); w.Body.String() != "1" {
				t.Errorf("an increment acknowledged during the renewal is missing from the renewed session: %d %q", w.Code, w.Body)
			}
		})
	}
	t.Run("after retire", func(t *testing.T) {
		// Once retired, the old ID is unknown: a write with it starts a
		// new session of its own and never touches the renewed one.
		st := newStepStore()
		m := mustNew(t, st, nil)
		c := newClient(t, m, logoutHandler(t, m))
		c.get("/set?k=a&v=1")
		other := newClient(t, m, logoutHandler(t, m))
		other.cookie = c.cookie
		st.at(isOp("Delete"), func() { other.get("/incr") })
		c.get("/renew")
		st.before = nil
		if other.cookie.Value == c.cookie.Value {
			t.Fatal("the old ID was adopted")
		}
		if w := c.get("/n"); w.Code != 404 {
			t.Errorf("a write with the retired ID reached the renewed session: %d %q", w.Code, w.Body)
		}
		if w := other.get("/get?k=a"); w.Code != 404 {
			t.Errorf("a write with the retired ID got the renewed session's data: %d %q", w.Code, w.Body)
		}
	})
}

// TestRenewRacesStress runs renewals against "log out everywhere" and
// against concurrent increments, with a store that takes a millisecond per
// call, and checks the invariants: nothing of alice survives her logout,
// and every acknowledged increment is in the renewed session.
func TestRenewRacesStress(t *testing.T) {
	rounds := 100
	if testing.Short() {
		rounds = 20
	}
	t.Run("versus DestroyOwner", func(t *testing.T) {
		st := newStepStore()
		m := mustNew(t, st, nil)
		for i := range rounds {
			c := newClient(t, m, testHandler(t))
			c.get("/login?user=alice")
			st.delay = time.Millisecond
			loaded := make(chan struct{})
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := sessions.FromContext(r.Context())
				s.Keys() // loaded before the logout starts
				close(loaded)
				s.RenewAfterLogin("alice")
			}))
			var wg sync.WaitGroup
			wg.Go(func() {
				r := httptest.NewRequest("GET", "/", nil)
				r.AddCookie(c.cookie)
				h.ServeHTTP(httptest.NewRecorder(), r)
			})
			<-loaded
			if _, err := m.DestroyOwner(context.Background(), "alice"); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			st.delay = 0
			if ids, _ := m.ListOwner(context.Background(), "alice"); len(ids) != 0 {
				t.Fatalf("round %d: alice has %d live sessions after logging out everywhere", i, len(ids))
			}
		}
	})
	t.Run("versus increments", func(t *testing.T) {
		st := newStepStore()
		m := mustNew(t, st, nil)
		c := newClient(t, m, logoutHandler(t, m))
		c.get("/set?k=a&v=1")
		var acked atomic.Int64
		st.delay = time.Millisecond
		for range rounds / 10 {
			var wg sync.WaitGroup
			cookie := c.cookie
			for range 5 {
				wg.Go(func() {
					o := newClient(t, m, testHandler(t))
					o.cookie = cookie
					if o.get("/incr").Code == 200 {
						acked.Add(1)
					}
				})
			}
			wg.Go(func() {
				if w := c.get("/renew"); w.Code != 200 {
					t.Errorf("renewal: %d %q", w.Code, w.Body)
				}
			})
			wg.Wait()
		}
		st.delay = 0
		if got := c.get("/n").Body.String(); got != strconv.FormatInt(acked.Load(), 10) {
			t.Errorf("renewed session counts %s, but %d increments were acknowledged", got, acked.Load())
		}
	})
}

// TestCookieResponsesArePrivate: whenever a session cookie (or its
// removal) is sent, no shared cache may store the response, whatever
// Cache-Control the application set.
func TestCookieResponsesArePrivate(t *testing.T) {
	tests := []struct {
		set  []string
		want string
	}{
		{nil, `private, no-cache="Set-Cookie"`},
		{[]string{"public, max-age=3600"}, "max-age=3600, private"},
		{[]string{"max-age=60"}, "max-age=60, private"},
		{[]string{"private, max-age=60"}, "private, max-age=60"},
		{[]string{"no-store"}, "no-store"},
		{[]string{"PUBLIC, S-MAXAGE=600, max-age=60"}, "max-age=60, private"},
		{[]string{`no-cache="Set-Cookie, X-Public", public`}, `no-cache="Set-Cookie, X-Public", private`},
		{[]string{"public", "max-age=10"}, "max-age=10, private"},
		{[]string{`no-cache="a\"b,public"`}, `no-cache="a\"b,public", private`},
	}
	for _, tt := range tests {
		for _, path := range []string{"/set?k=a&v=1", "/destroy"} {
			t.Run(path+"/"+tt.want, func(t *testing.T) {
				m := mustNew(t, mem(), nil)
				set := func(next http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						for _, v := range tt.set {
							w.Header().Add("Cache-Control", v)
						}
						next.ServeHTTP(w, r)
					})
				}
				c := newClient(t, m, set(testHandler(t)))
				if path == "/destroy" {
					c.get("/set?k=b&v=0")
				}
				w := c.get(path)
				if len(setCookies(w)) != 1 {
					t.Fatalf("%s sent %q, want one cookie", path, setCookies(w))
				}
				if got := w.Result().Header.Values("Cache-Control"); len(got) != 1 || got[0] != tt.want {
					t.Errorf("Cache-Control %q, want %q", got, tt.want)
				}
			})
		}
	}
	t.Run("no cookie, no change", func(t *testing.T) {
		m := mustNew(t, mem(), nil)
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=3600")
			sessions.Get[string](sessions.FromContext(r.Context()), "k")
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if got := w.Header().Get("Cache-Control"); got != "public, max-age=3600" {
			t.Errorf("a response without a session cookie: Cache-Control %q changed", got)
		}
	})
}

// TestClientGoneCannotAbortLogout: operations that end or retire a session
// complete even when the client disconnects during them.
func TestClientGoneCannotAbortLogout(t *testing.T) {
	for _, tt := range []struct {
		name, path string
		at         func(string, string, time.Time) bool
	}{
		{"Destroy", "/destroy", isOp("Delete")},
		{"DestroyOwner", "/logout-everywhere?user=alice", isOp("DeleteOwner")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newStepStore()
			m := mustNew(t, st, nil)
			c := newClient(t, m, logoutHandler(t, m))
			c.get("/login?user=alice")
			ctx, cancel := context.WithCancel(context.Background())
			st.at(tt.at, cancel)
			r := httptest.NewRequestWithContext(ctx, "GET", tt.path, nil)
			r.AddCookie(c.cookie)
			m.Handler(logoutHandler(t, m)).ServeHTTP(httptest.NewRecorder(), r)
			st.before = nil
			if ctx.Err() == nil {
				t.Fatal("the request was not cancelled")
			}
			if n := liveRecords(t, st.Store); n != 0 {
				t.Errorf("the client went away during its logout and %d sessions stayed live", n)
			}
		})
	}
	t.Run("renewal retirement", func(t *testing.T) {
		st := newStepStore()
		m := mustNew(t, st, nil)
		c := newClient(t, m, testHandler(t))
		c.get("/set?k=a&v=1")
		old := c.cookie
		ctx, cancel := context.WithCancel(context.Background())
		// The old ID's retirement (before the fix: its deletion).
		st.at(func(op, id string, expiry time.Time) bool {
			return isRetire(op, id, expiry) || op == "Delete"
		}, cancel)
		r := httptest.NewRequestWithContext(ctx, "GET", "/renew", nil)
		r.AddCookie(old)
		m.Handler(testHandler(t)).ServeHTTP(httptest.NewRecorder(), r)
		st.before = nil
		c.cookie = old
		if w := c.get("/get?k=a"); w.Code != 404 {
			t.Errorf("the old ID still works after a renewal whose client went away: %d %q", w.Code, w.Body)
		}
	})
}

// TestHijackEdgeCases: a writer that cannot hijack leaves the session
// uncommitted; after a hijack, changes are refused, never dropped silently.
func TestHijackEdgeCases(t *testing.T) {
	t.Run("not supported", func(t *testing.T) {
		st := mem()
		m := mustNew(t, st, nil)
		var hijackErr error
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sessions.FromContext(r.Context()).Set("k", "v")
			_, _, hijackErr = http.NewResponseController(w).Hijack()
			http.Error(w, "websocket needs HTTP/1.1", http.StatusInternalServerError)
		}))
		w := httptest.NewRecorder() // a recorder cannot hijack
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if !errors.Is(hijackErr, http.ErrNotSupported) {
			t.Errorf("Hijack on a recorder: %v, want http.ErrNotSupported", hijackErr)
		}
		if w.Code != 500 || len(setCookies(w)) != 0 {
			t.Errorf("the 500 after a failed hijack: %d %q, want no cookie", w.Code, setCookies(w))
		}
		if n := st.Len(); n != 0 {
			t.Errorf("the 500 after a failed hijack saved %d sessions", n)
		}
	})
	t.Run("change after hijack", func(t *testing.T) {
		m := mustNew(t, mem(), nil)
		errc := make(chan error, 1)
		srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				errc <- err
				return
			}
			defer conn.Close()
			errc <- sessions.FromContext(r.Context()).Set("k", "v")
			conn.Write([]byte("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"))
		})))
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if err := <-errc; !errors.Is(err, sessions.ErrCommitted) {
			t.Errorf("Set after a hijack on an untouched session: %v, want ErrCommitted", err)
		}
	})
}

// TestUpdateFunctionMayReadTheSession: an Update function that reads (or
// updates) the session must not deadlock the request.
func TestUpdateFunctionMayReadTheSession(t *testing.T) {
	m := mustNew(t, mem(), nil)
	done := make(chan struct{})
	c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		s := sessions.FromContext(r.Context())
		s.Set("step", 2)
		n, err := sessions.Update(s, "n", func(n int) int {
			step, _, err := sessions.Get[int](s, "step")
			if err != nil {
				t.Errorf("Get inside Update: %v", err)
			}
			return n + step
		})
		if err != nil || n != 2 {
			t.Errorf("Update reading the session: %d, %v", n, err)
		}
	}))
	go c.get("/")
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a watchdog, not a timing assertion
		t.Fatal("an Update function that reads the session deadlocked the request")
	}
}

// TestUpdateFailureLeavesValue: an Update that fails is not saved later
// by the commit, and leaves the value as it was.
func TestUpdateFailureLeavesValue(t *testing.T) {
	hs := &hookStore{Store: mem()}
	m := mustNew(t, hs, nil)
	c := newClient(t, m, logoutHandler(t, m))
	c.get("/incr")
	var after int
	failing := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		hs.update = func(context.Context, string, int64, []byte, time.Time, string, time.Time) (bool, bool, error) {
			return false, false, errors.New("down")
		}
		if _, err := sessions.Update(s, "n", func(n int) int { return n + 10 }); !errors.Is(err, sessions.ErrStore) {
			t.Errorf("Update on a failing store: %v", err)
		}
		hs.update = nil
		after, _, _ = sessions.Get[int](s, "n")
		s.Set("other", 1) // something else to save at commit
	}))
	failing.cookie = c.cookie
	failing.get("/")
	if after != 1 {
		t.Errorf("after a failed Update the value reads %d, want the unchanged 1", after)
	}
	if w := c.get("/n"); w.Body.String() != "1" {
		t.Errorf("a failed Update was saved at commit: n = %q", w.Body)
	}
}

// TestLoweredIdleTimeoutEndsIdleSessions: after IdleTimeout is lowered, a
// session idle for longer than the new limit no longer loads, while one
// active within it does.
func TestLoweredIdleTimeoutEndsIdleSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := mem()
		before := mustNew(t, st, &sessions.Options{IdleTimeout: 24 * time.Hour})
		after := mustNew(t, st, &sessions.Options{IdleTimeout: 15 * time.Minute})
		idle := newClient(t, before, testHandler(t))
		idle.get("/set?k=a&v=1")
		time.Sleep(time.Hour)
		active := newClient(t, before, testHandler(t))
		active.get("/set?k=a&v=2")
		time.Sleep(5 * time.Minute)
		idle.h, active.h = after.Handler(testHandler(t)), after.Handler(testHandler(t))
		if w := idle.get("/get?k=a"); w.Code != 404 {
			t.Errorf("a session idle for 65 min loads under a 15 min idle timeout: %d %q", w.Code, w.Body)
		}
		if w := active.get("/get?k=a"); w.Body.String() != "2" {
			t.Fatalf("a session active 5 min ago: %d %q", w.Code, w.Body)
		}
		// Its record is rewritten with the idle timeout now in force, so
		// touches keep telling its last activity.
		time.Sleep(10 * time.Minute)
		if w := active.get("/get?k=a"); w.Body.String() != "2" {
			t.Errorf("a session read 10 min ago: %d %q", w.Code, w.Body)
		}
		time.Sleep(16 * time.Minute)
		if w := active.get("/get?k=a"); w.Code != 404 {
			t.Errorf("a session idle for 16 min loads under a 15 min idle timeout: %d %q", w.Code, w.Body)
		}
	})
}

// TestShrinkingOverLimitSession: after MaxDataSize is lowered, a change
// that does not grow a session over the limit is saved, one that grows it
// is refused, and login clears it rather than fail.
func TestShrinkingOverLimitSession(t *testing.T) {
	st := mem()
	big := mustNew(t, st, nil)
	small := mustNew(t, st, &sessions.Options{MaxDataSize: 4 << 10})
	c := newClient(t, big, testHandler(t))
	c.get("/set?k=a&v=" + repeat("x", 6000))
	c.get("/set?k=b&v=" + repeat("y", 3000))
	c.h = small.Handler(testHandler(t))
	if w := c.get("/set?k=c&v=1"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("a change that grows an over-limit session: %d, want refused", w.Code)
	}
	if w := c.get("/set?k=a&v=" + repeat("x", 5000)); w.Code != 200 {
		t.Errorf("a change that shrinks an over-limit session: %d %q", w.Code, w.Body)
	}
	if w := c.get("/get?k=a"); len(w.Body.String()) != 5000 {
		t.Errorf("the shrinking change was not saved: %d bytes", len(w.Body.String()))
	}
	if w := c.get("/login?user=alice"); w.Code != 200 || len(setCookies(w)) != 1 {
		t.Fatalf("login with an over-limit session: %d %q", w.Code, w.Body)
	}
	if w := c.get("/get?k=a"); w.Code != 404 {
		t.Errorf("login kept the over-limit values: %d", w.Code)
	}
	if ids, _ := small.ListOwner(context.Background(), "alice"); len(ids) != 1 {
		t.Errorf("alice's sessions after login: %v", ids)
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, n*len(s))
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

// TestNestedManagerCookieOnOuterFailure: when the outer Manager fails its
// commit, the inner Manager's session is already saved, so its cookie
// stays on the error response (dropping it would lose a renewal); the
// response stays private, and the outer cookie is not sent.
func TestNestedManagerCookieOnOuterFailure(t *testing.T) {
	outerStore := &hookStore{Store: mem()}
	outer := mustNew(t, outerStore, &sessions.Options{CookieName: "__Host-outer"})
	inner := mustNew(t, mem(), &sessions.Options{CookieName: "__Host-inner"})
	h := outer.Handler(inner.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outer.FromContext(r.Context()).Set("o", 1)
		inner.FromContext(r.Context()).Set("i", 1)
		w.Write([]byte("ok"))
	})))
	outerStore.create = func(context.Context, string, []byte, time.Time, string, time.Time) (bool, error) {
		return false, errors.New("down")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 500 {
		t.Fatalf("outer failure: %d", w.Code)
	}
	if sessionCookie(w, "__Host-outer") != nil || sessionCookie(w, "__Host-inner") == nil {
		t.Errorf("cookies on the outer error response: %q, want the inner one only", setCookies(w))
	}
	if cc := w.Header().Get("Cache-Control"); cc != `private, no-cache="Set-Cookie"` {
		t.Errorf("Cache-Control %q", cc)
	}
}

// ctxBlindStore passes no context to its store, as a store that ignores
// contexts would behave.
type ctxBlindStore struct{ *memstore.Store }

func (s ctxBlindStore) Create(_ context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	return s.Store.Create(context.Background(), id, data, expiry, owner, now)
}

// TestTimeoutHandlerOutside: a commit after http.TimeoutHandler gave up
// saves nothing, since its cookie can never reach the client, even with a
// store that would not notice the request's context has ended.
func TestTimeoutHandlerOutside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := mem()
		m := mustNew(t, ctxBlindStore{st}, nil)
		h := http.TimeoutHandler(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sessions.FromContext(r.Context()).Set("k", "v")
			time.Sleep(2 * time.Second)
			w.Write([]byte("too late"))
		})), time.Second, "timeout")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if w.Code != http.StatusServiceUnavailable || len(setCookies(w)) != 0 {
			t.Errorf("timed-out response: %d %q", w.Code, setCookies(w))
		}
		if n := st.Len(); n != 0 {
			t.Errorf("the timed-out request saved %d sessions whose cookie never left", n)
		}
	})
}

// TestAfterGoneChangesFailAndDestroyWorks: once a save found the session
// ended by another request, later changes return ErrSessionGone (never a
// silent drop), and Destroy still removes the cookie.
func TestAfterGoneChangesFailAndDestroyWorks(t *testing.T) {
	st := newStepStore()
	m := mustNew(t, st, nil)
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=1")
	other := newClient(t, m, testHandler(t))
	other.cookie = c.cookie
	var setErr, destroyErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		st.at(isOp("Update"), func() { other.get("/destroy") })
		if _, err := sessions.Update(s, "n", func(n int) int { return n + 1 }); !errors.Is(err, sessions.ErrSessionGone) {
			t.Errorf("Update of a session destroyed meanwhile: %v", err)
		}
		st.before = nil
		setErr = s.Set("b", 2)
		destroyErr = s.Destroy()
	})
	c.h = m.Handler(h)
	w := c.get("/")
	if !errors.Is(setErr, sessions.ErrSessionGone) {
		t.Errorf("Set after ErrSessionGone: %v, want ErrSessionGone", setErr)
	}
	if destroyErr != nil {
		t.Errorf("Destroy after ErrSessionGone: %v", destroyErr)
	}
	if sc := sessionCookie(w, m.CookieName()); w.Code != 200 || sc == nil || sc.MaxAge >= 0 {
		t.Errorf("Destroy after ErrSessionGone: %d %q, want a removal cookie", w.Code, setCookies(w))
	}
}

// stuckOwnerStore lists an owner's session forever (or fails to list),
// whatever DeleteOwner removed.
type stuckOwnerStore struct {
	*memstore.Store
	listErr error
}

func (s stuckOwnerStore) ListOwner(context.Context, string, time.Time) ([]string, error) {
	return []string{"still-here"}, s.listErr
}

// TestDestroyOwnerErrors: DestroyOwner reports a store that keeps listing
// sessions after deleting them (ErrConflict) and a failing list (ErrStore)
// instead of claiming success.
func TestDestroyOwnerErrors(t *testing.T) {
	m := mustNew(t, stuckOwnerStore{Store: mem()}, nil)
	if _, err := m.DestroyOwner(context.Background(), "alice"); !errors.Is(err, sessions.ErrConflict) {
		t.Errorf("DestroyOwner with sessions left after every round: %v, want ErrConflict", err)
	}
	m = mustNew(t, stuckOwnerStore{Store: mem(), listErr: errors.New("down")}, nil)
	if _, err := m.DestroyOwner(context.Background(), "alice"); !errors.Is(err, sessions.ErrStore) {
		t.Errorf("DestroyOwner with a failing list: %v, want ErrStore", err)
	}
}
