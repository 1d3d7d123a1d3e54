package sessions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionkit/sessions"
)

func TestUntouchedRequestLeavesNoTrace(t *testing.T) {
	spy := newSpy()
	m := mustNew(t, spy, nil)
	c := newClient(t, m, testHandler(t))
	for _, cookie := range []string{"", "garbage", strings.Repeat("A", 43)} {
		c.cookie = nil
		if cookie != "" {
			c.cookie = &http.Cookie{Name: m.CookieName(), Value: cookie}
		}
		w := c.get("/")
		if w.Code != 200 || w.Body.String() != "ok" {
			t.Fatalf("untouched request answered %d %q", w.Code, w.Body)
		}
		if sc := setCookies(w); len(sc) != 0 {
			t.Errorf("untouched request with cookie %q got Set-Cookie %q", cookie, sc)
		}
		if v := w.Header().Values("Vary"); len(v) != 0 {
			t.Errorf("untouched request got Vary %q", v)
		}
	}
	if n := spy.total(); n != 0 {
		t.Errorf("untouched requests made %d store calls, want 0", n)
	}
}

func TestUntouchedAllocations(t *testing.T) {
	m := mustNew(t, mem(), nil)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	wrapped := m.Handler(bare)
	for _, cookie := range []string{"", "session=abc; " + m.CookieName() + "=" + strings.Repeat("A", 43)} {
		r := httptest.NewRequest("GET", "/", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		base := testing.AllocsPerRun(200, func() { bare.ServeHTTP(w, r) })
		got := testing.AllocsPerRun(200, func() { wrapped.ServeHTTP(w, r) })
		if got-base > 2 {
			t.Errorf("cookie %q: untouched request allocates %v times more than a bare handler, want at most 2", cookie, got-base)
		}
	}
}

func TestNewSessionCookie(t *testing.T) {
	spy := newSpy()
	m := mustNew(t, spy, nil)
	c := newClient(t, m, testHandler(t))
	w := c.get("/set?k=a&v=1")
	if w.Code != 200 {
		t.Fatalf("set answered %d %s", w.Code, w.Body)
	}
	sc := sessionCookie(w, "__Host-session")
	if sc == nil {
		t.Fatalf("no session cookie; Set-Cookie = %q", setCookies(w))
	}
	if !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Domain != "" {
		t.Errorf("cookie attributes wrong: %q", setCookies(w))
	}
	if sc.MaxAge != int(sessions.DefaultLifetime/time.Second) {
		t.Errorf("Max-Age = %d, want the default lifetime %d", sc.MaxAge, int(sessions.DefaultLifetime/time.Second))
	}
	if len(sc.Value) != 43 {
		t.Errorf("token %q is not 43 characters", sc.Value)
	}
	if got := w.Header().Get("Vary"); got != "Cookie" {
		t.Errorf("Vary = %q, want Cookie", got)
	}
	if got := w.Header().Get("Cache-Control"); got != `private, no-cache="Set-Cookie"` {
		t.Errorf("Cache-Control = %q", got)
	}
	if spy.count("Create") != 1 {
		t.Errorf("%d creates, want 1", spy.count("Create"))
	}
	// Reading it back sends no cookie: nothing changed and there is no idle timeout.
	w = c.get("/get?k=a")
	if w.Body.String() != "1" {
		t.Errorf("get answered %d %q, want 1", w.Code, w.Body)
	}
	if sc := setCookies(w); len(sc) != 0 {
		t.Errorf("read-only request got Set-Cookie %q", sc)
	}
	// Setting an equal value is no change: no store write.
	spy.reset()
	c.get("/set?k=a&v=1")
	if n := spy.count("Update"); n != 0 {
		t.Errorf("re-setting an equal value made %d updates", n)
	}
}

func TestCacheControlKeptWhenHandlerSetsIt(t *testing.T) {
	m := mustNew(t, mem(), nil)
	c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=0")
		sessions.FromContext(r.Context()).Set("k", 1)
	}))
	w := c.get("/")
	if got := w.Header().Values("Cache-Control"); len(got) != 1 || got[0] != "private, max-age=0" {
		t.Errorf("Cache-Control = %q, want the handler's", got)
	}
	if len(setCookies(w)) != 1 {
		t.Error("no cookie")
	}
}

func TestClientChosenIDsAreNeverAdopted(t *testing.T) {
	spy := newSpy()
	m := mustNew(t, spy, &sessions.Options{InsecureCookie: true, CookieName: "id"})
	h := testHandler(t)
	chosen := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // well-formed, unknown
	tests := []struct {
		name    string
		cookies []string
		reads   int // store Loads expected for a read
	}{
		{"well-formed unknown", []string{"id=" + chosen}, 1},
		{"empty", []string{"id="}, 0},
		{"short", []string{"id=abc"}, 0},
		{"five kilobytes", []string{"id=" + strings.Repeat("A", 5000)}, 0},
		{"wrong alphabet", []string{"id=" + strings.Repeat("*", 43)}, 0},
		{"duplicate names", []string{"id=x; id=" + chosen}, 1},
		{"two headers", []string{"id=x", "id=" + chosen}, 1},
		{"300 cookies", []string{strings.Repeat("a=b; ", 300) + "id=bad"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/get?k=a", "/set?k=a&v=1"} {
				spy.reset()
				r := httptest.NewRequest("GET", path, nil)
				for _, c := range tt.cookies {
					r.Header.Add("Cookie", c)
				}
				w := httptest.NewRecorder()
				m.Handler(h).ServeHTTP(w, r)
				if w.Code >= 500 {
					t.Fatalf("%s answered %d", path, w.Code)
				}
				if got := spy.count("Load"); got != tt.reads {
					t.Errorf("%s: %d store loads, want %d", path, got, tt.reads)
				}
				sc := sessionCookie(w, "id")
				switch path {
				case "/get?k=a":
					if w.Code != 404 || spy.count("Create") != 0 || sc != nil {
						t.Errorf("read with a bad cookie: %d, %d creates, cookie %v", w.Code, spy.count("Create"), sc)
					}
				default:
					if sc == nil || sc.Value == chosen || len(sc.Value) != 43 {
						t.Errorf("write with a bad cookie: got cookie %v, want a fresh token", sc)
					}
				}
			}
		})
	}
	// Nothing was ever stored under the chosen token's ID.
	m2 := mustNew(t, spy, &sessions.Options{InsecureCookie: true, CookieName: "id"})
	r := httptest.NewRequest("GET", "/get?k=a", nil)
	r.Header.Set("Cookie", "id="+chosen)
	w := httptest.NewRecorder()
	m2.Handler(h).ServeHTTP(w, r)
	if w.Code != 404 {
		t.Errorf("the client-chosen ID answers %d, want 404 (no session)", w.Code)
	}
}

func TestDuplicateCookieFindsLiveSession(t *testing.T) {
	m := mustNew(t, mem(), nil)
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=live")
	live := c.cookie.Value
	stale := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, header := range []string{
		m.CookieName() + "=" + stale + "; " + m.CookieName() + "=" + live,
		m.CookieName() + "=" + live + "; " + m.CookieName() + "=" + stale,
		m.CookieName() + "=junk; " + m.CookieName() + "=" + live,
	} {
		r := httptest.NewRequest("GET", "/get?k=a", nil)
		r.Header.Set("Cookie", header)
		w := httptest.NewRecorder()
		m.Handler(testHandler(t)).ServeHTTP(w, r)
		if w.Body.String() != "live" {
			t.Errorf("Cookie %q: got %d %q, want the live session", header, w.Code, w.Body)
		}
	}
}

func TestDestroy(t *testing.T) {
	spy := newSpy()
	opts := &sessions.Options{CookieName: "__Secure-s", Domain: "example.com", Path: "/app", SameSite: http.SameSiteStrictMode, Partitioned: true}
	m := mustNew(t, spy, opts)
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=1")
	old := c.cookie.Value
	// The handler is mounted at "/", paths are just labels here.
	w := c.get("/destroy")
	sc := sessionCookie(w, "__Secure-s")
	if sc == nil || sc.Value != "" || sc.MaxAge >= 0 {
		t.Fatalf("destroy did not send a removal cookie: %q", setCookies(w))
	}
	raw := setCookies(w)[0]
	for _, attr := range []string{"Path=/app", "Domain=example.com", "Max-Age=0", "Expires=Thu, 01 Jan 1970 00:00:00 GMT", "HttpOnly", "Secure", "SameSite=Strict", "Partitioned"} {
		if !strings.Contains(raw, attr) {
			t.Errorf("removal cookie %q lacks %s", raw, attr)
		}
	}
	if spy.count("Delete") != 1 {
		t.Errorf("%d deletes, want 1", spy.count("Delete"))
	}
	// The old token no longer works.
	c.cookie = &http.Cookie{Name: "__Secure-s", Value: old}
	if w := c.get("/get?k=a"); w.Code != 404 {
		t.Errorf("destroyed session still answers %d %q", w.Code, w.Body)
	}
}

func TestWriteAfterDestroyStartsNewSession(t *testing.T) {
	m := mustNew(t, mem(), nil)
	c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		if r.URL.Path == "/both" {
			if err := s.Destroy(); err != nil {
				t.Error(err)
			}
			if v, ok, _ := sessions.Get[string](s, "a"); ok {
				t.Errorf("destroyed data still readable: %q", v)
			}
		}
		if err := s.Set("a", r.URL.Path); err != nil {
			t.Error(err)
		}
	}))
	c.get("/first")
	old := c.cookie.Value
	w := c.get("/both")
	if n := len(setCookies(w)); n != 1 {
		t.Fatalf("%d Set-Cookie headers, want exactly one: %q", n, setCookies(w))
	}
	if c.cookie == nil || c.cookie.Value == old {
		t.Fatalf("write after destroy reused the old ID")
	}
	// The old ID stays dead.
	c.cookie = &http.Cookie{Name: m.CookieName(), Value: old}
	c2 := newClient(t, m, testHandler(t))
	c2.cookie = c.cookie
	if w := c2.get("/get?k=a"); w.Code != 404 {
		t.Errorf("old ID answers %d after destroy and write", w.Code)
	}
}

func TestRenew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spy := newSpy()
		m := mustNew(t, spy, nil)
		c := newClient(t, m, testHandler(t))
		c.get("/set?k=a&v=kept")
		old := c.cookie.Value
		time.Sleep(20 * time.Hour)

		w := c.get("/renew")
		if w.Code != 200 || c.cookie.Value == old {
			t.Fatalf("renew answered %d and cookie %v", w.Code, c.cookie)
		}
		// A plain renewal keeps the absolute deadline: 4 hours left.
		if c.cookie.MaxAge != int((4 * time.Hour).Seconds()) {
			t.Errorf("Max-Age after renew = %d, want %d (deadline kept)", c.cookie.MaxAge, int((4 * time.Hour).Seconds()))
		}
		if w := c.get("/get?k=a"); w.Body.String() != "kept" {
			t.Errorf("data after renew: %d %q", w.Code, w.Body)
		}
		oldClient := &client{t: t, h: c.h, name: c.name, cookie: &http.Cookie{Name: c.name, Value: old}}
		if w := oldClient.get("/get?k=a"); w.Code != 404 {
			t.Errorf("old ID still works after renew: %d", w.Code)
		}

		// A renewal at login starts a fresh lifetime and sets the owner.
		beforeLogin := c.cookie.Value
		c.get("/login?user=alice")
		if c.cookie.Value == beforeLogin || c.cookie.MaxAge != int(sessions.DefaultLifetime.Seconds()) {
			t.Errorf("login renewal: cookie %v, want a new ID with a full lifetime", c.cookie)
		}
		ids, err := m.ListOwner(context.Background(), "alice")
		if err != nil || len(ids) != 1 {
			t.Errorf("ListOwner(alice) = %v, %v; want one session", ids, err)
		}
		if w := c.get("/get?k=a"); w.Body.String() != "kept" {
			t.Errorf("data after login: %d %q", w.Code, w.Body)
		}
	})
}

func TestRenewNewSessionCreates(t *testing.T) {
	m := mustNew(t, mem(), nil)
	c := newClient(t, m, testHandler(t))
	if w := c.get("/login?user=bob"); sessionCookie(w, m.CookieName()) == nil {
		t.Fatalf("login on a fresh visitor sent no cookie: %q", setCookies(w))
	}
	n, err := m.DestroyOwner(context.Background(), "bob")
	if err != nil || n != 1 {
		t.Errorf("DestroyOwner(bob) = %d, %v; want 1", n, err)
	}
	if w := c.get("/get?k=a"); w.Code != 404 {
		t.Errorf("session survived DestroyOwner: %d", w.Code)
	}
}

func TestStatusDecidesSave(t *testing.T) {
	tests := []struct {
		status int
		save   bool
		should func(int) bool
	}{
		{200, true, nil},
		{302, true, nil},
		{404, true, nil},
		{499, true, nil},
		{500, false, nil},
		{503, false, nil},
		{401, false, func(s int) bool { return s < 400 }},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			spy := newSpy()
			m := mustNew(t, spy, &sessions.Options{ShouldSave: tt.should})
			c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sessions.FromContext(r.Context()).Set("k", "v")
				w.WriteHeader(tt.status)
			}))
			w := c.get("/")
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			saved := spy.count("Create") == 1
			if saved != tt.save || (sessionCookie(w, m.CookieName()) != nil) != tt.save {
				t.Errorf("status %d: saved=%v cookie=%q, want saved=%v", tt.status, saved, setCookies(w), tt.save)
			}
		})
	}
}

func TestDestroyHoldsOn5xx(t *testing.T) {
	m := mustNew(t, mem(), nil)
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=1")
	old := c.cookie
	c2 := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessions.FromContext(r.Context()).Destroy()
		w.WriteHeader(500)
	}))
	c2.cookie = old
	w := c2.get("/")
	if sc := sessionCookie(w, m.CookieName()); sc == nil || sc.MaxAge >= 0 {
		t.Errorf("destroy then 500: Set-Cookie %q, want a removal", setCookies(w))
	}
	if w := c.get("/get?k=a"); w.Code != 404 {
		t.Errorf("session destroyed by a 500 response still answers %d", w.Code)
	}
}

func TestStoreFailuresFailClosed(t *testing.T) {
	boom := errors.New("boom")
	for _, op := range []string{"Load", "Create", "Update", "Delete"} {
		t.Run(op, func(t *testing.T) {
			spy := newSpy()
			var logs bytes.Buffer
			m := mustNew(t, spy, &sessions.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			c := newClient(t, m, testHandler(t))
			c.get("/set?k=a&v=1")
			good := c.cookie
			if op == "Create" {
				c.cookie = nil
			}
			spy.setFail(op, boom)
			path := map[string]string{"Load": "/get?k=a", "Create": "/set?k=a&v=2", "Update": "/set?k=a&v=2", "Delete": "/destroy"}[op]
			w := c.get(path)
			if w.Code < 500 {
				t.Errorf("%s failure: status %d, want 5xx", op, w.Code)
			}
			if sc := setCookies(w); len(sc) != 0 {
				t.Errorf("%s failure sent Set-Cookie %q", op, sc)
			}
			if good != nil && good.Value != "" && strings.Contains(logs.String(), good.Value) {
				t.Errorf("the raw token was logged: %s", logs.String())
			}
			spy.setFail(op, nil)
			c.cookie = good
			if w := c.get("/get?k=a"); w.Body.String() != "1" {
				t.Errorf("after the outage: %d %q, want the intact session", w.Code, w.Body)
			}
		})
	}
}

func TestCommitFailureGoesToErrorHandler(t *testing.T) {
	spy := newSpy()
	var got error
	m := mustNew(t, spy, &sessions.Options{ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		http.Error(w, "custom", 599)
	}})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessions.FromContext(r.Context()).Set("k", "v")
		w.Header().Set("X-Handler", "1")
		w.WriteHeader(201)
		if _, err := w.Write([]byte("body")); err == nil {
			t.Error("Write after a failed commit reported success")
		}
	})
	spy.setFail("Create", errors.New("disk on fire"))
	c := newClient(t, m, h)
	w := c.get("/")
	if w.Code != 599 || !strings.Contains(w.Body.String(), "custom") || strings.Contains(w.Body.String(), "body") {
		t.Errorf("got %d %q, want the error handler's answer only", w.Code, w.Body)
	}
	if !errors.Is(got, sessions.ErrStore) {
		t.Errorf("error handler got %v, want ErrStore", got)
	}
	if len(setCookies(w)) != 0 {
		t.Errorf("Set-Cookie after a failed commit: %q", setCookies(w))
	}
}

func TestLostUpdatesImpossible(t *testing.T) {
	spy := newSpy()
	m := mustNew(t, spy, nil)
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=seed&v=1")
	cookie := c.cookie

	// 50 concurrent increments.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			cl := &client{t: t, h: c.h, name: c.name, cookie: cookie}
			if w := cl.get("/incr"); w.Code != 200 {
				t.Errorf("incr answered %d %q", w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	w := httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _, err := sessions.Get[int](sessions.FromContext(r.Context()), "n")
		fmt.Fprint(w, n, err)
	})).ServeHTTP(w, r)
	if w.Body.String() != "50 <nil>" {
		t.Errorf("after 50 concurrent increments: %q, want 50", w.Body)
	}

	// 20 overlapping writers of distinct keys: every key survives.
	var start sync.WaitGroup
	start.Add(20)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		if _, err := s.Keys(); err != nil { // load
			t.Error(err)
		}
		start.Done()
		start.Wait() // everyone has loaded the same version
		s.Set(r.URL.Query().Get("k"), true)
	}))
	for i := range 20 {
		wg.Go(func() {
			r := httptest.NewRequest("GET", "/?k=key"+strconv.Itoa(i), nil)
			r.AddCookie(cookie)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				t.Errorf("set %d answered %d", i, w.Code)
			}
		})
	}
	wg.Wait()
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, _ := sessions.FromContext(r.Context()).Keys()
		json.NewEncoder(w).Encode(keys)
	})).ServeHTTP(w, r)
	var keys []string
	json.Unmarshal(w.Body.Bytes(), &keys)
	if len(keys) != 22 { // n, seed, key0..key19
		t.Errorf("after 20 overlapping writers: %d keys %q, want 22", len(keys), keys)
	}
}

func TestNoResurrection(t *testing.T) {
	for _, ender := range []string{"/destroy", "/renew"} {
		t.Run(ender, func(t *testing.T) {
			spy := newSpy()
			m := mustNew(t, spy, &sessions.Options{IdleTimeout: time.Hour})
			c := newClient(t, m, testHandler(t))
			c.get("/set?k=a&v=1")
			old := c.cookie

			loaded := make(chan struct{})
			release := make(chan struct{})
			slow := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := sessions.FromContext(r.Context())
				sessions.Get[string](s, "a")
				close(loaded)
				<-release
				if r.URL.Path == "/write" {
					s.Set("b", "2")
				}
			}))
			for _, path := range []string{"/write", "/read"} {
				loaded = make(chan struct{})
				release = make(chan struct{})
				done := make(chan *httptest.ResponseRecorder)
				go func() {
					r := httptest.NewRequest("GET", path, nil)
					r.AddCookie(old)
					w := httptest.NewRecorder()
					slow.ServeHTTP(w, r)
					done <- w
				}()
				<-loaded
				ec := &client{t: t, h: c.h, name: c.name, cookie: old}
				ec.get(ender)
				close(release)
				w := <-done
				if sc := sessionCookie(w, m.CookieName()); sc != nil && sc.Value == old.Value {
					t.Errorf("%s overlapping %s handed the old ID back", path, ender)
				}
				if path == "/write" && w.Code != http.StatusConflict {
					t.Errorf("write overlapping %s answered %d, want 409", ender, w.Code)
				}
				oc := &client{t: t, h: c.h, name: c.name, cookie: old}
				if w := oc.get("/get?k=a"); w.Code != 404 {
					t.Errorf("old ID answers %d after %s overlapped %s", w.Code, ender, path)
				}
				// Recreate the session for the next round.
				c.cookie = nil
				c.get("/set?k=a&v=1")
				old = c.cookie
			}
		})
	}
}

func TestIdleTimeoutAndTouch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spy := newSpy()
		m := mustNew(t, spy, &sessions.Options{IdleTimeout: 10 * time.Minute})
		c := newClient(t, m, testHandler(t))
		c.get("/set?k=a&v=1")
		if c.cookie.MaxAge != 600 {
			t.Fatalf("Max-Age = %d, want 600", c.cookie.MaxAge)
		}
		// A read within the touch interval (a tenth of idle) writes nothing.
		spy.reset()
		time.Sleep(30 * time.Second)
		if w := c.get("/get?k=a"); len(setCookies(w)) != 0 || spy.count("Touch") != 0 {
			t.Errorf("read inside the touch interval: %d touches, Set-Cookie %q", spy.count("Touch"), setCookies(w))
		}
		// Reads keep the session alive well past the idle timeout.
		for range 5 {
			time.Sleep(5 * time.Minute)
			w := c.get("/get?k=a")
			if w.Body.String() != "1" {
				t.Fatalf("active session lost: %d %q", w.Code, w.Body)
			}
			if sc := sessionCookie(w, m.CookieName()); sc == nil || sc.MaxAge != 600 {
				t.Errorf("read that extended the deadline re-sent %q, want Max-Age=600", setCookies(w))
			}
		}
		if got := spy.count("Touch"); got != 5 {
			t.Errorf("%d touches, want 5", got)
		}
		if spy.count("Update") != 0 {
			t.Errorf("reads caused %d updates, want touches only", spy.count("Update"))
		}
		// Idle for longer than the timeout: gone.
		time.Sleep(10*time.Minute + time.Second)
		if w := c.get("/get?k=a"); w.Code != 404 {
			t.Errorf("idle session still answers %d", w.Code)
		}
	})
}

func TestAbsoluteLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := mustNew(t, mem(), &sessions.Options{Lifetime: time.Hour, IdleTimeout: 30 * time.Minute})
		c := newClient(t, m, testHandler(t))
		c.get("/set?k=a&v=1")
		for i := range 5 {
			time.Sleep(10 * time.Minute)
			w := c.get("/get?k=a")
			if w.Code != 200 {
				t.Fatalf("session ended early: %d", w.Code)
			}
			// Reads extend the idle deadline until it meets the absolute
			// one (at 30 minutes); the cookie never outlives the latter.
			elapsed := (i + 1) * 600
			sc := sessionCookie(w, m.CookieName())
			switch {
			case elapsed <= 1800 && (sc == nil || sc.MaxAge != 1800):
				t.Errorf("after %ds: Set-Cookie %q, want Max-Age=1800", elapsed, setCookies(w))
			case elapsed > 1800 && sc != nil:
				t.Errorf("after %ds: Set-Cookie %q, but the deadline could not move", elapsed, setCookies(w))
			}
		}
		time.Sleep(10*time.Minute + time.Millisecond)
		if w := c.get("/get?k=a"); w.Code != 404 {
			t.Errorf("session outlived its absolute lifetime: %d", w.Code)
		}
	})
}

func TestPerSessionExpiryIsStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := mustNew(t, mem(), nil)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := sessions.FromContext(r.Context())
			var err error
			switch r.URL.Path {
			case "/idle":
				err = s.SetIdleTimeout(time.Minute)
			case "/at":
				err = s.SetDeadline(time.Now().Add(time.Duration(mustAtoi(r.FormValue("in"))) * time.Second))
			case "/browser":
				err = s.SetBrowserSession(true)
			case "/set":
				err = s.Set("k", r.FormValue("v"))
			case "/get":
				var ok bool
				_, ok, err = sessions.Get[string](s, "k")
				if !ok && err == nil {
					w.WriteHeader(404)
				}
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
			}
		})
		c := newClient(t, m, h)
		c.get("/set?v=1")
		w := c.get("/idle")
		if sc := sessionCookie(w, m.CookieName()); sc == nil || sc.MaxAge != 60 {
			t.Fatalf("per-session idle: Set-Cookie %q, want Max-Age=60", setCookies(w))
		}
		// The override survives later requests.
		time.Sleep(50 * time.Second)
		c.get("/set?v=2")
		time.Sleep(50 * time.Second)
		if w := c.get("/get"); w.Code != 200 {
			t.Fatalf("session with activity ended: %d", w.Code)
		}
		time.Sleep(61 * time.Second)
		if w := c.get("/get"); w.Code != 404 {
			t.Fatalf("per-session idle timeout not enforced on a later request: %d", w.Code)
		}

		c.cookie = nil
		c.get("/set?v=1")
		w = c.get("/at?in=120")
		if sc := sessionCookie(w, m.CookieName()); sc == nil || sc.MaxAge != 120 {
			t.Fatalf("per-session deadline: %q, want Max-Age=120", setCookies(w))
		}
		time.Sleep(121 * time.Second)
		if w := c.get("/get"); w.Code != 404 {
			t.Errorf("per-session deadline not enforced: %d", w.Code)
		}

		c.cookie = nil
		c.get("/set?v=1")
		w = c.get("/at?in=-5")
		if sc := sessionCookie(w, m.CookieName()); sc == nil || sc.MaxAge >= 0 {
			t.Errorf("past deadline: %q, want a removal cookie", setCookies(w))
		}

		c.cookie = nil
		c.get("/set?v=1")
		w = c.get("/browser")
		raw := setCookies(w)
		if len(raw) != 1 || strings.Contains(raw[0], "Max-Age") || strings.Contains(raw[0], "Expires") {
			t.Fatalf("browser session cookie: %q", raw)
		}
		w = c.get("/set?v=3")
		if raw := setCookies(w); len(raw) == 1 && strings.Contains(raw[0], "Max-Age") {
			t.Errorf("browser-session mode lost on a later request: %q", raw)
		}
	})
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestBrowserSessionCookieOption(t *testing.T) {
	m := mustNew(t, mem(), &sessions.Options{BrowserSessionCookie: true})
	c := newClient(t, m, testHandler(t))
	raw := setCookies(c.get("/set?k=a&v=1"))
	if len(raw) != 1 || strings.Contains(raw[0], "Max-Age") || strings.Contains(raw[0], "Expires") {
		t.Errorf("browser-session cookie %q has an expiry", raw)
	}
}

func TestChangeAfterHeadersIsReported(t *testing.T) {
	m := mustNew(t, mem(), nil)
	var lateErr error
	c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		s.Set("early", "yes")
		w.Write([]byte("body"))
		lateErr = s.Set("late", 2)
	}))
	c.get("/")
	if !errors.Is(lateErr, sessions.ErrCommitted) {
		t.Errorf("change after the body started returned %v, want ErrCommitted", lateErr)
	}
	c2 := newClient(t, m, testHandler(t))
	c2.cookie = c.cookie
	if w := c2.get("/get?k=early"); w.Code != 200 {
		t.Errorf("early change lost: %d", w.Code)
	}
}

func TestWithoutMiddleware(t *testing.T) {
	s := sessions.FromContext(context.Background())
	if s != nil {
		t.Fatal("FromContext without middleware returned a session")
	}
	checks := map[string]error{}
	_, _, checks["Get"] = sessions.Get[int](s, "k")
	_, _, checks["Pop"] = sessions.Pop[int](s, "k")
	_, checks["Update"] = sessions.Update(s, "k", func(int) int { return 1 })
	checks["Set"] = s.Set("k", 1)
	checks["Delete"] = s.Delete("k")
	checks["Clear"] = s.Clear()
	_, checks["Keys"] = s.Keys()
	_, checks["ID"] = s.ID()
	_, checks["Owner"] = s.Owner()
	checks["SetOwner"] = s.SetOwner("u")
	checks["Renew"] = s.Renew()
	checks["RenewAfterLogin"] = s.RenewAfterLogin("u")
	checks["Destroy"] = s.Destroy()
	checks["SetIdleTimeout"] = s.SetIdleTimeout(time.Second)
	checks["SetDeadline"] = s.SetDeadline(time.Now().Add(time.Hour))
	checks["SetBrowserSession"] = s.SetBrowserSession(true)
	checks["Key.Get"] = func() error { _, _, err := sessions.Key[int]("k").Get(s); return err }()
	for name, err := range checks {
		if !errors.Is(err, sessions.ErrNoSession) {
			t.Errorf("%s on a nil session: %v, want ErrNoSession", name, err)
		}
	}
}

func TestSeveralManagers(t *testing.T) {
	store := mem()
	a := mustNew(t, store, &sessions.Options{CookieName: "__Host-a"})
	b := mustNew(t, store, &sessions.Options{CookieName: "__Host-b"})
	h := a.Handler(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sa, sb := a.FromContext(r.Context()), b.FromContext(r.Context())
		if sa == sb || sa == nil || sb == nil {
			t.Fatal("managers share a session")
		}
		if sessions.FromContext(r.Context()) != sb {
			t.Error("FromContext is not the innermost manager's session")
		}
		sa.Set("who", "a")
		sb.Set("who", "b")
	})))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	names := map[string]bool{}
	for _, c := range w.Result().Cookies() {
		names[c.Name] = true
	}
	if !names["__Host-a"] || !names["__Host-b"] || len(names) != 2 {
		t.Errorf("cookies %q, want one per manager", setCookies(w))
	}
}

func TestTooLarge(t *testing.T) {
	m := mustNew(t, mem(), &sessions.Options{MaxDataSize: 100})
	c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		if err := s.Set("small", "x"); err != nil {
			t.Error(err)
		}
		err := s.Set("big", strings.Repeat("x", 200))
		var tl *sessions.TooLargeError
		if !errors.As(err, &tl) || tl.Limit != 100 || tl.Size <= 100 {
			t.Errorf("oversized Set: %v, want *TooLargeError", err)
		}
		if _, ok, _ := sessions.Get[string](s, "big"); ok {
			t.Error("rejected value was kept")
		}
		if _, ok, _ := sessions.Get[string](s, "small"); !ok {
			t.Error("earlier value lost")
		}
	}))
	if w := c.get("/"); w.Code != 200 || c.cookie == nil {
		t.Errorf("session with a rejected change not saved: %d", w.Code)
	}
}

func TestAccessors(t *testing.T) {
	type user struct {
		Name  string
		Admin bool
	}
	userKey := sessions.Key[user]("user")
	m := mustNew(t, mem(), nil)
	step := 0
	c := newClient(t, m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		switch step {
		case 0:
			must(t, userKey.Set(s, user{"ann", true}))
			must(t, s.Set("flash", "saved"))
			must(t, s.Set("n", 1))
			must(t, s.Set("null", nil))
		case 1:
			u, ok, err := userKey.Get(s)
			if err != nil || !ok || u != (user{"ann", true}) {
				t.Errorf("typed get: %v %v %v", u, ok, err)
			}
			f, ok, err := sessions.Pop[string](s, "flash")
			if f != "saved" || !ok || err != nil {
				t.Errorf("pop: %q %v %v", f, ok, err)
			}
			if _, ok, _ := sessions.Pop[string](s, "flash"); ok {
				t.Error("flash popped twice")
			}
			if _, _, err := sessions.Get[string](s, "n"); err == nil {
				t.Error("decoding a number into a string did not fail")
			}
			keys, _ := s.Keys()
			if strings.Join(keys, ",") != "n,null,user" {
				t.Errorf("keys %q", keys)
			}
			n, err := sessions.Key[int]("n").Update(s, func(n int) int { return n + 41 })
			if n != 42 || err != nil {
				t.Errorf("update: %d %v", n, err)
			}
			must(t, userKey.Delete(s))
		case 2:
			keys, _ := s.Keys()
			if strings.Join(keys, ",") != "n,null" {
				t.Errorf("keys after delete %q", keys)
			}
			if n, _, _ := sessions.Get[int](s, "n"); n != 42 {
				t.Errorf("n = %d", n)
			}
			id, _ := s.ID()
			must(t, s.Clear())
			keys, _ = s.Keys()
			if len(keys) != 0 {
				t.Errorf("keys after clear %q", keys)
			}
			if id2, _ := s.ID(); id2 != id || len(id) != 64 {
				t.Errorf("clear changed the ID %q -> %q", id, id2)
			}
			must(t, s.SetOwner("ann"))
		case 3:
			keys, _ := s.Keys()
			owner, _ := s.Owner()
			if len(keys) != 0 || owner != "ann" {
				t.Errorf("after clear: keys %q owner %q", keys, owner)
			}
		}
		step++
	}))
	for range 4 {
		if w := c.get("/"); w.Code != 200 {
			t.Fatalf("step %d: %d", step, w.Code)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestResponseController(t *testing.T) {
	m := mustNew(t, mem(), nil)
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessions.FromContext(r.Context()).Set("k", 1)
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush through the wrapper: %v", err)
		}
		if err := sessions.FromContext(r.Context()).Set("k", 2); !errors.Is(err, sessions.ErrCommitted) {
			t.Errorf("change after Flush: %v, want ErrCommitted", err)
		}
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Header.Values("Set-Cookie")) != 1 {
		t.Errorf("flushed response lacks the session cookie: %q", resp.Header.Values("Set-Cookie"))
	}
}

func TestOwnerNotSupported(t *testing.T) {
	type bare struct{ sessions.Store }
	m := mustNew(t, bare{mem()}, nil)
	if _, err := m.ListOwner(context.Background(), "u"); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("ListOwner: %v", err)
	}
	if _, err := m.DestroyOwner(context.Background(), "u"); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("DestroyOwner: %v", err)
	}
	if err := m.Sweep(context.Background(), time.Second); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("Sweep: %v", err)
	}
}

func TestSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := mem()
		m := mustNew(t, store, &sessions.Options{Lifetime: time.Minute})
		if err := m.Sweep(context.Background(), 0); !errors.Is(err, sessions.ErrInvalidOptions) {
			t.Errorf("Sweep(0): %v", err)
		}
		c := newClient(t, m, testHandler(t))
		c.get("/set?k=a&v=1")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- m.Sweep(ctx, 30*time.Second) }()
		synctest.Wait()
		if _, _, _, found, _ := store.Load(context.Background(), idOfCookie(c.cookie.Value), time.Unix(0, 0)); !found {
			t.Fatal("live record swept")
		}
		time.Sleep(90 * time.Second)
		synctest.Wait()
		if _, _, _, found, _ := store.Load(context.Background(), idOfCookie(c.cookie.Value), time.Unix(0, 0)); found {
			t.Error("expired record not swept")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Sweep returned %v after cancel", err)
		}
	})
}

func TestCorruptRecordIsNoSession(t *testing.T) {
	store := mem()
	var logs bytes.Buffer
	m := mustNew(t, store, &sessions.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=1")
	id := idOfCookie(c.cookie.Value)
	_, v, exp, _, _ := store.Load(context.Background(), id, time.Now())
	store.Update(context.Background(), id, v, []byte{9, 9, 9}, exp, "", time.Now())
	if w := c.get("/get?k=a"); w.Code != 404 {
		t.Errorf("corrupt record answered %d, want no session", w.Code)
	}
	if !strings.Contains(logs.String(), "corrupt") {
		t.Errorf("corrupt record not logged: %q", logs.String())
	}
}

func TestInformationalStatusPassesThrough(t *testing.T) {
	m := mustNew(t, mem(), nil)
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessions.FromContext(r.Context()).Set("k", 1)
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(resp.Header.Values("Set-Cookie")) != 1 {
		t.Errorf("after 103: %d, Set-Cookie %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
}

// deadlineDeleter removes n records per call in steps of a second until its
// context ends, like a store that paces its deletes through a backlog; with
// stall it removes nothing and waits for the deadline.
type deadlineDeleter struct {
	sessions.Store
	stall bool
	calls int
}

func (d *deadlineDeleter) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	d.calls++
	n := 0
	for {
		if !d.stall {
			n++
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// TestSweepBacklogIsNotAFailure: a sweep that removed records until its own
// deadline ended it logs at debug level and the next starts at once; one
// that removed nothing before the deadline is logged as a failure.
func TestSweepBacklogIsNotAFailure(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stall=%v", stall), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				d := &deadlineDeleter{Store: mem(), stall: stall}
				m := mustNew(t, d, &sessions.Options{StoreTimeout: time.Second,
					Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- m.Sweep(ctx, 10*time.Second) }()
				time.Sleep(35 * time.Second)
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Sweep: %v", err)
				}
				failed := strings.Count(logs.String(), "sweep failed")
				more := strings.Count(logs.String(), "more are left for the next sweep")
				if d.calls < 3 {
					t.Errorf("%d sweeps in 35 s of 10 s slices, want them back to back", d.calls)
				}
				if stall && (failed < 3 || more != 0) {
					t.Errorf("no progress: %d failures and %d backlog notes logged, want a failure per sweep:\n%s", failed, more, logs.String())
				}
				if !stall && (failed != 0 || more < 3) {
					t.Errorf("progress until the deadline: %d failures and %d backlog notes logged, want notes only:\n%s", failed, more, logs.String())
				}
			})
		})
	}
}
