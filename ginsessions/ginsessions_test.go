package ginsessions_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/ginsessions"
	"github.com/sessionkit/sessions/memstore"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// cookieName is the default cookie name with InsecureCookie (plain HTTP
// test servers).
const cookieName = "session"

// failStore is a memstore whose Create can be made to fail.
type failStore struct {
	*memstore.Store
	mu   sync.Mutex
	fail error
}

func (s *failStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *failStore) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	s.mu.Lock()
	err := s.fail
	s.mu.Unlock()
	if err != nil {
		return false, err
	}
	return s.Store.Create(ctx, id, data, expiry, owner, now)
}

func newStore(t *testing.T) *failStore {
	t.Helper()
	mem, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &failStore{Store: mem}
}

func newManager(t *testing.T, store sessions.Store, opts *sessions.Options) *sessions.Manager {
	t.Helper()
	o := sessions.Options{InsecureCookie: true, Logger: discardLogger()}
	if opts != nil {
		o = *opts
	}
	m, err := sessions.New(store, &o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newEngine returns a gin engine with gin.Recovery (quiet) and the
// sessions middleware, and the routes every test reads back through:
// GET /get?k=KEY answers the value or "<none>", GET /set?k=KEY&v=VALUE
// stores one.
func newEngine(m *sessions.Manager) *gin.Engine {
	r := gin.New()
	r.Use(gin.RecoveryWithWriter(io.Discard), ginsessions.Middleware(m))
	r.GET("/get", func(c *gin.Context) {
		v, ok, err := sessions.Get[string](ginsessions.Session(c), c.Query("k"))
		switch {
		case err != nil:
			c.String(http.StatusServiceUnavailable, "error: %v", err)
		case !ok:
			c.String(http.StatusOK, "<none>")
		default:
			c.String(http.StatusOK, "%s", v)
		}
	})
	r.GET("/set", func(c *gin.Context) {
		if err := ginsessions.Session(c).Set(c.Query("k"), c.Query("v")); err != nil {
			c.String(http.StatusServiceUnavailable, "error: %v", err)
			return
		}
		c.String(http.StatusOK, "set")
	})
	return r
}

// serve runs one request through h, with cookie c if not nil.
func serve(h http.Handler, method, target string, c *http.Cookie) *http.Response {
	req := httptest.NewRequest(method, target, nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// sessionCookie returns the session cookie that resp sets, or nil.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return string(b)
}

// readBack answers what the store holds under key k for the session of
// cookie c, through a second request.
func readBack(t *testing.T, h http.Handler, c *http.Cookie, k string) string {
	t.Helper()
	resp := serve(h, http.MethodGet, "/get?k="+k, c)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("read back: status %d", resp.StatusCode)
	}
	return body(t, resp)
}

// login stores k=v in a new session and returns its cookie.
func login(t *testing.T, h http.Handler, k, v string) *http.Cookie {
	t.Helper()
	resp := serve(h, http.MethodGet, "/set?k="+k+"&v="+v, nil)
	c := sessionCookie(resp)
	if resp.StatusCode != http.StatusOK || c == nil {
		t.Fatalf("login: status %d, cookie %v", resp.StatusCode, c)
	}
	return c
}

// responders write a response in one of gin's ways, after the handler has
// set the session value "k" to "new".
var responders = []struct {
	name    string
	respond gin.HandlerFunc
	status  int
	save    bool
}{
	{"String", func(c *gin.Context) { c.String(http.StatusOK, "ok") }, 200, true},
	{"String with args", func(c *gin.Context) { c.String(http.StatusOK, "%d", 42) }, 200, true},
	{"JSON", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) }, 200, true},
	{"Data", func(c *gin.Context) { c.Data(http.StatusOK, "application/octet-stream", []byte{1, 2, 3}) }, 200, true},
	{"Writer.Write", func(c *gin.Context) { _, _ = c.Writer.Write([]byte("ok")) }, 200, true},
	{"Writer.WriteString", func(c *gin.Context) { _, _ = c.Writer.WriteString("ok") }, 200, true},
	{"Writer.WriteHeaderNow", func(c *gin.Context) { c.Status(http.StatusCreated); c.Writer.WriteHeaderNow() }, 201, true},
	{"Writer.Flush", func(c *gin.Context) { c.Writer.Flush() }, 200, true},
	{"ResponseController.Flush", func(c *gin.Context) { _ = http.NewResponseController(c.Writer).Flush() }, 200, true},
	{"writes nothing", func(*gin.Context) {}, 200, true},
	{"Status(204), writes nothing", func(c *gin.Context) { c.Status(http.StatusNoContent) }, 204, true},
	{"Redirect", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/") }, 303, true},
	{"AbortWithStatus(404)", func(c *gin.Context) { c.AbortWithStatus(http.StatusNotFound) }, 404, true},
	{"JSON(400)", func(c *gin.Context) { c.JSON(http.StatusBadRequest, gin.H{"err": "bad"}) }, 400, true},
	{"status changed before the body", func(c *gin.Context) { c.Status(http.StatusServiceUnavailable); c.String(http.StatusOK, "ok") }, 200, true},

	{"AbortWithStatus(500)", func(c *gin.Context) { c.AbortWithStatus(http.StatusInternalServerError) }, 500, false},
	{"AbortWithError(500)", func(c *gin.Context) {
		_ = c.AbortWithError(http.StatusInternalServerError, errors.New("boom"))
	}, 500, false},
	{"AbortWithStatusJSON(502)", func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusBadGateway, gin.H{"err": "upstream"})
	}, 502, false},
	{"Status(503) then body", func(c *gin.Context) {
		c.Status(http.StatusServiceUnavailable)
		_, _ = c.Writer.WriteString("down")
	}, 503, false},
	{"String(500)", func(c *gin.Context) { c.String(http.StatusInternalServerError, "oops") }, 500, false},
	{"Status(500), writes nothing", func(c *gin.Context) { c.Status(http.StatusInternalServerError) }, 500, false},
	{"panic under gin.Recovery", func(*gin.Context) { panic("boom") }, 500, false},
	{"panic after Status(200)", func(c *gin.Context) { c.Status(http.StatusOK); panic("boom") }, 500, false},
}

// TestCommitPaths runs every responder on a new session (is the cookie
// sent, is the record created?) and on an existing one (is the change
// saved?), and reads the result back through another request.
func TestCommitPaths(t *testing.T) {
	for _, tc := range responders {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			r := newEngine(newManager(t, store, nil))
			r.GET("/do", func(c *gin.Context) {
				if err := ginsessions.Session(c).Set("k", "new"); err != nil {
					t.Errorf("Set: %v", err)
				}
				tc.respond(c)
			})

			// A new session.
			resp := serve(r, http.MethodGet, "/do", nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("new session: status %d, want %d", resp.StatusCode, tc.status)
			}
			c := sessionCookie(resp)
			if !tc.save {
				if c != nil {
					t.Errorf("new session: a %d sent a session cookie %q", tc.status, c)
				}
				if n := store.Len(); n != 0 {
					t.Errorf("new session: the store holds %d records after a %d, want 0", n, tc.status)
				}
			} else {
				if c == nil {
					t.Fatalf("new session: no session cookie (Set-Cookie %q)", resp.Header.Values("Set-Cookie"))
				}
				if got := readBack(t, r, c, "k"); got != "new" {
					t.Errorf("new session: read back %q, want %q", got, "new")
				}
			}

			// An existing session.
			c = login(t, r, "k", "old")
			resp = serve(r, http.MethodGet, "/do", c)
			if resp.StatusCode != tc.status {
				t.Fatalf("existing session: status %d, want %d", resp.StatusCode, tc.status)
			}
			want := "old"
			if tc.save {
				want = "new"
			}
			if got := readBack(t, r, c, "k"); got != want {
				t.Errorf("existing session after a %d: read back %q, want %q", tc.status, got, want)
			}
		})
	}
}

// TestPanicSavesNothing: a panic commits nothing, even with a ShouldSave
// that accepts the 500 gin.Recovery then answers, and even for a Destroy
// (whose record is gone already; no removal cookie is sent, as with
// Manager.Handler, which net/http's own recovery bypasses).
func TestPanicSavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle gin.HandlerFunc
	}{
		{"Set", func(c *gin.Context) { _ = ginsessions.Session(c).Set("k", "new"); panic("boom") }},
		{"Set, Status(202), ErrAbortHandler", func(c *gin.Context) {
			_ = ginsessions.Session(c).Set("k", "new")
			c.Status(http.StatusAccepted)
			panic(http.ErrAbortHandler)
		}},
		{"Destroy", func(c *gin.Context) { _ = ginsessions.Session(c).Destroy(); panic("boom") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			m := newManager(t, store, &sessions.Options{
				InsecureCookie: true,
				Logger:         discardLogger(),
				ShouldSave:     func(int) bool { return true },
			})
			r := newEngine(m)
			r.GET("/do", tc.handle)

			resp := serve(r, http.MethodGet, "/do", nil)
			if c := sessionCookie(resp); c != nil || store.Len() != 0 {
				t.Errorf("new session: a panic sent cookie %v and left %d records", c, store.Len())
			}
			c := login(t, r, "k", "old")
			resp = serve(r, http.MethodGet, "/do", c)
			if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("existing session: a panic sent Set-Cookie %q", got)
			}
			if got := readBack(t, r, c, "k"); got != "old" && !strings.Contains(tc.name, "Destroy") {
				t.Errorf("existing session: read back %q after a panic, want %q", got, "old")
			}
		})
	}
}

// TestRecoveryInside: with gin.Recovery installed after the middleware,
// the 500 it answers goes through the middleware and saves nothing either.
func TestRecoveryInside(t *testing.T) {
	store := newStore(t)
	m := newManager(t, store, nil)
	r := gin.New()
	r.Use(ginsessions.Middleware(m), gin.RecoveryWithWriter(io.Discard))
	r.GET("/do", func(c *gin.Context) {
		_ = ginsessions.Session(c).Set("k", "new")
		panic("boom")
	})
	resp := serve(r, http.MethodGet, "/do", nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if c := sessionCookie(resp); c != nil || store.Len() != 0 {
		t.Errorf("a recovered panic sent cookie %v and left %d records", c, store.Len())
	}
}

// TestPanicAfterCommit: a panic after the body was written cannot take
// back the commit, but the middleware must not commit twice or panic.
func TestPanicAfterCommit(t *testing.T) {
	store := newStore(t)
	r := newEngine(newManager(t, store, nil))
	r.GET("/do", func(c *gin.Context) {
		_ = ginsessions.Session(c).Set("k", "new")
		c.String(http.StatusOK, "partial")
		panic("boom")
	})
	resp := serve(r, http.MethodGet, "/do", nil)
	c := sessionCookie(resp)
	if resp.StatusCode != http.StatusOK || c == nil {
		t.Fatalf("status %d, cookie %v: want the 200 and cookie already written", resp.StatusCode, c)
	}
	if got := readBack(t, r, c, "k"); got != "new" {
		t.Errorf("read back %q, want %q", got, "new")
	}
}

// TestDestroyOn5xx: a logout holds whatever the status.
func TestDestroyOn5xx(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond gin.HandlerFunc
	}{
		{"AbortWithStatus(500)", func(c *gin.Context) { c.AbortWithStatus(http.StatusInternalServerError) }},
		{"String(503)", func(c *gin.Context) { c.String(http.StatusServiceUnavailable, "down") }},
		{"Status(500), writes nothing", func(c *gin.Context) { c.Status(http.StatusInternalServerError) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			r := newEngine(newManager(t, store, nil))
			r.GET("/logout", func(c *gin.Context) {
				if err := ginsessions.Session(c).Destroy(); err != nil {
					t.Errorf("Destroy: %v", err)
				}
				tc.respond(c)
			})
			c := login(t, r, "user", "alice")
			resp := serve(r, http.MethodGet, "/logout", c)
			if resp.StatusCode < 500 {
				t.Fatalf("status %d, want 5xx", resp.StatusCode)
			}
			rm := sessionCookie(resp)
			if rm == nil || rm.MaxAge >= 0 || rm.Value != "" {
				t.Fatalf("no removal cookie: Set-Cookie %q", resp.Header.Values("Set-Cookie"))
			}
			if got := readBack(t, r, c, "user"); got != "<none>" {
				t.Errorf("after logout the old cookie reads %q, want <none>", got)
			}
			if n := store.Len(); n != 0 {
				t.Errorf("store holds %d records after logout, want 0", n)
			}
		})
	}
}

// TestStoreFailure: when the store fails at commit, the Manager's error
// handler answers (5xx) and the handler's body is dropped.
func TestStoreFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond gin.HandlerFunc
		nothing bool // the handlers write nothing: the commit comes after them
	}{
		{"String", func(c *gin.Context) { c.String(http.StatusOK, "SECRET") }, false},
		{"JSON", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"v": "SECRET"}) }, false},
		{"Writer.Write", func(c *gin.Context) { _, _ = c.Writer.Write([]byte("SECRET")) }, false},
		{"Writer.WriteString twice", func(c *gin.Context) {
			_, _ = c.Writer.WriteString("SECRET")
			_, _ = c.Writer.WriteString("SECRET")
		}, false},
		{"WriteHeaderNow then body", func(c *gin.Context) {
			c.Writer.WriteHeaderNow()
			_, _ = c.Writer.WriteString("SECRET")
		}, false},
		{"Flush then body", func(c *gin.Context) {
			c.Writer.Flush()
			_, _ = c.Writer.WriteString("SECRET")
		}, false},
		{"Stream", func(c *gin.Context) {
			i := 0
			c.Stream(func(w io.Writer) bool {
				_, _ = io.WriteString(w, "SECRET")
				i++
				return i < 2
			})
		}, false},
		{"writes nothing", func(*gin.Context) {}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			store.setFail(errors.New("disk on fire"))
			var errSeen error
			m := newManager(t, store, &sessions.Options{
				InsecureCookie: true,
				Logger:         discardLogger(),
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					errSeen = err
					http.Error(w, "try again later", http.StatusServiceUnavailable)
				},
			})
			r := newEngine(m)
			var writeErr error
			r.GET("/do", func(c *gin.Context) {
				if err := ginsessions.Session(c).Set("k", "new"); err != nil {
					t.Errorf("Set: %v", err)
				}
				tc.respond(c)
				if !tc.nothing {
					_, writeErr = c.Writer.WriteString("MORE")
				}
			})
			srv := httptest.NewServer(r) // c.Stream needs a real connection
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL + "/do")
			if err != nil {
				t.Fatal(err)
			}
			got := body(t, resp)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status %d, want the error handler's 503", resp.StatusCode)
			}
			if strings.Contains(got, "SECRET") || strings.Contains(got, "MORE") || !strings.Contains(got, "try again later") {
				t.Errorf("body %q, want the error handler's alone", got)
			}
			if c := sessionCookie(resp); c != nil {
				t.Errorf("a failed save sent cookie %v", c)
			}
			if !errors.Is(errSeen, sessions.ErrStore) {
				t.Errorf("error handler got %v, want ErrStore", errSeen)
			}
			if writeErr == nil && !tc.nothing {
				t.Errorf("a write after the failed commit succeeded")
			}
		})
	}
}

// TestStreaming: the cookie is in the headers of the first flushed chunk,
// and a change after it returns ErrCommitted.
func TestStreaming(t *testing.T) {
	for _, tc := range []struct {
		name string
		// first writes and flushes the first chunk; rest writes the last.
		first, rest func(c *gin.Context)
	}{
		{"Stream", func(c *gin.Context) {
			c.Stream(func(w io.Writer) bool { _, _ = io.WriteString(w, "chunk 1\n"); return false })
		}, func(c *gin.Context) {
			c.Stream(func(w io.Writer) bool { _, _ = io.WriteString(w, "chunk 2\n"); return false })
		}},
		{"SSEvent", func(c *gin.Context) {
			c.SSEvent("message", "chunk 1")
			c.Writer.Flush()
		}, func(c *gin.Context) {
			c.SSEvent("message", "chunk 2")
			c.Writer.Flush()
		}},
		{"ResponseController", func(c *gin.Context) {
			_, _ = c.Writer.WriteString("chunk 1\n")
			if err := http.NewResponseController(c.Writer).Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		}, func(c *gin.Context) { _, _ = c.Writer.WriteString("chunk 2\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			r := newEngine(newManager(t, store, nil))
			proceed := make(chan struct{})
			late := make(chan error, 1)
			r.GET("/stream", func(c *gin.Context) {
				s := ginsessions.Session(c)
				if err := s.Set("k", "streamed"); err != nil {
					t.Errorf("Set: %v", err)
				}
				tc.first(c)
				<-proceed // the client has the headers and the first chunk
				late <- s.Set("late", "x")
				tc.rest(c)
			})
			srv := httptest.NewServer(r)
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL + "/stream")
			if err != nil {
				close(proceed)
				t.Fatal(err)
			}
			c := sessionCookie(resp)
			br := bufio.NewReader(resp.Body)
			var first string
			for !strings.Contains(first, "chunk 1") && err == nil {
				var line string
				line, err = br.ReadString('\n')
				first += line
			}
			close(proceed)
			if err != nil {
				t.Fatalf("first chunk %q, %v", first, err)
			}
			if c == nil {
				t.Fatalf("no session cookie in the headers of the first chunk: %q", resp.Header.Values("Set-Cookie"))
			}
			rest, _ := io.ReadAll(br)
			resp.Body.Close()
			if !strings.Contains(string(rest), "chunk 2") {
				t.Errorf("rest of the stream %q", rest)
			}
			if err := <-late; !errors.Is(err, sessions.ErrCommitted) {
				t.Errorf("change after the first flush: %v, want ErrCommitted", err)
			}
			if got := readBack(t, srv.Config.Handler, c, "k"); got != "streamed" {
				t.Errorf("read back %q, want %q", got, "streamed")
			}
			if got := readBack(t, srv.Config.Handler, c, "late"); got != "<none>" {
				t.Errorf("the late change was saved: %q", got)
			}
		})
	}
}

// TestReachable: the session the gin way and through the request's
// context, with and without ContextWithFallback.
func TestReachable(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("ContextWithFallback=%v", fallback), func(t *testing.T) {
			m := newManager(t, newStore(t), nil)
			r := newEngine(m)
			r.ContextWithFallback = fallback
			r.GET("/who", func(c *gin.Context) {
				s := ginsessions.Session(c)
				switch {
				case s == nil:
					t.Error("Session(c) is nil")
				case sessions.FromContext(c.Request.Context()) != s:
					t.Error("sessions.FromContext(c.Request.Context()) differs from Session(c)")
				case m.FromContext(c.Request.Context()) != s:
					t.Error("m.FromContext(c.Request.Context()) differs from Session(c)")
				}
				viaGin := sessions.FromContext(c)
				if fallback && viaGin != s {
					t.Errorf("with ContextWithFallback, sessions.FromContext(c) = %p, want %p", viaGin, s)
				}
				if !fallback && viaGin != nil {
					t.Errorf("without ContextWithFallback, sessions.FromContext(c) = %p; the docs say nil", viaGin)
				}
				if err := s.Set("k", "v"); err != nil {
					t.Errorf("Set: %v", err)
				}
				c.Status(http.StatusNoContent)
			})
			resp := serve(r, http.MethodGet, "/who", nil)
			c := sessionCookie(resp)
			if c == nil {
				t.Fatal("no cookie")
			}
			if got := readBack(t, r, c, "k"); got != "v" {
				t.Errorf("read back %q", got)
			}
		})
	}
}

// TestSessionNil: Session is nil-safe and nil without the middleware.
func TestSessionNil(t *testing.T) {
	if s := ginsessions.Session(nil); s != nil {
		t.Errorf("Session(nil) = %p", s)
	}
	r := gin.New()
	var got error
	r.GET("/", func(c *gin.Context) { _, _, got = sessions.Get[string](ginsessions.Session(c), "k") })
	serve(r, http.MethodGet, "/", nil)
	if !errors.Is(got, sessions.ErrNoSession) {
		t.Errorf("without the middleware: %v, want ErrNoSession", got)
	}
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	if s := ginsessions.Session(c); s != nil {
		t.Errorf("Session of a context without request = %p", s)
	}
}

// TestOuterMiddleware: when the handlers write nothing, the session is
// committed as the middleware returns but the headers stay open, so a
// middleware installed before it can still add headers; a change it makes
// then returns ErrCommitted.
func TestOuterMiddleware(t *testing.T) {
	m := newManager(t, newStore(t), nil)
	r := gin.New()
	var late error
	r.Use(func(c *gin.Context) {
		c.Next()
		c.Header("X-Outer", "yes")
		late = ginsessions.Session(c).Set("late", "x")
	})
	r.Use(ginsessions.Middleware(m))
	r.GET("/get", func(c *gin.Context) {
		v, _, _ := sessions.Get[string](ginsessions.Session(c), c.Query("k"))
		c.String(http.StatusOK, "%s", v)
	})
	r.GET("/do", func(c *gin.Context) { _ = ginsessions.Session(c).Set("k", "v") })
	resp := serve(r, http.MethodGet, "/do", nil)
	c := sessionCookie(resp)
	if c == nil || resp.Header.Get("X-Outer") != "yes" {
		t.Fatalf("cookie %v, X-Outer %q: want both", c, resp.Header.Get("X-Outer"))
	}
	if !errors.Is(late, sessions.ErrCommitted) {
		t.Errorf("change after the middleware returned: %v, want ErrCommitted", late)
	}
	if got := readBack(t, r, c, "k"); got != "v" {
		t.Errorf("read back %q", got)
	}
}

// TestTwoManagers: two middlewares with different cookie names each
// commit their own session through the other's writer.
func TestTwoManagers(t *testing.T) {
	a := newManager(t, newStore(t), &sessions.Options{InsecureCookie: true, CookieName: "a", Logger: discardLogger()})
	b := newManager(t, newStore(t), &sessions.Options{InsecureCookie: true, CookieName: "b", Logger: discardLogger()})
	r := gin.New()
	r.Use(ginsessions.Middleware(a), ginsessions.Middleware(b))
	r.GET("/", func(c *gin.Context) {
		ctx := c.Request.Context()
		if ginsessions.Session(c) != b.FromContext(ctx) {
			t.Error("Session(c) is not the innermost Manager's session")
		}
		_ = a.FromContext(ctx).Set("k", "a")
		_ = b.FromContext(ctx).Set("k", "b")
		c.String(http.StatusOK, "ok")
	})
	resp := serve(r, http.MethodGet, "/", nil)
	names := map[string]bool{}
	for _, c := range resp.Cookies() {
		names[c.Name] = true
	}
	if !names["a"] || !names["b"] {
		t.Errorf("cookies %q, want a and b", resp.Header.Values("Set-Cookie"))
	}
}

// TestHijack: a hijack commits the session (the hijacker writes the
// headers, cookie included); on a writer that cannot hijack it returns
// http.ErrNotSupported instead of panicking, and the session is still
// committed by the response that follows.
func TestHijack(t *testing.T) {
	store := newStore(t)
	r := newEngine(newManager(t, store, nil))
	r.GET("/hijack", func(c *gin.Context) {
		_ = ginsessions.Session(c).Set("k", "hijacked")
		conn, brw, err := c.Writer.Hijack()
		if err != nil {
			if !errors.Is(err, http.ErrNotSupported) {
				t.Errorf("Hijack: %v", err)
			}
			c.String(http.StatusOK, "not hijacked")
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nSet-Cookie: %s\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked",
			c.Writer.Header().Get("Set-Cookie"))
		_ = brw.Flush()
	})

	t.Run("server", func(t *testing.T) {
		srv := httptest.NewServer(r)
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL + "/hijack")
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, resp); got != "hijacked" {
			t.Fatalf("body %q", got)
		}
		c := sessionCookie(resp)
		if c == nil {
			t.Fatal("no session cookie in the hijacker's headers")
		}
		if got := readBack(t, r, c, "k"); got != "hijacked" {
			t.Errorf("read back %q", got)
		}
	})
	t.Run("recorder", func(t *testing.T) {
		resp := serve(r, http.MethodGet, "/hijack", nil)
		c := sessionCookie(resp)
		if got := body(t, resp); got != "not hijacked" || c == nil {
			t.Fatalf("body %q, cookie %v", got, c)
		}
		if got := readBack(t, r, c, "k"); got != "hijacked" {
			t.Errorf("read back %q", got)
		}
	})
}

// TestUntouched: a request that never uses its session costs no store call
// and sends no cookie.
func TestUntouched(t *testing.T) {
	store := newStore(t)
	store.setFail(errors.New("must not be called"))
	r := newEngine(newManager(t, store, nil))
	r.GET("/", func(c *gin.Context) { c.String(http.StatusOK, "hello") })
	resp := serve(r, http.MethodGet, "/", nil)
	if resp.StatusCode != http.StatusOK || len(resp.Header.Values("Set-Cookie")) != 0 || resp.Header.Get("Vary") != "" {
		t.Errorf("status %d, Set-Cookie %q, Vary %q", resp.StatusCode, resp.Header.Values("Set-Cookie"), resp.Header.Get("Vary"))
	}
	// gin runs the global middlewares for an unknown route too, then
	// writes its 404 body through c.Writer.
	resp = serve(r, http.MethodGet, "/nope", nil)
	if b := body(t, resp); resp.StatusCode != http.StatusNotFound || b != "404 page not found" || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("unknown route: %d %q, Set-Cookie %q", resp.StatusCode, b, resp.Header.Values("Set-Cookie"))
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
