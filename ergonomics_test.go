package sessions_test

// Tests for what a new user trips over (issue 9): failures that a handler
// ignores, remember me, plain HTTP, logging out everywhere from the
// current request, deferred changes and flash messages, and small gaps.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionkit/sessions"
)

// TestIgnoredFailuresFailClosed: a handler that ignores a failure to load
// or save its session and answers below 500 does not get to send that
// answer: the ErrorHandler answers instead. A handler that answers the
// failure with an error status itself keeps its answer.
func TestIgnoredFailuresFailClosed(t *testing.T) {
	tests := []struct {
		name     string
		fail     func(hs *hookStore)
		handler  func(w http.ResponseWriter, s *sessions.Session)
		wantCode int
		wantErr  error
	}{
		{"load fails, handler answers 200", func(hs *hookStore) {
			hs.load = func(context.Context, string, time.Time) ([]byte, int64, time.Time, bool, error) {
				return nil, 0, time.Time{}, false, errors.New("down")
			}
		}, func(w http.ResponseWriter, s *sessions.Session) {
			sessions.Get[string](s, "a")
			w.Write([]byte("welcome back"))
		}, 500, sessions.ErrStore},
		{"Update fails, handler answers 200", func(hs *hookStore) {
			hs.update = func(context.Context, string, int64, []byte, time.Time, string, time.Time) (bool, bool, error) {
				return false, false, errors.New("down")
			}
		}, func(w http.ResponseWriter, s *sessions.Session) {
			sessions.Update(s, "n", func(n int) int { return n + 1 })
			w.Write([]byte("counted"))
		}, 500, sessions.ErrStore},
		{"Destroy fails, handler answers 200", func(hs *hookStore) {
			hs.del = func(context.Context, string) error { return errors.New("down") }
		}, func(w http.ResponseWriter, s *sessions.Session) {
			s.Destroy()
			w.Write([]byte("logged out"))
		}, 500, sessions.ErrStore},
		{"Value cannot decode, handler answers 200", func(*hookStore) {}, func(w http.ResponseWriter, s *sessions.Session) {
			_ = sessions.Value[int](s, "a") // "a" holds a string
			w.Write([]byte("ok"))
		}, 500, nil},
		{"load fails, handler answers 503 itself", func(hs *hookStore) {
			hs.load = func(context.Context, string, time.Time) ([]byte, int64, time.Time, bool, error) {
				return nil, 0, time.Time{}, false, errors.New("down")
			}
		}, func(w http.ResponseWriter, s *sessions.Session) {
			if _, _, err := sessions.Get[string](s, "a"); err != nil {
				http.Error(w, "try later", http.StatusServiceUnavailable)
			}
		}, 503, nil},
		{"a refused change is the handler's to handle", func(*hookStore) {}, func(w http.ResponseWriter, s *sessions.Session) {
			if err := s.SetIdleTimeout(-time.Second); err == nil {
				http.Error(w, "accepted a negative timeout", 500)
				return
			}
			w.Write([]byte("ok"))
		}, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := &hookStore{Store: mem()}
			var got error
			m := mustNew(t, hs, &sessions.Options{ErrorHandler: errRecorder(&got)})
			c := newClient(t, m, testHandler(t))
			c.get("/set?k=a&v=x")
			tt.fail(hs)
			var errSeen error
			c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := sessions.FromContext(r.Context())
				tt.handler(w, s)
				errSeen = s.Err()
			}))
			w := c.get("/")
			if w.Code != tt.wantCode {
				t.Errorf("status %d %q, want %d", w.Code, w.Body, tt.wantCode)
			}
			if tt.wantCode == 500 && (got == nil || errSeen == nil || (tt.wantErr != nil && !errors.Is(got, tt.wantErr))) {
				t.Errorf("ErrorHandler got %v, Session.Err %v, want %v", got, errSeen, tt.wantErr)
			}
			if tt.wantCode == 500 && len(setCookies(w)) != 0 {
				t.Errorf("a failed request sent %q", setCookies(w))
			}
		})
	}
	t.Run("Destroy after a failure recovers", func(t *testing.T) {
		st := newStepStore()
		m := mustNew(t, st, nil)
		c := newClient(t, m, testHandler(t))
		c.get("/set?k=a&v=1")
		other := newClient(t, m, testHandler(t))
		other.cookie = c.cookie
		c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := sessions.FromContext(r.Context())
			st.at(isOp("Update"), func() { other.get("/destroy") })
			sessions.Update(s, "n", func(n int) int { return n + 1 })
			st.before = nil
			if !errors.Is(s.Err(), sessions.ErrSessionGone) {
				t.Errorf("Err after a lost update: %v", s.Err())
			}
			s.Destroy()
			if s.Err() != nil {
				t.Errorf("Err after Destroy: %v", s.Err())
			}
			w.Write([]byte("please log in again"))
		}))
		if w := c.get("/"); w.Code != 200 || w.Body.String() != "please log in again" {
			t.Errorf("%d %q", w.Code, w.Body)
		}
	})
}

// TestRememberMe: browser-session cookies by default; a session marked
// with Remember gets a persistent cookie and RememberLifetime, survives the
// default Lifetime, and is not ended by IdleTimeout.
func TestRememberMe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := mustNew(t, mem(), &sessions.Options{
			BrowserSessionCookie: true,
			IdleTimeout:          time.Hour,
			RememberLifetime:     90 * 24 * time.Hour,
		})
		mux := http.NewServeMux()
		mux.Handle("/", testHandler(t))
		mux.HandleFunc("/login-remember", func(w http.ResponseWriter, r *http.Request) {
			s := sessions.FromContext(r.Context())
			must(t, s.RenewAfterLogin("alice"))
			must(t, s.Remember(r.FormValue("on") != "0"))
		})
		plain := newClient(t, m, mux)
		plain.get("/login?user=bob")
		if plain.cookie.MaxAge != 0 {
			t.Errorf("default cookie has Max-Age %d, want a browser-session cookie", plain.cookie.MaxAge)
		}
		c := newClient(t, m, mux)
		c.get("/set?k=a&v=1")
		w := c.get("/login-remember")
		if sc := sessionCookie(w, m.CookieName()); sc == nil || sc.MaxAge != 90*24*3600 {
			t.Fatalf("remembered login sent %q, want Max-Age of 90 days", setCookies(w))
		}
		time.Sleep(3 * 24 * time.Hour) // past the 24 h Lifetime and the 1 h idle timeout
		if w := c.get("/get?k=a"); w.Body.String() != "1" {
			t.Errorf("remembered session after 3 idle days: %d %q", w.Code, w.Body)
		}
		if w := plain.get("/get?k=a"); w.Code != 404 {
			t.Errorf("a plain session after 3 idle days: %d", w.Code)
		}
		c.get("/login-remember?on=0")
		time.Sleep(2 * time.Hour)
		if w := c.get("/get?k=a"); w.Code != 404 {
			t.Errorf("after Remember(false), a session idle for 2 h under a 1 h idle timeout: %d %q", w.Code, w.Body)
		}
	})
	t.Run("SetBrowserSession(false) overrides the option", func(t *testing.T) {
		m := mustNew(t, mem(), &sessions.Options{BrowserSessionCookie: true})
		c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := sessions.FromContext(r.Context())
			s.Set("a", 1)
			must(t, s.SetBrowserSession(false))
		}))
		w := c.get("/")
		if sc := sessionCookie(w, m.CookieName()); sc == nil || sc.MaxAge != 24*3600 {
			t.Errorf("SetBrowserSession(false) sent %q, want a persistent cookie", setCookies(w))
		}
	})
	for _, d := range []time.Duration{-time.Hour, 401 * 24 * time.Hour, time.Millisecond} {
		if _, err := sessions.New(mem(), &sessions.Options{RememberLifetime: d}); !errors.Is(err, sessions.ErrInvalidOptions) {
			t.Errorf("RememberLifetime %v: %v, want ErrInvalidOptions", d, err)
		}
	}
}

// TestExpirySettersResendCookie: SetIdleTimeout and SetDeadline re-send
// the cookie even when the effective deadline does not move.
func TestExpirySettersResendCookie(t *testing.T) {
	m := mustNew(t, mem(), &sessions.Options{Lifetime: 3 * time.Second})
	var set func(*sessions.Session) error
	c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := set(sessions.FromContext(r.Context())); err != nil {
			t.Error(err)
		}
	}))
	set = func(s *sessions.Session) error { return s.Set("a", 1) }
	c.get("/")
	for name, f := range map[string]func(*sessions.Session) error{
		"deadline a minute ahead": func(s *sessions.Session) error { return s.SetDeadline(time.Now().Add(time.Minute)) },
		"idle timeout of an hour": func(s *sessions.Session) error { return s.SetIdleTimeout(time.Hour) },
	} {
		set = f
		if w := c.get("/"); len(setCookies(w)) != 1 {
			t.Errorf("%s: %q, want the cookie re-sent", name, setCookies(w))
		}
	}
}

// TestPlainHTTPWarning: one warning per Manager when a Secure cookie goes
// out over plain HTTP from a non-loopback host; none over HTTPS, behind a
// TLS proxy, or on localhost.
func TestPlainHTTPWarning(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	m := mustNew(t, mem(), &sessions.Options{Logger: logger})
	h := m.Handler(testHandler(t))
	send := func(target string, edit func(*http.Request)) {
		r := httptest.NewRequest("GET", target, nil)
		if edit != nil {
			edit(r)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(buf.String(), "plain HTTP")
	}
	send("http://localhost:8080/set?k=a&v=1", nil)
	send("http://127.0.0.1/set?k=a&v=1", nil)
	send("https://app.example/set?k=a&v=1", nil) // httptest sets r.TLS
	send("http://app.example/set?k=a&v=1", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") })
	if n := count(); n != 0 {
		t.Fatalf("%d warnings for secure or loopback requests:\n%s", n, buf.String())
	}
	send("http://app.example/set?k=a&v=1", nil)
	send("http://app.example/set?k=a&v=1", nil)
	if n := count(); n != 1 {
		t.Errorf("%d warnings for plain HTTP, want exactly 1:\n%s", n, buf.String())
	}
	insecure := mustNew(t, mem(), &sessions.Options{Logger: logger, InsecureCookie: true})
	insecure.Handler(testHandler(t)).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://app.example/set?k=a&v=1", nil))
	if n := count(); n != 1 {
		t.Errorf("InsecureCookie warned: %d", n)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestDestroyOwnerEndsCurrentSession: "log out everywhere" from a request
// of the user's own session removes its cookie, and a later write in the
// request starts a new session instead of failing with 409.
func TestDestroyOwnerEndsCurrentSession(t *testing.T) {
	m := mustNew(t, mem(), nil)
	c := newClient(t, m, testHandler(t))
	c.get("/login?user=alice")
	other := newClient(t, m, testHandler(t))
	other.get("/login?user=alice")
	c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		if n, err := m.DestroyOwner(r.Context(), "alice"); err != nil || n != 2 {
			t.Errorf("DestroyOwner: %d, %v", n, err)
		}
		if err := s.Set("flash", "logged out everywhere"); err != nil {
			t.Errorf("a write after logging out everywhere: %v", err)
		}
	}))
	old := c.cookie
	w := c.get("/")
	if w.Code != 200 || c.cookie == nil || c.cookie.Value == old.Value {
		t.Fatalf("%d %q: want 200 and a new session", w.Code, setCookies(w))
	}
	if ids, _ := m.ListOwner(context.Background(), "alice"); len(ids) != 0 {
		t.Errorf("alice still has %d sessions", len(ids))
	}
	c.h = m.Handler(testHandler(t))
	if w := c.get("/get?k=flash"); w.Body.String() != "logged out everywhere" {
		t.Errorf("the new session: %d %q", w.Code, w.Body)
	}
	t.Run("only the user's own session", func(t *testing.T) {
		c := newClient(t, m, testHandler(t))
		c.get("/login?user=bob")
		c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.DestroyOwner(r.Context(), "carol")
		}))
		if w := c.get("/"); len(setCookies(w)) != 0 {
			t.Errorf("logging out another user touched this session: %q", setCookies(w))
		}
	})
}

// TestModifyIsDeferredAndConflictSafe: Modify costs no store write of its
// own, and a concurrent request's modification saved first is kept (the
// function is applied again to the fresh value).
func TestModifyIsDeferredAndConflictSafe(t *testing.T) {
	st := newStepStore()
	m := mustNew(t, st, nil)
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=1")
	addFlash := func(msg string) http.Handler {
		return m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := sessions.FromContext(r.Context())
			must(t, sessions.AddFlash(s, "flash", msg))
			if l, _, _ := sessions.Get[[]string](s, "flash"); len(l) == 0 || l[len(l)-1] != msg {
				t.Errorf("reading after AddFlash: %q", l)
			}
		}))
	}
	other := newClient(t, m, nil)
	other.cookie = c.cookie
	other.h = addFlash("b")
	updates := 0
	st.at(isOp("Update"), func() { other.get("/") })
	c.h = addFlash("a")
	st.mu.Lock()
	before := st.before
	st.before = func(op, id string, e time.Time) {
		if op == "Update" {
			updates++
		}
		before(op, id, e)
	}
	st.mu.Unlock()
	c.get("/")
	st.before = nil
	if updates != 3 { // a: conflicts (b saves in between), then saves
		t.Errorf("%d Updates, want 3 (one per request, one retry)", updates)
	}
	var got []string
	c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = sessions.Flashes[string](sessions.FromContext(r.Context()), "flash")
	}))
	c.get("/")
	if len(got) != 2 || got[0] != "b" || got[1] != "a" {
		t.Errorf("flashes %q, want both, b first (it saved first)", got)
	}
	c.get("/")
	if len(got) != 0 {
		t.Errorf("flashes shown twice: %q", got)
	}
}

// TestFlashesRemoveOnlyWhatTheyShow: a message added by a concurrent
// request while another shows the flashes stays for the next page.
func TestFlashesRemoveOnlyWhatTheyShow(t *testing.T) {
	st := newStepStore()
	m := mustNew(t, st, nil)
	c := newClient(t, m, nil)
	c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessions.AddFlash(sessions.FromContext(r.Context()), "flash", "first")
	}))
	c.get("/")
	other := newClient(t, m, m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessions.AddFlash(sessions.FromContext(r.Context()), "flash", "second")
	})))
	other.cookie = c.cookie
	var shown []string
	c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		shown, _ = sessions.Flashes[string](sessions.FromContext(r.Context()), "flash")
	}))
	st.at(isOp("Update"), func() { other.get("/") })
	c.get("/")
	st.before = nil
	if len(shown) != 1 || shown[0] != "first" {
		t.Fatalf("shown %q", shown)
	}
	c.get("/")
	if len(shown) != 1 || shown[0] != "second" {
		t.Errorf("the message added meanwhile: %q, want [second]", shown)
	}
}

// TestModifyFunctionUsingSessionFails: a Modify function that calls a
// session accessor gets an error instead of deadlocking the request.
func TestModifyFunctionUsingSessionFails(t *testing.T) {
	m := mustNew(t, mem(), nil)
	done := make(chan struct{})
	var inner error
	c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		s := sessions.FromContext(r.Context())
		must(t, sessions.Modify(s, "n", func(n int) int {
			_, _, inner = sessions.Get[int](s, "n")
			return n + 1
		}))
	}))
	go c.get("/")
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a watchdog, not a timing assertion
		t.Fatal("a Modify function using the session deadlocked the request")
	}
	if inner == nil {
		t.Error("an accessor called from a Modify function returned no error")
	}
}

// TestSmallGaps: Expiry, Status, ID before the first save, the one-shot
// DeleteExpired, and numbers stored in an any.
func TestSmallGaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := mem()
		m := mustNew(t, st, &sessions.Options{IdleTimeout: time.Hour})
		var check func(*sessions.Session)
		c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			check(sessions.FromContext(r.Context()))
		}))
		check = func(s *sessions.Session) {
			if exp, _ := s.Expiry(); !exp.IsZero() {
				t.Errorf("Expiry of a session with no record: %v", exp)
			}
			if id, _ := s.ID(); id != "" {
				t.Errorf("ID before the first save: %q", id)
			}
			if st, _ := s.Status(); st != sessions.StatusNew {
				t.Errorf("Status of a new session: %b", st)
			}
			s.Set("big", int64(1)<<60)
			if st, _ := s.Status(); st != sessions.StatusNew|sessions.StatusModified {
				t.Errorf("Status after Set: %b", st)
			}
			if exp, _ := s.Expiry(); !exp.Equal(time.Now().Add(time.Hour).Truncate(time.Millisecond)) {
				t.Errorf("Expiry %v, want an hour from now", exp)
			}
		}
		c.get("/")
		check = func(s *sessions.Session) {
			// Numbers in an any decode as float64 (encoding/json), which
			// cannot hold 1<<60 exactly; a typed Get keeps every bit.
			if v, _, _ := sessions.Get[any](s, "big"); v != float64(1<<60) {
				t.Errorf("Get[any] = %#v, want float64", v)
			}
			if v, _, _ := sessions.Get[int64](s, "big"); v != 1<<60 {
				t.Errorf("Get[int64] = %d, want exactly 1<<60", v)
			}
			if st, _ := s.Status(); st != 0 {
				t.Errorf("Status of a loaded, unchanged session: %b", st)
			}
			s.Renew()
			s.Destroy()
			if st, _ := s.Status(); st != sessions.StatusNew|sessions.StatusDestroyed {
				t.Errorf("Status after Destroy: %b", st)
			}
		}
		c.get("/")
		c.cookie = nil
		check = func(s *sessions.Session) { s.Set("a", 1) }
		c.get("/")
		time.Sleep(2 * time.Hour)
		if n, err := m.DeleteExpired(context.Background()); err != nil || n != 1 {
			t.Errorf("DeleteExpired: %d, %v; want the one expired session", n, err)
		}
	})
	m := mustNew(t, plainStore{mem()}, nil)
	if _, err := m.DeleteExpired(context.Background()); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("DeleteExpired without ExpiredDeleter: %v", err)
	}
}

// plainStore hides a store's optional capabilities.
type plainStore struct{ sessions.Store }
