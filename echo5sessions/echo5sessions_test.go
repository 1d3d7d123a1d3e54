package echo5sessions_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/echo5sessions"
	"github.com/sessionkit/sessions/memstore"
)

// app is an echo server with one Manager over a memstore.
type app struct {
	t     *testing.T
	e     *echo.Echo
	m     *sessions.Manager
	store *memstore.Store
}

// newApp returns an echo instance without the session middleware
// installed; the tests choose where it goes. Routes /get and /seed read and
// write the value "k" under the middleware at the top level.
func newApp(t *testing.T, opts *sessions.Options) *app {
	t.Helper()
	store, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return newAppWith(t, store, store, opts)
}

func newAppWith(t *testing.T, store sessions.Store, mem *memstore.Store, opts *sessions.Options) *app {
	t.Helper()
	var o sessions.Options
	if opts != nil {
		o = *opts
	}
	o.Logger = slog.New(slog.DiscardHandler)
	m, err := sessions.New(store, &o)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.Logger = slog.New(slog.DiscardHandler)
	return &app{t: t, e: e, m: m, store: mem}
}

// do serves one request through echo's own entry point; header holds
// extra request header lines, as name and value.
func (a *app) do(method, path string, cookie *http.Cookie, header ...string) *httptest.ResponseRecorder {
	a.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	a.e.ServeHTTP(w, req)
	return w
}

// value reads "k" back through a second request on a route that the
// session middleware covers.
func (a *app) value(path string, cookie *http.Cookie) string {
	a.t.Helper()
	w := a.do(http.MethodGet, path, cookie)
	if w.Code != http.StatusOK {
		a.t.Fatalf("GET %s: status %d, body %q", path, w.Code, w.Body)
	}
	return w.Body.String()
}

// getValue is the handler that answers the session's "k", or "<none>".
func getValue(c *echo.Context) error {
	v, ok, err := sessions.Get[string](echo5sessions.Session(c), "k")
	if err != nil {
		return err
	}
	if !ok {
		v = "<none>"
	}
	return c.String(http.StatusOK, v)
}

// setter returns a handler that sets "k" to v, then answers with then.
func setter(v string, then echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if err := echo5sessions.Session(c).Set("k", v); err != nil {
			return fmt.Errorf("set: %w", err)
		}
		return then(c)
	}
}

// flush flushes the response, as a streaming handler does.
func flush(c *echo.Context) {
	if err := http.NewResponseController(c.Response()).Flush(); err != nil {
		panic(err)
	}
}

func cookieOf(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// sessionCookie returns the session cookie that w sets, failing the test
// if there is none.
func (a *app) sessionCookie(w *httptest.ResponseRecorder) *http.Cookie {
	a.t.Helper()
	c := cookieOf(w, a.m.CookieName())
	if c == nil || c.Value == "" {
		a.t.Fatalf("no session cookie on a %d; Set-Cookie: %q", w.Code, w.Header().Values("Set-Cookie"))
	}
	return c
}

// holds checks that a request to path with cookie c reads want.
func (a *app) holds(path string, c *http.Cookie, want string) {
	a.t.Helper()
	if got := a.value(path, c); got != want {
		a.t.Errorf("the session holds %q, want %q", got, want)
	}
}

// answered fails the test unless w has status and body.
func answered(t *testing.T, w *httptest.ResponseRecorder, status int, body string) {
	t.Helper()
	if w.Code != status || w.Body.String() != body {
		t.Fatalf("got %d %q, want %d %q", w.Code, w.Body, status, body)
	}
}

// noCookie fails the test if w sets a cookie.
func noCookie(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if sc := w.Header().Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("Set-Cookie on a %d: %q", w.Code, sc)
	}
}

// TestNewSessionGetsCookie: whatever echo writes the response with, a new
// session's cookie goes out with it and the value is stored.
func TestNewSessionGetsCookie(t *testing.T) {
	cases := []struct {
		name   string
		then   echo.HandlerFunc
		status int
		body   string
	}{
		{"String", func(c *echo.Context) error { return c.String(http.StatusOK, "hi") }, 200, "hi"},
		{"JSON", func(c *echo.Context) error { return c.JSON(http.StatusCreated, map[string]int{"n": 1}) }, 201, "{\"n\":1}\n"},
		{"NoContent", func(c *echo.Context) error { return c.NoContent(http.StatusNoContent) }, 204, ""},
		{"Stream", func(c *echo.Context) error {
			return c.Stream(http.StatusOK, "text/plain", strings.NewReader("streamed"))
		}, 200, "streamed"},
		{"Redirect", func(c *echo.Context) error { return c.Redirect(http.StatusSeeOther, "/get") }, 303, ""},
		{"ResponseWrite", func(c *echo.Context) error {
			_, err := c.Response().Write([]byte("raw"))
			return err
		}, 200, "raw"},
		{"WritesNothing", func(c *echo.Context) error { return nil }, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, nil)
			a.e.Use(echo5sessions.Middleware(a.m))
			a.e.GET("/get", getValue)
			a.e.GET("/set", setter("v-"+tc.name, tc.then))

			w := a.do(http.MethodGet, "/set", nil)
			answered(t, w, tc.status, tc.body)
			c := a.sessionCookie(w)
			if !c.HttpOnly || !c.Secure || c.MaxAge <= 0 {
				t.Errorf("cookie attributes: %+v", c)
			}
			if n := a.store.Len(); n != 1 {
				t.Errorf("store holds %d records, want 1", n)
			}
			a.holds("/get", c, "v-"+tc.name)
		})
	}
}

// errorCases are the ways a handler ends in a 500.
var errorCases = []struct {
	name string
	then echo.HandlerFunc
	body string // echo's rendering; "" = not checked
}{
	{"NewHTTPError500", func(c *echo.Context) error { return echo.NewHTTPError(http.StatusInternalServerError, "") }, "{\"message\":\"Internal Server Error\"}\n"},
	{"NewHTTPError500Message", func(c *echo.Context) error {
		return echo.NewHTTPError(http.StatusInternalServerError, "database down")
	}, "{\"message\":\"database down\"}\n"},
	{"PlainError", func(c *echo.Context) error { return errors.New("boom") }, "{\"message\":\"Internal Server Error\"}\n"},
	{"ErrInternalServerError", func(c *echo.Context) error { return echo.ErrInternalServerError }, "{\"message\":\"Internal Server Error\"}\n"},
	{"WrappedHTTPError", func(c *echo.Context) error {
		return fmt.Errorf("loading: %w", echo.NewHTTPError(http.StatusServiceUnavailable, "upstream"))
	}, "{\"message\":\"upstream\"}\n"},
	{"Panic", func(c *echo.Context) error { panic("handler bug") }, "{\"message\":\"Internal Server Error\"}\n"},
	{"PanicError", func(c *echo.Context) error { panic(errors.New("handler bug")) }, "{\"message\":\"Internal Server Error\"}\n"},
	{"String500", func(c *echo.Context) error { return c.String(http.StatusInternalServerError, "oops") }, "oops"},
	{"JSONUnencodable", func(c *echo.Context) error { return c.JSON(http.StatusOK, map[string]any{"ch": make(chan int)}) }, "{\"message\":\"Internal Server Error\"}\n"},
}

// TestServerErrorSavesNothing: a returned error, a panic under Recover or
// a 5xx written directly saves nothing and sends no cookie, for a new and
// for an existing session, with Recover outside or inside the middleware.
func TestServerErrorSavesNothing(t *testing.T) {
	orders := []struct {
		name string
		use  func(a *app)
	}{
		{"RecoverOutside", func(a *app) { a.e.Use(middleware.Recover(), echo5sessions.Middleware(a.m)) }},
		{"RecoverInside", func(a *app) { a.e.Use(echo5sessions.Middleware(a.m), middleware.Recover()) }},
	}
	for _, order := range orders {
		for _, tc := range errorCases {
			t.Run(order.name+"/"+tc.name, func(t *testing.T) {
				a := newApp(t, nil)
				order.use(a)
				a.e.GET("/get", getValue)
				a.e.GET("/seed", setter("old", func(c *echo.Context) error { return c.NoContent(http.StatusNoContent) }))
				a.e.GET("/fail", setter("new", tc.then))
				a.e.HEAD("/fail", setter("new", tc.then))

				// A new session: nothing stored, no cookie.
				w := a.do(http.MethodGet, "/fail", nil)
				wantStatus := http.StatusInternalServerError
				if tc.name == "WrappedHTTPError" {
					wantStatus = http.StatusServiceUnavailable
				}
				if w.Code != wantStatus {
					t.Fatalf("status %d, want %d", w.Code, wantStatus)
				}
				if tc.body != "" && w.Body.String() != tc.body {
					t.Errorf("body %q, want echo's %q", w.Body, tc.body)
				}
				noCookie(t, w)
				if n := a.store.Len(); n != 0 {
					t.Errorf("store holds %d records after a %d", n, w.Code)
				}

				// An existing session: the change is not saved.
				c := a.sessionCookie(a.do(http.MethodGet, "/seed", nil))
				for _, method := range []string{http.MethodGet, http.MethodHead} {
					w = a.do(method, "/fail", c)
					if w.Code != wantStatus {
						t.Fatalf("%s: status %d, want %d", method, w.Code, wantStatus)
					}
					noCookie(t, w)
				}
				a.holds("/get", c, "old")
			})
		}
	}
}

// TestClientErrorSaves: a returned 4xx HTTPError is rendered by echo, once,
// and saves (the default ShouldSave saves below 500); a ShouldSave that
// saves only 2xx sees the 4xx and saves nothing.
func TestClientErrorSaves(t *testing.T) {
	only2xx := func(status int) bool { return status < 300 }
	cases := []struct {
		name   string
		err    error
		opts   *sessions.Options
		status int
		body   string
		saves  bool
	}{
		{"400", echo.NewHTTPError(http.StatusBadRequest, "bad form"), nil, 400, "{\"message\":\"bad form\"}\n", true},
		{"404", echo.ErrNotFound, nil, 404, "{\"message\":\"Not Found\"}\n", true},
		{"409", echo.NewHTTPError(http.StatusConflict, ""), nil, 409, "{\"message\":\"Conflict\"}\n", true},
		{"400Only2xx", echo.NewHTTPError(http.StatusBadRequest, "bad form"), &sessions.Options{ShouldSave: only2xx}, 400, "{\"message\":\"bad form\"}\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, tc.opts)
			a.e.Use(echo5sessions.Middleware(a.m))
			a.e.GET("/get", getValue)
			a.e.GET("/set", setter("flash", func(*echo.Context) error { return tc.err }))

			w := a.do(http.MethodGet, "/set", nil)
			answered(t, w, tc.status, tc.body)
			if !tc.saves {
				noCookie(t, w)
				if n := a.store.Len(); n != 0 {
					t.Errorf("saved on %d with ShouldSave false: %d records", w.Code, n)
				}
				return
			}
			a.holds("/get", a.sessionCookie(w), "flash")
		})
	}
}

// TestErrorAfterCommit: an error returned after the response went out is
// neither rendered again nor changes what was saved with it.
func TestErrorAfterCommit(t *testing.T) {
	a := newApp(t, nil)
	a.e.Use(echo5sessions.Middleware(a.m))
	a.e.GET("/get", getValue)
	a.e.GET("/set", setter("kept", func(c *echo.Context) error {
		if err := c.String(http.StatusOK, "partial"); err != nil {
			return err
		}
		return errors.New("failed after writing")
	}))
	w := a.do(http.MethodGet, "/set", nil)
	answered(t, w, 200, "partial")
	a.holds("/get", a.sessionCookie(w), "kept")
}

// TestCustomHTTPErrorHandler: the application's HTTPErrorHandler decides
// the status that the commit sees, and renders once.
func TestCustomHTTPErrorHandler(t *testing.T) {
	errValidation := errors.New("validation failed")
	var calls int
	var mu sync.Mutex
	a := newApp(t, nil)
	a.e.HTTPErrorHandler = func(c *echo.Context, err error) {
		mu.Lock()
		calls++
		mu.Unlock()
		if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
			return
		}
		if errors.Is(err, errValidation) {
			_ = c.String(http.StatusUnprocessableEntity, "invalid")
			return
		}
		_ = c.String(http.StatusInternalServerError, "sorry")
	}
	a.e.Use(echo5sessions.Middleware(a.m))
	a.e.GET("/get", getValue)
	a.e.GET("/invalid", setter("draft", func(*echo.Context) error { return fmt.Errorf("form: %w", errValidation) }))
	a.e.GET("/broken", setter("lost", func(*echo.Context) error { return errors.New("broken") }))

	w := a.do(http.MethodGet, "/invalid", nil)
	answered(t, w, http.StatusUnprocessableEntity, "invalid")
	c := a.sessionCookie(w)
	a.holds("/get", c, "draft")

	w = a.do(http.MethodGet, "/broken", c)
	answered(t, w, http.StatusInternalServerError, "sorry")
	noCookie(t, w)
	a.holds("/get", c, "draft")
	// The middleware rendered each error and returned it; echo called the
	// handler again at the top, where it found the response committed.
	mu.Lock()
	defer mu.Unlock()
	if calls != 4 {
		t.Errorf("HTTPErrorHandler called %d times, want 4 (2 per error)", calls)
	}
}

// TestStreaming: Flush commits the session with the first chunk; a change
// after that returns ErrCommitted and is not saved.
func TestStreaming(t *testing.T) {
	cases := []struct {
		name  string
		start func(c *echo.Context) error // writes (or not) before the flush
	}{
		{"WriteThenFlush", func(c *echo.Context) error {
			c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextPlain)
			c.Response().WriteHeader(http.StatusOK)
			_, err := c.Response().Write([]byte("first\n"))
			return err
		}},
		{"FlushFirst", func(c *echo.Context) error { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, &sessions.Options{InsecureCookie: true})
			a.e.Use(echo5sessions.Middleware(a.m))
			a.e.GET("/get", getValue)
			release := make(chan struct{})
			lateErr := make(chan error, 1)
			a.e.GET("/stream", func(c *echo.Context) error {
				s := echo5sessions.Session(c)
				if err := s.Set("k", "early"); err != nil {
					return err
				}
				if err := tc.start(c); err != nil {
					return err
				}
				flush(c)
				<-release // the client has the headers and the first chunk
				lateErr <- s.Set("k", "late")
				_, err := c.Response().Write([]byte("second\n"))
				return err
			})
			srv := httptest.NewServer(a.e)
			defer srv.Close()

			// The handler is still blocked when the headers arrive: only
			// the flush can have sent them. Without it, the request times
			// out instead of hanging.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				close(release)
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var c *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == a.m.CookieName() {
					c = ck
				}
			}
			br := bufio.NewReader(resp.Body)
			if tc.name == "WriteThenFlush" {
				line, err := br.ReadString('\n')
				if err != nil || line != "first\n" {
					close(release)
					t.Fatalf("first chunk %q, %v", line, err)
				}
			}
			close(release)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "second\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
			if c == nil {
				t.Fatalf("no session cookie in the streamed response's headers: %q", resp.Header.Values("Set-Cookie"))
			}
			if err := <-lateErr; !errors.Is(err, sessions.ErrCommitted) {
				t.Errorf("change after the flush: %v, want ErrCommitted", err)
			}
			a.holds("/get", c, "early")
		})
	}
}

// TestDestroy: a Destroy removes the record and the cookie, whatever the
// status of the response.
func TestDestroy(t *testing.T) {
	cases := []struct {
		name   string
		then   echo.HandlerFunc
		status int
	}{
		{"OK", func(c *echo.Context) error { return c.NoContent(http.StatusNoContent) }, 204},
		{"Returned500", func(c *echo.Context) error { return echo.ErrInternalServerError }, 500},
		{"PlainError", func(c *echo.Context) error { return errors.New("boom") }, 500},
		{"Panic", func(c *echo.Context) error { panic("after logout") }, 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, nil)
			a.e.Use(middleware.Recover(), echo5sessions.Middleware(a.m))
			a.e.GET("/get", getValue)
			a.e.GET("/seed", setter("alice", func(c *echo.Context) error { return c.NoContent(http.StatusNoContent) }))
			a.e.GET("/logout", func(c *echo.Context) error {
				if err := echo5sessions.Session(c).Destroy(); err != nil {
					return err
				}
				return tc.then(c)
			})
			c := a.sessionCookie(a.do(http.MethodGet, "/seed", nil))
			w := a.do(http.MethodGet, "/logout", c)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			rm := cookieOf(w, a.m.CookieName())
			if rm == nil || rm.Value != "" || rm.MaxAge >= 0 {
				t.Fatalf("no removal cookie: %q", w.Header().Values("Set-Cookie"))
			}
			if n := a.store.Len(); n != 0 {
				t.Errorf("store holds %d records after Destroy", n)
			}
			a.holds("/get", c, "<none>")
		})
	}
}

// TestSessionAccess: the session is the same the echo way and through the
// request context, and nil (safely) without the middleware.
func TestSessionAccess(t *testing.T) {
	a := newApp(t, nil)
	g := a.e.Group("/in", echo5sessions.Middleware(a.m))
	g.GET("", func(c *echo.Context) error {
		s := echo5sessions.Session(c)
		if s == nil {
			return errors.New("no session the echo way")
		}
		if s != sessions.FromContext(c.Request().Context()) || s != a.m.FromContext(c.Request().Context()) {
			return errors.New("different sessions")
		}
		// A context derived from the request's (as middleware such as
		// ContextTimeout makes) still carries it.
		ctx, cancel := context.WithTimeout(c.Request().Context(), time.Minute)
		defer cancel()
		if sessions.FromContext(ctx) != s {
			return errors.New("derived context lost the session")
		}
		return c.String(http.StatusOK, "ok")
	})
	a.e.GET("/out", func(c *echo.Context) error {
		s := echo5sessions.Session(c)
		if s != nil {
			return errors.New("session without the middleware")
		}
		if err := s.Set("k", "v"); !errors.Is(err, sessions.ErrNoSession) {
			return fmt.Errorf("nil session Set: %v", err)
		}
		return c.String(http.StatusOK, "ok")
	})
	for _, path := range []string{"/in", "/out"} {
		answered(t, a.do(http.MethodGet, path, nil), 200, "ok")
	}
	if echo5sessions.Session(nil) != nil {
		t.Error("Session(nil) is not nil")
	}
	if echo5sessions.Session(a.e.NewContext(nil, nil)) != nil {
		t.Error("Session of a context without request is not nil")
	}
}

// failingStore fails Create and Update on demand.
type failingStore struct {
	*memstore.Store
	mu   sync.Mutex
	fail bool
}

var errDown = errors.New("store down")

func (s *failingStore) failing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

func (s *failingStore) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if s.failing() {
		return false, errDown
	}
	return s.Store.Create(ctx, id, data, expiry, owner, now)
}

func (s *failingStore) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if s.failing() {
		return false, false, errDown
	}
	return s.Store.Update(ctx, id, version, data, expiry, owner, now)
}

// TestStoreFailure: a save that fails at commit is answered by the
// Manager's ErrorHandler, whatever echo was writing, and middleware
// outside sees that status.
func TestStoreFailure(t *testing.T) {
	cases := []struct {
		name string
		then echo.HandlerFunc
	}{
		{"String", func(c *echo.Context) error { return c.String(http.StatusOK, "saved?") }},
		{"JSON", func(c *echo.Context) error { return c.JSON(http.StatusOK, "saved?") }},
		{"WritesNothing", func(c *echo.Context) error { return nil }},
		{"Returned4xx", func(c *echo.Context) error { return echo.ErrBadRequest }},
		{"Flush", func(c *echo.Context) error { flush(c); return nil }},
	}
	for _, tc := range cases {
		for _, existing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/existing=%v", tc.name, existing), func(t *testing.T) {
				mem, _ := memstore.New(nil)
				fs := &failingStore{Store: mem}
				var handled error
				a := newAppWith(t, fs, mem, &sessions.Options{
					ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
						handled = err
						http.Error(w, "try again later", http.StatusServiceUnavailable)
					},
				})
				var outerStatus int
				var outerCommitted bool
				a.e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
					return func(c *echo.Context) error {
						err := next(c)
						if res, uerr := echo.UnwrapResponse(c.Response()); uerr == nil {
							outerStatus, outerCommitted = res.Status, res.Committed
						}
						return err
					}
				}, echo5sessions.Middleware(a.m))
				a.e.GET("/get", getValue)
				a.e.GET("/seed", setter("old", func(c *echo.Context) error { return c.NoContent(http.StatusNoContent) }))
				a.e.GET("/set", setter("new", tc.then))

				var c *http.Cookie
				if existing {
					c = a.sessionCookie(a.do(http.MethodGet, "/seed", nil))
				}
				fs.mu.Lock()
				fs.fail = true
				fs.mu.Unlock()
				w := a.do(http.MethodGet, "/set", c)
				fs.mu.Lock()
				fs.fail = false
				fs.mu.Unlock()

				answered(t, w, http.StatusServiceUnavailable, "try again later\n")
				if !errors.Is(handled, errDown) || !errors.Is(handled, sessions.ErrStore) {
					t.Errorf("ErrorHandler got %v", handled)
				}
				noCookie(t, w)
				if outerStatus != http.StatusServiceUnavailable || !outerCommitted {
					t.Errorf("outer middleware saw status %d committed %v, want 503 true", outerStatus, outerCommitted)
				}
				want := "<none>"
				if existing {
					want = "old"
				}
				a.holds("/get", c, want)
			})
		}
	}
}

// TestComposition: the middleware at group and route level, with other
// middleware around and inside it.
func TestComposition(t *testing.T) {
	a := newApp(t, nil)
	var logged []string
	var mu sync.Mutex
	a.e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus:   true,
		HandleError: true,
		LogValuesFunc: func(c *echo.Context, v middleware.RequestLoggerValues) error {
			mu.Lock()
			defer mu.Unlock()
			logged = append(logged, fmt.Sprintf("%d %v", v.Status, v.Error))
			return nil
		},
	}))
	// requireUser, inside the session middleware, rejects a session
	// without "k" with a 401 of its own.
	requireUser := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			_, ok, err := sessions.Get[string](echo5sessions.Session(c), "k")
			if err != nil {
				return err
			}
			if !ok {
				return echo.ErrUnauthorized
			}
			return next(c)
		}
	}
	g := a.e.Group("/app", echo5sessions.Middleware(a.m))
	g.GET("/get", getValue)
	g.GET("/login", setter("bob", func(c *echo.Context) error { return c.String(http.StatusOK, "in") }))
	g.GET("/admin", func(c *echo.Context) error { return c.String(http.StatusOK, "secret") }, requireUser)
	g.GET("/admin/fail", setter("changed", func(c *echo.Context) error {
		return echo.NewHTTPError(http.StatusInternalServerError, "")
	}), requireUser)
	a.e.GET("/route", setter("route", func(c *echo.Context) error { return c.String(http.StatusOK, "r") }),
		echo5sessions.Middleware(a.m))
	a.e.GET("/route/get", getValue, echo5sessions.Middleware(a.m))
	a.e.GET("/public", func(c *echo.Context) error {
		if echo5sessions.Session(c) != nil {
			return errors.New("session outside the group")
		}
		return c.String(http.StatusOK, "public")
	})

	w := a.do(http.MethodGet, "/app/admin", nil)
	if w.Code != 401 {
		t.Fatalf("anonymous admin: %d", w.Code)
	}
	noCookie(t, w)
	c := a.sessionCookie(a.do(http.MethodGet, "/app/login", nil))
	answered(t, a.do(http.MethodGet, "/app/admin", c), 200, "secret")
	answered(t, a.do(http.MethodGet, "/app/admin/fail", c), 500, "{\"message\":\"Internal Server Error\"}\n")
	a.holds("/app/get", c, "bob")
	if w := a.do(http.MethodGet, "/public", c); w.Code != 200 {
		t.Errorf("public: %d %q", w.Code, w.Body)
	}
	a.holds("/route/get", a.sessionCookie(a.do(http.MethodGet, "/route", nil)), "route")

	// The logger outside saw the real statuses and the returned errors.
	mu.Lock()
	defer mu.Unlock()
	want := []string{"401 Unauthorized", "200 <nil>", "200 <nil>",
		"500 code=500, message=Internal Server Error", "200 <nil>", "200 <nil>", "200 <nil>", "200 <nil>"}
	if fmt.Sprint(logged) != fmt.Sprint(want) {
		t.Errorf("request log:\n got %q\nwant %q", logged, want)
	}
}

func TestMiddlewareNilManager(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Middleware(nil) did not panic")
		}
	}()
	echo5sessions.Middleware(nil)
}

// TestResponseHooks: a Before hook runs before the commit, so its change is
// saved; an After hook runs after it, so its change returns ErrCommitted.
func TestResponseHooks(t *testing.T) {
	a := newApp(t, nil)
	a.e.Use(echo5sessions.Middleware(a.m))
	a.e.GET("/get", getValue)
	afterErr := make(chan error, 1)
	a.e.GET("/hooks", func(c *echo.Context) error {
		s := echo5sessions.Session(c)
		res, err := echo.UnwrapResponse(c.Response())
		if err != nil {
			return err
		}
		res.Before(func() {
			if err := s.Set("k", "before"); err != nil {
				t.Errorf("Set in Before: %v", err)
			}
		})
		res.After(func() {
			select {
			case afterErr <- s.Set("k", "after"):
			default:
			}
		})
		return c.String(http.StatusOK, "hooked")
	})
	w := a.do(http.MethodGet, "/hooks", nil)
	if w.Code != 200 {
		t.Fatalf("got %d", w.Code)
	}
	c := a.sessionCookie(w)
	if err := <-afterErr; !errors.Is(err, sessions.ErrCommitted) {
		t.Errorf("Set in After: %v, want ErrCommitted", err)
	}
	a.holds("/get", c, "before")
}

// TestGzip: echo's Gzip middleware, which replaces the response writer
// too, composes with this one in either order.
func TestGzip(t *testing.T) {
	for _, gzipOutside := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzipOutside=%v", gzipOutside), func(t *testing.T) {
			a := newApp(t, nil)
			if gzipOutside {
				a.e.Use(middleware.Gzip(), echo5sessions.Middleware(a.m))
			} else {
				a.e.Use(echo5sessions.Middleware(a.m), middleware.Gzip())
			}
			a.e.GET("/get", getValue)
			a.e.GET("/set", setter("zipped", func(c *echo.Context) error {
				if err := c.String(http.StatusOK, strings.Repeat("z", 2000)); err != nil {
					return err
				}
				flush(c)
				return nil
			}))
			a.e.GET("/fail", setter("lost", func(c *echo.Context) error { return errors.New("boom") }))
			w := a.do(http.MethodGet, "/set", nil, echo.HeaderAcceptEncoding, "gzip")
			if w.Code != 200 || w.Header().Get(echo.HeaderContentEncoding) != "gzip" {
				t.Fatalf("got %d, Content-Encoding %q", w.Code, w.Header().Get(echo.HeaderContentEncoding))
			}
			c := a.sessionCookie(w)
			a.holds("/get", c, "zipped")
			w = a.do(http.MethodGet, "/fail", c, echo.HeaderAcceptEncoding, "gzip")
			if w.Code != 500 {
				t.Fatalf("fail: %d", w.Code)
			}
			noCookie(t, w)
			a.holds("/get", c, "zipped")
		})
	}
}

// opaqueWriter hides echo's Response: it has no Unwrap method.
type opaqueWriter struct{ http.ResponseWriter }

// TestWriterWithoutUnwrap: under a middleware whose writer does not unwrap
// to echo's Response, sessions still commit with the real status, and an
// error is rendered once.
func TestWriterWithoutUnwrap(t *testing.T) {
	a := newApp(t, nil)
	var handled int
	var mu sync.Mutex
	a.e.HTTPErrorHandler = func(c *echo.Context, err error) {
		mu.Lock()
		handled++
		mu.Unlock()
		echo.DefaultHTTPErrorHandler(false)(c, err)
	}
	a.e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			c.SetResponse(opaqueWriter{c.Response()})
			return next(c)
		}
	}, echo5sessions.Middleware(a.m))
	a.e.GET("/get", getValue)
	a.e.GET("/set", setter("hidden", func(c *echo.Context) error { return c.String(http.StatusOK, "ok") }))
	a.e.GET("/fail", setter("lost", func(*echo.Context) error { return errors.New("boom") }))

	c := a.sessionCookie(a.do(http.MethodGet, "/set", nil))
	a.holds("/get", c, "hidden")
	w := a.do(http.MethodGet, "/fail", c)
	answered(t, w, http.StatusInternalServerError, "{\"message\":\"Internal Server Error\"}\n")
	noCookie(t, w)
	a.holds("/get", c, "hidden")
	mu.Lock()
	defer mu.Unlock()
	if handled != 1 {
		t.Errorf("HTTPErrorHandler called %d times, want 1", handled)
	}
}

// TestRegisteredTwice: the same Manager installed both globally and on a
// group behaves as one: one cookie, one saved session, one rendering of an
// error.
func TestRegisteredTwice(t *testing.T) {
	a := newApp(t, nil)
	a.e.Use(echo5sessions.Middleware(a.m))
	g := a.e.Group("/g", echo5sessions.Middleware(a.m))
	g.GET("/get", getValue)
	g.GET("/set", setter("twice", func(c *echo.Context) error { return c.String(http.StatusOK, "ok") }))
	g.GET("/fail", setter("lost", func(*echo.Context) error { return echo.ErrInternalServerError }))

	w := a.do(http.MethodGet, "/g/set", nil)
	answered(t, w, 200, "ok")
	if n := len(w.Header().Values("Set-Cookie")); n != 1 {
		t.Fatalf("%d Set-Cookie headers: %q", n, w.Header().Values("Set-Cookie"))
	}
	c := a.sessionCookie(w)
	a.holds("/g/get", c, "twice")
	w = a.do(http.MethodGet, "/g/fail", c)
	answered(t, w, 500, "{\"message\":\"Internal Server Error\"}\n")
	noCookie(t, w)
	a.holds("/g/get", c, "twice")
	if n := a.store.Len(); n != 1 {
		t.Errorf("store holds %d records, want 1", n)
	}
}
