package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/auth"
	"github.com/sessionkit/sessions/memstore"
)

func TestNewValidates(t *testing.T) {
	mem, _ := memstore.New(nil)
	m, _ := sessions.New(mem, nil)
	db := newUserDB()
	tests := []struct {
		name  string
		m     *sessions.Manager
		users auth.Users[user]
		opts  *auth.Options
		want  string // "" = valid
	}{
		{"valid", m, db, &auth.Options{Key: testKey}, ""},
		{"nil options", m, db, nil, "Key is 0 bytes"},
		{"zero options", m, db, &auth.Options{}, "Key is 0 bytes"},
		{"short key", m, db, &auth.Options{Key: testKey[:31]}, "Key is 31 bytes"},
		{"nil manager", nil, db, &auth.Options{Key: testKey}, "nil Manager"},
		{"nil users", m, nil, &auth.Options{Key: testKey}, "nil Users"},
		{"relative login URL", m, db, &auth.Options{Key: testKey, LoginURL: "login"}, "LoginURL"},
		{"scheme-relative login URL", m, db, &auth.Options{Key: testKey, LoginURL: "//evil.example/login"}, "LoginURL"},
		{"absolute login URL", m, db, &auth.Options{Key: testKey, LoginURL: "https://id.example/login"}, ""},
		{"negative interval", m, db, &auth.Options{Key: testKey, LastSeenInterval: -1}, "LastSeenInterval"},
		{"IPv4 prefix too long", m, db, &auth.Options{Key: testKey, IPv4PrefixLen: 33}, "IPv4PrefixLen"},
		{"negative IPv6 prefix", m, db, &auth.Options{Key: testKey, IPv6PrefixLen: -1}, "IPv6PrefixLen"},
		{"full addresses", m, db, &auth.Options{Key: testKey, IPv4PrefixLen: 32, IPv6PrefixLen: 128}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.New(tt.m, tt.users, tt.opts)
			if tt.want == "" {
				if err != nil || a == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want ErrInvalidOptions mentioning %q", err, tt.want)
			}
		})
	}
}

func TestNewCopiesKey(t *testing.T) {
	e := newEnv(t, nil)
	key := append([]byte(nil), testKey...)
	a, err := auth.New(e.m, e.db, &auth.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	d := e.device(firefoxUA, "192.0.2.1")
	var loginErr error
	d.serve(e.m.Handler(a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loginErr = a.Login(r, e.db.get("alice"), false)
	}))), httptest.NewRequest("GET", "/", nil))
	key[0] ^= 1 // must not change a's key
	var ok bool
	d.serve(e.m.Handler(a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok, _ = a.User(r)
	}))), httptest.NewRequest("GET", "/", nil))
	if loginErr != nil || !ok {
		t.Fatalf("login %v, logged in %v: New must copy the key", loginErr, ok)
	}
}

func TestLoginLogout(t *testing.T) {
	e := newEnv(t, nil)
	d := e.device(firefoxUA, "192.0.2.1")
	if got := d.who(); got != "" {
		t.Fatalf("before login: user %q", got)
	}
	// An anonymous session with data, as a cart before login.
	d.do(func(w http.ResponseWriter, r *http.Request) { _ = e.m.FromContext(r.Context()).Set("cart", 3) })
	before := d.cookie.Value
	var sameRequest string
	w := d.do(func(w http.ResponseWriter, r *http.Request) {
		if err := e.a.Login(r, e.db.get("alice"), false); err != nil {
			t.Errorf("Login: %v", err)
		}
		u, _, _ := e.a.User(r)
		sameRequest = u.Name
	})
	if w.Code != 200 || d.cookie == nil || d.cookie.Value == before {
		t.Fatalf("login: status %d, cookie %v: want a renewed session", w.Code, d.cookie)
	}
	if sameRequest != "Alice" {
		t.Errorf("User in the login request: %q, want Alice", sameRequest)
	}
	if got := d.who(); got != "alice" {
		t.Fatalf("after login: %q", got)
	}
	var cart int
	d.do(func(w http.ResponseWriter, r *http.Request) {
		cart = sessions.Value[int](e.m.FromContext(r.Context()), "cart")
	})
	if cart != 3 {
		t.Errorf("login of an anonymous session lost its data: cart %d", cart)
	}
	old := d.cookie
	var after bool
	d.do(func(w http.ResponseWriter, r *http.Request) {
		if err := e.a.Logout(r); err != nil {
			t.Errorf("Logout: %v", err)
		}
		_, after, _ = e.a.User(r)
	})
	if d.cookie != nil || after {
		t.Fatalf("after logout: cookie %v, user in the same request %v", d.cookie, after)
	}
	d.cookie = old // the old cookie is dead too
	if got := d.who(); got != "" {
		t.Fatalf("old cookie after logout: user %q", got)
	}
}

func TestLoginAsAnotherUserClearsData(t *testing.T) {
	e := newEnv(t, nil)
	d := e.device(firefoxUA, "192.0.2.1")
	d.login("alice", false)
	d.do(func(w http.ResponseWriter, r *http.Request) {
		_ = e.m.FromContext(r.Context()).Set("secret", "alice's")
	})
	d.login("alice", false) // the same user again: data kept
	keys := func() []string {
		var k []string
		d.do(func(w http.ResponseWriter, r *http.Request) { k, _ = e.m.FromContext(r.Context()).Keys() })
		return k
	}
	if k := keys(); !strings.Contains(strings.Join(k, ","), "secret") {
		t.Fatalf("re-login of the same user lost data: keys %v", k)
	}
	d.login("bob", false)
	if k := keys(); strings.Contains(strings.Join(k, ","), "secret") {
		t.Fatalf("login as another user kept the previous user's data: keys %v", k)
	}
	if got := d.who(); got != "bob" {
		t.Fatalf("user %q, want bob", got)
	}
}

func TestLoginErrors(t *testing.T) {
	e := newEnv(t, nil)
	d := e.device(firefoxUA, "192.0.2.1")
	var err error
	d.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.Login(r, user{Name: "nobody"}, false) })
	if !errors.Is(err, auth.ErrNoUserID) {
		t.Errorf("Login with an empty ID: %v, want ErrNoUserID", err)
	}
	// Without the sessions middleware.
	r := httptest.NewRequest("GET", "/", nil)
	if err := e.a.Login(r, e.db.get("alice"), false); !errors.Is(err, sessions.ErrNoSession) {
		t.Errorf("Login without the sessions middleware: %v, want ErrNoSession", err)
	}
	if _, _, err := e.a.User(r); !errors.Is(err, sessions.ErrNoSession) {
		t.Errorf("User without the sessions middleware: %v, want ErrNoSession", err)
	}
	if err := e.a.Logout(r); !errors.Is(err, sessions.ErrNoSession) {
		t.Errorf("Logout without the sessions middleware: %v, want ErrNoSession", err)
	}
	if err := e.a.UpdateSessionAuthHash(r, e.db.get("alice")); !errors.Is(err, sessions.ErrNoSession) {
		t.Errorf("UpdateSessionAuthHash without the sessions middleware: %v, want ErrNoSession", err)
	}
	// A store failure at login.
	d.login("alice", false)
	e.hs.setFail(errBoom)
	d.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.Login(r, e.db.get("alice"), false) })
	if !errors.Is(err, sessions.ErrStore) {
		t.Errorf("Login with the store down: %v, want ErrStore", err)
	}
}

func TestRemember(t *testing.T) {
	e := newEnv(t, &envOptions{sessions: sessions.Options{BrowserSessionCookie: true}})
	d := e.device(firefoxUA, "192.0.2.1")
	d.login("alice", false)
	if d.cookie.MaxAge != 0 {
		t.Errorf("login without remember: Max-Age %d, want a browser-session cookie", d.cookie.MaxAge)
	}
	d.login("alice", true)
	if d.cookie.MaxAge < int((29 * 24 * time.Hour).Seconds()) {
		t.Errorf("login with remember: Max-Age %d, want about 30 days", d.cookie.MaxAge)
	}
	d.login("alice", false)
	if d.cookie.MaxAge != 0 {
		t.Errorf("login again without remember: Max-Age %d, want a browser-session cookie", d.cookie.MaxAge)
	}
}

func TestUserLoadedOncePerRequest(t *testing.T) {
	e := newEnv(t, nil)
	d := e.device(firefoxUA, "192.0.2.1")
	d.login("alice", false)
	d.who() // the first request after login writes the device record
	tests := []struct {
		name      string
		h         http.Handler
		calls     int
		wantLoads int64
	}{
		{"middleware, three calls", e.a.Middleware(nil), 3, 1},
		{"middleware, no call", e.a.Middleware(nil), 0, 0},
		{"RequireUser, two calls", e.a.RequireUser(nil), 2, 1},
		{"no middleware, two calls", nil, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for range tt.calls {
					if u, ok, err := e.a.User(r); err != nil || !ok || u.ID != "alice" {
						t.Errorf("User: %v %v %v", u, ok, err)
					}
				}
			})
			var h http.Handler = fn
			switch tt.name {
			case "middleware, three calls", "middleware, no call":
				h = e.a.Middleware(fn)
			case "RequireUser, two calls":
				h = e.a.RequireUser(fn)
			}
			e.db.loads.Store(0)
			d.serve(e.m.Handler(h), httptest.NewRequest("GET", "/", nil))
			if got := e.db.loads.Load(); got != tt.wantLoads {
				t.Errorf("%d user loads, want %d", got, tt.wantLoads)
			}
		})
	}
}

func TestRequireUser(t *testing.T) {
	serveFrom := func(e *env, d *device, accept, mode string) *httptest.ResponseRecorder {
		h := e.m.Handler(e.a.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _, _ := e.a.User(r)
			w.Write([]byte("hello " + u.Name))
		})))
		r := httptest.NewRequest("GET", "/private?tab=2", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if mode != "" {
			r.Header.Set("Sec-Fetch-Mode", mode)
		}
		return d.serve(h, r)
	}
	tests := []struct {
		name         string
		opts         auth.Options
		login        bool
		accept, mode string
		wantCode     int
		wantLocation string
		wantBody     string
	}{
		{"logged in", auth.Options{}, true, "text/html", "", 200, "", "hello Alice"},
		{"browser", auth.Options{}, false, "text/html,application/xhtml+xml", "", 303, "/login?next=%2Fprivate%3Ftab%3D2", ""},
		{"navigation", auth.Options{}, false, "*/*", "navigate", 303, "/login?next=%2Fprivate%3Ftab%3D2", ""},
		{"API", auth.Options{}, false, "application/json", "cors", 401, "", "Unauthorized"},
		{"no Accept", auth.Options{}, false, "", "", 401, "", "Unauthorized"},
		{"custom login URL", auth.Options{LoginURL: "https://id.example/signin?app=1", NextParam: "return"}, false, "text/html", "", 303,
			"https://id.example/signin?app=1&return=%2Fprivate%3Ftab%3D2", ""},
		{"custom IsBrowser", auth.Options{IsBrowser: func(*http.Request) bool { return false }}, false, "text/html", "", 401, "", "Unauthorized"},
		{"custom Unauthorized", auth.Options{Unauthorized: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.WriteHeader(401)
			w.Write([]byte("log in first"))
		})}, false, "application/json", "", 401, "", "log in first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, &envOptions{auth: tt.opts})
			d := e.device(firefoxUA, "192.0.2.1")
			if tt.login {
				d.login("alice", false)
			}
			w := serveFrom(e, d, tt.accept, tt.mode)
			if w.Code != tt.wantCode || w.Header().Get("Location") != tt.wantLocation || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Fatalf("got %d, Location %q, body %q; want %d, %q, %q", w.Code, w.Header().Get("Location"), w.Body, tt.wantCode, tt.wantLocation, tt.wantBody)
			}
			if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

func TestRequireUserErrors(t *testing.T) {
	for _, custom := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "ErrorHandler"}[custom], func(t *testing.T) {
			var got error
			o := &envOptions{}
			if custom {
				o.auth.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
					got = err
					http.Error(w, "try later", http.StatusServiceUnavailable)
				}
			}
			e := newEnv(t, o)
			d := e.device(firefoxUA, "192.0.2.1")
			d.login("alice", false)
			e.db.err = errBoom
			w := d.serve(e.m.Handler(e.a.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Error("handler ran although the user could not be loaded")
			}))), httptest.NewRequest("GET", "/", nil))
			want := map[bool]int{false: 500, true: 503}[custom]
			if w.Code != want {
				t.Fatalf("status %d, want %d", w.Code, want)
			}
			if custom && !errors.Is(got, errBoom) {
				t.Errorf("ErrorHandler got %v, want the LoadUser error", got)
			}
			e.db.err = nil
			if d.who() != "alice" {
				t.Error("a failed user load logged the user out")
			}
		})
	}
}

func TestUserEndsInvalidSessions(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *env)
	}{
		{"password changed elsewhere", func(e *env) { e.db.setPassword("alice", "hash-a2") }},
		{"user deleted", func(e *env) { e.db.remove("alice") }},
		{"key changed", func(e *env) {
			a, err := auth.New(e.m, e.db, &auth.Options{Key: []byte(strings.Repeat("x", 32))})
			if err != nil {
				e.t.Fatal(err)
			}
			e.a = a
		}},
		{"no auth hash (owner set by the application)", func(e *env) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			d := e.device(firefoxUA, "192.0.2.1")
			if strings.HasPrefix(tt.name, "no auth hash") {
				d.do(func(w http.ResponseWriter, r *http.Request) {
					_ = e.m.FromContext(r.Context()).RenewAfterLogin("alice")
				})
			} else {
				d.login("alice", false)
			}
			tt.change(e)
			if got := d.who(); got != "" {
				t.Fatalf("user %q, want none", got)
			}
			if d.cookie != nil {
				t.Errorf("the session was not ended: cookie %v", d.cookie)
			}
		})
	}
}

func TestUserStoreFailure(t *testing.T) {
	e := newEnv(t, nil)
	d := e.device(firefoxUA, "192.0.2.1")
	d.login("alice", false)
	e.hs.setFail(errBoom)
	var err error
	w := d.do(func(w http.ResponseWriter, r *http.Request) { _, _, err = e.a.User(r) })
	if !errors.Is(err, sessions.ErrStore) || w.Code != 500 {
		t.Fatalf("User with the store down: %v, status %d; want ErrStore and 500", err, w.Code)
	}
}

func TestUpdateSessionAuthHash(t *testing.T) {
	for _, index := range []bool{true, false} {
		t.Run(map[bool]string{true: "owner index", false: "no owner index"}[index], func(t *testing.T) {
			e := newEnv(t, &envOptions{noOwnerIndex: !index})
			a, b := e.device(firefoxUA, "192.0.2.1"), e.device(chromeUA, "198.51.100.7")
			a.login("alice", false)
			b.login("alice", false)
			bob := e.device(chromeUA, "198.51.100.8")
			bob.login("bob", false)
			before := a.cookie.Value
			var err error
			a.do(func(w http.ResponseWriter, r *http.Request) {
				err = e.a.UpdateSessionAuthHash(r, e.db.setPassword("alice", "hash-a2"))
			})
			if err != nil {
				t.Fatalf("UpdateSessionAuthHash: %v", err)
			}
			if a.cookie == nil || a.cookie.Value == before {
				t.Errorf("the current session was not renewed")
			}
			if got := a.who(); got != "alice" {
				t.Errorf("the device that changed the password: user %q, want alice", got)
			}
			if got := b.who(); got != "" {
				t.Errorf("the other device: user %q, want logged out", got)
			}
			if got := bob.who(); got != "bob" {
				t.Errorf("another user: %q, want bob", got)
			}
		})
	}
}

func TestUpdateSessionAuthHashErrors(t *testing.T) {
	e := newEnv(t, nil)
	d := e.device(firefoxUA, "192.0.2.1")
	var err error
	d.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.UpdateSessionAuthHash(r, e.db.get("alice")) })
	if !errors.Is(err, auth.ErrNotLoggedIn) {
		t.Errorf("without a login: %v, want ErrNotLoggedIn", err)
	}
	d.login("bob", false)
	d.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.UpdateSessionAuthHash(r, e.db.get("alice")) })
	if !errors.Is(err, auth.ErrNotLoggedIn) {
		t.Errorf("for another user: %v, want ErrNotLoggedIn", err)
	}
	e.hs.setFail(errBoom)
	d.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.UpdateSessionAuthHash(r, e.db.get("bob")) })
	if !errors.Is(err, sessions.ErrStore) {
		t.Errorf("store down: %v, want ErrStore", err)
	}
}

// A failure to end the other sessions at once is logged, not returned:
// their hash ends them anyway.
func TestUpdateSessionAuthHashListFails(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.device(firefoxUA, "192.0.2.1"), e.device(chromeUA, "198.51.100.7")
	a.login("alice", false)
	b.login("alice", false)
	var err error
	a.do(func(w http.ResponseWriter, r *http.Request) {
		e.hs.setHook(func(op, id string) error {
			if op == "listowner" {
				return errBoom
			}
			return nil
		})
		defer e.hs.setHook(nil)
		err = e.a.UpdateSessionAuthHash(r, e.db.setPassword("alice", "hash-a2"))
	})
	if err != nil {
		t.Fatalf("UpdateSessionAuthHash: %v", err)
	}
	if !strings.Contains(e.logs.String(), "other sessions not ended at once") {
		t.Errorf("no warning logged:\n%s", e.logs)
	}
	if a.who() != "alice" || b.who() != "" {
		t.Errorf("after the change: a %q, b %q; want alice and none", a.who(), b.who())
	}
}

func TestLogoutEverywhereAndOthers(t *testing.T) {
	e := newEnv(t, nil)
	a, b, c := e.device(firefoxUA, "192.0.2.1"), e.device(chromeUA, "198.51.100.7"), e.device(chromeUA, "198.51.100.9")
	a.login("alice", false)
	b.login("alice", false)
	c.login("alice", false)
	bob := e.device(chromeUA, "203.0.113.5")
	bob.login("bob", false)
	var (
		n   int
		err error
	)
	a.do(func(w http.ResponseWriter, r *http.Request) { n, err = e.a.LogoutOthers(r) })
	if err != nil || n != 2 {
		t.Fatalf("LogoutOthers: %d, %v; want 2", n, err)
	}
	if a.who() != "alice" || b.who() != "" || c.who() != "" || bob.who() != "bob" {
		t.Fatalf("after LogoutOthers: a %q b %q c %q bob %q", a.who(), b.who(), c.who(), bob.who())
	}
	b.login("alice", false)
	a.do(func(w http.ResponseWriter, r *http.Request) { n, err = e.a.LogoutEverywhere(r) })
	if err != nil || n != 2 {
		t.Fatalf("LogoutEverywhere: %d, %v; want 2", n, err)
	}
	if a.cookie != nil {
		t.Errorf("LogoutEverywhere kept the current cookie")
	}
	if a.who() != "" || b.who() != "" || bob.who() != "bob" {
		t.Fatalf("after LogoutEverywhere: a %q b %q bob %q", a.who(), b.who(), bob.who())
	}
}

// userSessionCalls returns the operations on the current user's sessions,
// by name, each returning its error.
func (e *env) userSessionCalls() map[string]func(r *http.Request) error {
	return map[string]func(r *http.Request) error{
		"LogoutEverywhere": func(r *http.Request) error { _, err := e.a.LogoutEverywhere(r); return err },
		"LogoutOthers":     func(r *http.Request) error { _, err := e.a.LogoutOthers(r); return err },
		"Devices":          func(r *http.Request) error { _, err := e.a.Devices(r); return err },
		"RevokeDevice":     func(r *http.Request) error { return e.a.RevokeDevice(r, "x") },
	}
}

func TestNotLoggedIn(t *testing.T) {
	e := newEnv(t, nil)
	d := e.device(firefoxUA, "192.0.2.1")
	for name, call := range e.userSessionCalls() {
		t.Run(name, func(t *testing.T) {
			var err error
			d.do(func(w http.ResponseWriter, r *http.Request) { err = call(r) })
			if !errors.Is(err, auth.ErrNotLoggedIn) {
				t.Fatalf("%v, want ErrNotLoggedIn", err)
			}
			e.db.err = errBoom
			defer func() { e.db.err = nil }()
			d.login("alice", false)
			d.do(func(w http.ResponseWriter, r *http.Request) { err = call(r) })
			if !errors.Is(err, errBoom) {
				t.Fatalf("with LoadUser failing: %v, want its error", err)
			}
			d.cookie = nil
		})
	}
}

func TestNotSupported(t *testing.T) {
	e := newEnv(t, &envOptions{noOwnerIndex: true})
	d := e.device(firefoxUA, "192.0.2.1")
	d.login("alice", false)
	for name, call := range e.userSessionCalls() {
		t.Run(name, func(t *testing.T) {
			var err error
			d.do(func(w http.ResponseWriter, r *http.Request) { err = call(r) })
			if !errors.Is(err, sessions.ErrNotSupported) || !strings.Contains(err.Error(), "owner index") {
				t.Fatalf("%v, want ErrNotSupported explaining the owner index", err)
			}
		})
	}
	if d.who() != "alice" {
		t.Error("a refused operation logged the user out")
	}
}

func TestOwnerIndexFailures(t *testing.T) {
	e := newEnv(t, nil)
	d := e.device(firefoxUA, "192.0.2.1")
	d.login("alice", false)
	d.who()
	for name, call := range e.userSessionCalls() {
		t.Run(name, func(t *testing.T) {
			var err error
			d.do(func(w http.ResponseWriter, r *http.Request) {
				e.a.User(r) // load before the store fails
				e.hs.setFail(errBoom)
				defer e.hs.setFail(nil)
				err = call(r)
			})
			if !errors.Is(err, sessions.ErrStore) {
				t.Fatalf("%v, want ErrStore", err)
			}
		})
	}
}

func TestDevices(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.device(firefoxUA, "192.0.2.77"), e.device(chromeUA, "[2001:db8:1234:5678::9]")
	a.login("alice", false)
	b.login("alice", true)
	fresh := e.device(chromeUA, "198.51.100.1")
	fresh.login("alice", false) // no request since: metadata unknown
	a.who()
	b.who()
	var (
		devs []auth.Device
		err  error
	)
	a.do(func(w http.ResponseWriter, r *http.Request) { devs, err = e.a.Devices(r) })
	if err != nil || len(devs) != 3 {
		t.Fatalf("Devices: %v, %v; want 3", devs, err)
	}
	cur, other, unknown := devs[0], devs[1], devs[2]
	if !other.Known {
		other, unknown = unknown, other
	}
	if !cur.Current || cur.Client != "Firefox 133 on Linux" || cur.Network != "192.0.2.0/24" || !cur.Known || cur.Created.IsZero() {
		t.Errorf("current device: %+v", cur)
	}
	if other.Current || other.Client != "Chrome 131 on Windows" || other.Network != "2001:db8:1234::/48" || !other.Known {
		t.Errorf("other device: %+v", other)
	}
	if unknown.Current || unknown.Known || unknown.Handle == "" {
		t.Errorf("device without a request since login: %+v", unknown)
	}
	for _, d := range devs {
		if strings.Contains(a.cookie.Value, d.Handle) || len(d.Handle) != 24 {
			t.Errorf("handle %q", d.Handle)
		}
	}
	// Revoke the other device; it is logged out, the current one stays.
	a.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.RevokeDevice(r, other.Handle) })
	if err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	if b.who() != "" || a.who() != "alice" {
		t.Fatalf("after revoking b: a %q, b %q", a.who(), b.who())
	}
	a.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.RevokeDevice(r, other.Handle) })
	if !errors.Is(err, auth.ErrUnknownDevice) {
		t.Errorf("revoking it again: %v, want ErrUnknownDevice", err)
	}
	// Another user's handle is unknown to alice.
	bob := e.device(chromeUA, "203.0.113.5")
	bob.login("bob", false)
	var bobDevs []auth.Device
	bob.do(func(w http.ResponseWriter, r *http.Request) { bobDevs, _ = e.a.Devices(r) })
	a.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.RevokeDevice(r, bobDevs[0].Handle) })
	if !errors.Is(err, auth.ErrUnknownDevice) || bob.who() != "bob" {
		t.Errorf("revoking another user's device: %v, bob %q", err, bob.who())
	}
	// Revoking the current device logs out.
	a.do(func(w http.ResponseWriter, r *http.Request) { err = e.a.RevokeDevice(r, cur.Handle) })
	if err != nil || a.cookie != nil {
		t.Errorf("revoking the current device: %v, cookie %v", err, a.cookie)
	}
}

func TestDevicesWithoutDeviceStore(t *testing.T) {
	e := newEnv(t, nil)
	a2, err := auth.New(e.m, e.db, &auth.Options{Key: testKey}) // no DeviceStore
	if err != nil {
		t.Fatal(err)
	}
	e.a = a2
	a, b := e.device(firefoxUA, "192.0.2.77"), e.device(chromeUA, "198.51.100.7")
	a.login("alice", false)
	b.login("alice", false)
	b.who()
	var devs []auth.Device
	a.do(func(w http.ResponseWriter, r *http.Request) { devs, err = e.a.Devices(r) })
	if err != nil || len(devs) != 2 || !devs[0].Current || !devs[0].Known || devs[1].Known {
		t.Fatalf("Devices: %+v, %v; want the current one known, the other not", devs, err)
	}
}

// A device store that fails costs the device metadata, never a login.
func TestDeviceStoreFailureIsLogged(t *testing.T) {
	mem, _ := memstore.New(nil)
	failing := &hookStore{Store: mem, fail: errBoom}
	e := newEnv(t, &envOptions{auth: auth.Options{DeviceStore: failing}})
	a, b := e.device(firefoxUA, "192.0.2.77"), e.device(chromeUA, "198.51.100.7")
	a.login("alice", false)
	b.login("alice", false)
	if a.who() != "alice" || b.who() != "alice" {
		t.Fatal("not logged in")
	}
	if !strings.Contains(e.logs.String(), "device record not updated") {
		t.Errorf("no warning logged:\n%s", e.logs)
	}
	var (
		devs []auth.Device
		err  error
	)
	a.do(func(w http.ResponseWriter, r *http.Request) { devs, err = e.a.Devices(r) })
	if err != nil || len(devs) != 2 || !devs[0].Known || devs[1].Known {
		t.Fatalf("Devices: %+v, %v; want the current one known, the other not", devs, err)
	}
}

// "Last seen" costs at most one session write (and one device-record
// write) per LastSeenInterval, never one per request.
func TestLastSeenIsCoarse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, &envOptions{auth: auth.Options{LastSeenInterval: time.Minute}})
		d := e.device(firefoxUA, "192.0.2.1")
		d.login("alice", false)
		d.who() // first request after login: lists the session
		seen := func() time.Time {
			var devs []auth.Device
			d.do(func(w http.ResponseWriter, r *http.Request) { devs, _ = e.a.Devices(r) })
			return devs[0].LastSeen
		}
		first := seen()
		e.hs.updates.Store(0)
		for range 10 {
			time.Sleep(5 * time.Second)
			if d.who() != "alice" {
				t.Fatal("logged out")
			}
		}
		if n := e.hs.updates.Load(); n != 0 {
			t.Errorf("%d store updates within the interval, want 0", n)
		}
		time.Sleep(15 * time.Second) // 65 s since the last update
		d.who()
		if n := e.hs.updates.Load(); n != 2 {
			t.Errorf("%d store updates after the interval, want 2 (session and device record)", n)
		}
		if got := seen(); got.Sub(first) != 65*time.Second {
			t.Errorf("last seen moved by %v, want 65s", got.Sub(first))
		}
	})
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ next, want string }{
		{"/devices", "/devices"},
		{"/a?b=c#d", "/a?b=c#d"},
		{"", "/"},
		{"devices", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"https://evil.example/", "/"},
		{"/\r\nLocation: x", "/"},
		{"javascript:alert(1)", "/"},
	}
	for _, tt := range tests {
		if got := auth.SafeNext(tt.next, "/"); got != tt.want {
			t.Errorf("SafeNext(%q) = %q, want %q", tt.next, got, tt.want)
		}
	}
}

func TestShortUserAgent(t *testing.T) {
	tests := []struct{ ua, want string }{
		{firefoxUA, "Firefox 133 on Linux"},
		{chromeUA, "Chrome 131 on Windows"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", "Headless Chrome 156 on Linux"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari 17 on macOS"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari 17 on iOS"},
		{"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0 Edg/131.0.0.0", "Edge 131 on Android"},
		{"curl/8.5.0", "curl/8.5.0"},
		{"", "unknown client"},
		{"\x01\x7fbot/1", "bot/1"},
		{strings.Repeat("x", 200), strings.Repeat("x", 64)},
	}
	for _, tt := range tests {
		if got := auth.ShortUserAgent(tt.ua); got != tt.want {
			t.Errorf("ShortUserAgent(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestNetworkPrefix(t *testing.T) {
	tests := []struct {
		name string
		opts auth.Options
		ip   string
		want string
	}{
		{"IPv4", auth.Options{}, "203.0.113.77", "203.0.113.0/24"},
		{"IPv6", auth.Options{}, "2001:db8:aaaa:bbbb::1", "2001:db8:aaaa::/48"},
		{"IPv4-mapped", auth.Options{}, "::ffff:203.0.113.77", "203.0.113.0/24"},
		{"custom lengths", auth.Options{IPv4PrefixLen: 16, IPv6PrefixLen: 64}, "203.0.113.77", "203.0.0.0/16"},
		{"full address when asked", auth.Options{IPv4PrefixLen: 32}, "203.0.113.77", "203.0.113.77/32"},
		{"ClientIP", auth.Options{ClientIP: func(*http.Request) string { return "198.51.100.200" }}, "203.0.113.77", "198.51.100.0/24"},
		{"ClientIP empty", auth.Options{ClientIP: func(*http.Request) string { return "" }}, "203.0.113.77", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, &envOptions{auth: tt.opts})
			d := e.device(firefoxUA, tt.ip)
			if strings.Contains(tt.ip, ":") {
				d.ip = "[" + tt.ip + "]"
			}
			d.login("alice", false)
			var devs []auth.Device
			d.do(func(w http.ResponseWriter, r *http.Request) { devs, _ = e.a.Devices(r) })
			if len(devs) != 1 || devs[0].Network != tt.want {
				t.Fatalf("devices %+v, want network %q", devs, tt.want)
			}
		})
	}
}
