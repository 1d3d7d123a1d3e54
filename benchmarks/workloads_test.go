package benchmarks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// The three handlers every library serves, written once against lib.

var okBody = []byte("ok")

// untouchedHandler never touches the session.
func untouchedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(okBody)
	})
}

// readHandler answers the counter, 404 if there is none.
func readHandler(l lib) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, ok, err := l.read(w, r)
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		case !ok:
			http.Error(w, "no counter", http.StatusNotFound)
		default:
			writeInt(w, n)
		}
	})
}

// incrHandler increments the counter and answers its new value.
func incrHandler(l lib, pause time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := l.incr(w, r, pause)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeInt(w, n)
	})
}

func writeInt(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var buf [20]byte
	w.Write(strconv.AppendInt(buf[:0], int64(n), 10))
}

// A workload is one kind of request, served repeatedly.
type workload struct {
	name       string
	withCookie bool // the request carries the cookie of a live session holding n = 1
	parallel   bool // served by b.RunParallel, one session per goroutine
	floor      bool // the floor runs it (the untouched workloads are the baseline's)
}

var workloads = []workload{
	{name: "untouched-nocookie"},
	{name: "untouched-cookie", withCookie: true},
	{name: "read", withCookie: true, floor: true},
	{name: "incr", withCookie: true, floor: true},
	{name: "create", floor: true},
	{name: "parallel-incr", parallel: true, floor: true},
}

// runs reports whether the contestant runs the workload.
func (wl workload) runs(c contestant) bool { return c.lib != "floor" || wl.floor }

// A stage is a workload set up on one lib: the handler with its middleware,
// the request template, and the checks.
type stage struct {
	h   http.Handler
	req *http.Request
	// wantBody and wantCookie describe the first response (its status
	// must be 200).
	wantBody   string
	wantCookie cookieRule
	// after checks the lib's state after the first response plus n more
	// were served (incr only: the counter must be 2+n).
	after func(n int) error
	l     lib
}

// baselineCookie is the cookie the baseline's requests carry in the
// workloads with a cookie: a session cookie of the usual size.
var baselineCookie = &http.Cookie{Name: "session", Value: strings.Repeat("A", 43)}

// newStage sets wl up on l. The baseline serves the untouched handler in
// every workload, with the same request shape.
func newStage(c contestant, l lib, wl workload) (*stage, error) {
	st := &stage{l: l, req: httptest.NewRequest(http.MethodGet, "/", nil)}
	var cookie *http.Cookie
	if wl.withCookie {
		if c.lib == "baseline" {
			cookie = baselineCookie
		} else {
			var err error
			if cookie, err = seed(l); err != nil {
				return nil, err
			}
		}
		st.req.AddCookie(cookie)
	}
	switch {
	case c.lib == "baseline" || strings.HasPrefix(wl.name, "untouched"):
		st.h, st.wantBody = l.middleware(untouchedHandler()), "ok"
	case wl.name == "read":
		st.h, st.wantBody = l.middleware(readHandler(l)), "1"
	case wl.name == "incr":
		// Whether an update re-sends the cookie is each library's choice.
		st.h, st.wantBody, st.wantCookie = l.middleware(incrHandler(l, 0)), "2", anyCookie
		if l.serverSide() {
			rd := l.middleware(readHandler(l))
			st.after = func(n int) error {
				return check(serve(context.Background(), rd, st.req), strconv.Itoa(2+n), l.cookieName(), noCookie)
			}
		}
	case wl.name == "create":
		st.h, st.wantBody, st.wantCookie = l.middleware(incrHandler(l, 0)), "1", setsCookie
	default:
		return nil, fmt.Errorf("workload %s has no stage", wl.name)
	}
	return st, nil
}

// first serves and checks the first request.
func (st *stage) first() error {
	return check(serve(context.Background(), st.h, st.req), st.wantBody, st.l.cookieName(), st.wantCookie)
}

// serve serves the template r into a fresh recorder the way net/http's
// server would: as a request of its own (a shallow copy: gorilla/sessions
// writes to it) whose context is a child of the connection's context conn,
// canceled when the handler returns. Stores see that context, and some
// (pgx) watch a cancelable context with a goroutine per query, so the
// floor and the libraries pay for it as they would in production.
func serve(conn context.Context, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	ctx, cancel := context.WithCancel(conn)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(ctx))
	cancel()
	return w
}

// A cookieRule says whether a response must set the session cookie.
type cookieRule int

const (
	noCookie   cookieRule = iota // it must not
	setsCookie                   // it must
	anyCookie                    // either
)

// check verifies a response: 200, the body, and the session cookie.
func check(w *httptest.ResponseRecorder, body, cookieName string, rule cookieRule) error {
	if w.Code != http.StatusOK || w.Body.String() != body {
		return fmt.Errorf("response %d %q, want 200 %q", w.Code, w.Body.String(), body)
	}
	if rule == anyCookie {
		return nil
	}
	if got := sessionCookie(w.Result(), cookieName) != nil; got != (rule == setsCookie) {
		return fmt.Errorf("session cookie set: %v, want %v (Set-Cookie %q)", got, rule == setsCookie, w.Header().Values("Set-Cookie"))
	}
	return nil
}

func sessionCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.MaxAge >= 0 {
			return c
		}
	}
	return nil
}

// seed creates a session holding n = 1 and returns its cookie.
func seed(l lib) (*http.Cookie, error) {
	w := serve(context.Background(), l.middleware(incrHandler(l, 0)), httptest.NewRequest(http.MethodGet, "/", nil))
	if err := check(w, "1", l.cookieName(), setsCookie); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	c := sessionCookie(w.Result(), l.cookieName())
	return &http.Cookie{Name: c.Name, Value: c.Value}, nil
}

// parallelWorker is the body of one goroutine of the parallel workload:
// it creates its own session, then increments it for as long as next says,
// and finally checks that the counter saw every increment.
func parallelWorker(c contestant, l lib, next func() bool) error {
	var h http.Handler
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if c.lib == "baseline" {
		h = untouchedHandler()
	} else {
		h = l.middleware(incrHandler(l, 0))
		cookie, err := seed(l)
		if err != nil {
			return err
		}
		r.AddCookie(cookie)
	}
	conn, closeConn := context.WithCancel(context.Background())
	defer closeConn()
	n, bad := 0, 0
	for next() {
		if serve(conn, h, r).Code != http.StatusOK {
			bad++
		}
		n++
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d responses were not 200", bad, n)
	}
	if c.lib == "baseline" || !l.serverSide() {
		return nil
	}
	return check(serve(conn, l.middleware(readHandler(l)), r), strconv.Itoa(1+n), l.cookieName(), noCookie)
}
