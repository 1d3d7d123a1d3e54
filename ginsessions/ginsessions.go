// Package ginsessions adapts the sessions middleware of package
// github.com/sessionkit/sessions to the gin web framework.
//
// Install the middleware once, after gin.Recovery (gin.Default does that)
// and before the handlers that use sessions, and reach the request's
// session with [Session]:
//
//	r := gin.Default()
//	r.Use(ginsessions.Middleware(m))
//	r.GET("/", func(c *gin.Context) {
//		n, err := views.Update(ginsessions.Session(c), func(n int) int { return n + 1 })
//		if err != nil {
//			c.String(http.StatusServiceUnavailable, "session unavailable")
//			return
//		}
//		c.String(http.StatusOK, "%d views", n)
//	})
//
// # Why not m.Handler around c.Next
//
// Wrapping gin with [sessions.Manager.Handler] fails quietly: gin keeps
// its own ResponseWriter, records the status in WriteHeader and writes the
// headers itself, later, so the session is committed with the wrong status
// (an aborted 500 still saves) or not before the headers (a new session's
// cookie is lost). [Middleware] sends every write path of gin's writer
// (Write, WriteString, WriteHeaderNow, Flush, Hijack, and gin's own final
// WriteHeaderNow) through the session's commit, with the status gin has
// recorded at that moment, which is the status the client gets.
//
// # When the session is committed
//
// The session is saved, and its cookie added, just before the first byte
// of the response is written, or, if the handlers write nothing, when the
// handlers after the middleware have returned: with the status they set
// (c.Status, c.AbortWithStatus, ...), 200 by default. A status of 500 or
// more saves nothing, unless [sessions.Options.ShouldSave] says otherwise;
// [sessions.Session.Destroy] holds whatever the status. A middleware
// installed before this one sees a committed session when its c.Next
// returns: a status it sets then does not count for the session, and
// changes it makes return [sessions.ErrCommitted].
//
// A handler that panics before the response went out commits nothing,
// whatever ShouldSave says: the middleware steps aside, and what
// gin.Recovery (installed before it) answers carries no session cookie.
// (Changes that are saved at once, such as [sessions.Update], stand.) If the store fails at commit, the Manager's
// [sessions.Options.ErrorHandler] answers instead, and the handler's body
// is dropped (its writes return an error).
//
// # Reaching the session
//
// [Session] returns the session from a *gin.Context, and
// [sessions.FromContext] finds it in c.Request.Context() as usual. gin's
// Context is itself a context.Context, but its Value method looks into the
// request's context only when the engine's ContextWithFallback is set:
// with it, sessions.FromContext(c) works too; without it (gin's default),
// sessions.FromContext(c) returns nil, whose accessors return
// [sessions.ErrNoSession]. [Session] works with both settings.
package ginsessions

import (
	"bufio"
	"fmt"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/sessionkit/sessions"
)

// Middleware returns the gin middleware of m: it gives each request its
// session and commits it just before the response headers are written,
// with the status the handlers set. Install it after gin.Recovery, so
// that a panic saves nothing. Several Managers (with different cookie
// names) can each have their middleware on one route.
func Middleware(m *sessions.Manager) gin.HandlerFunc {
	return func(c *gin.Context) {
		gw := c.Writer
		sw, r, finish := m.Start(gw, c.Request)
		w := &writer{ResponseWriter: gw, sw: sw}
		c.Request = r
		c.Writer = w
		returned := false
		defer func() {
			if !returned {
				// A panic: step aside, so that what gin.Recovery then
				// answers commits nothing.
				c.Writer = gw
			}
		}()
		c.Next()
		returned = true
		w.commit()
		finish() // a no-op once committed; kept for Start's contract
	}
}

// Session returns the session of the request of c, or nil if the request
// did not pass through a [Middleware] (or c is nil). A nil *Session is safe
// to use: its accessors return [sessions.ErrNoSession]. With several
// Managers it returns the innermost one's session; use
// [sessions.Manager.FromContext] on c.Request.Context() for another.
func Session(c *gin.Context) *sessions.Session {
	if c == nil || c.Request == nil {
		return nil
	}
	return sessions.FromContext(c.Request.Context())
}

// writer is the gin.ResponseWriter the handlers write through. Its
// embedded ResponseWriter is the writer it replaced (gin's own, or another
// middleware's); sw is the Manager's writer, which wraps that same writer
// and commits the session before passing the status on.
//
// WriteHeader only records the status, as gin's writer does. The first
// real write commits the session with the recorded status (sw.WriteHeader,
// which hands the status on to gin's writer, where it is recorded again)
// and then writes the headers through sw; if the commit failed, sw has let
// the error handler answer and refuses every later write.
type writer struct {
	gin.ResponseWriter
	sw        http.ResponseWriter
	committed bool  // the session is committed (sw.WriteHeader was called)
	sent      bool  // the headers went out through sw
	err       error // why the response is no longer the handlers' to write
}

var _ gin.ResponseWriter = (*writer)(nil)

// commit commits the session with the recorded status, without writing
// the headers.
func (w *writer) commit() {
	if !w.committed {
		w.committed = true
		w.sw.WriteHeader(w.ResponseWriter.Status())
	}
}

// send commits the session and writes the headers. It reports whether
// the handlers may still write the body: false when the commit failed and
// the error handler answered.
func (w *writer) send() bool {
	w.commit()
	if !w.sent {
		w.sent = true
		_, w.err = w.sw.Write(nil) // writes the headers; fails if the error handler answered
	}
	return w.err == nil
}

// Write commits the session if needed and writes b.
func (w *writer) Write(b []byte) (int, error) {
	if !w.send() {
		return 0, w.err
	}
	return w.sw.Write(b)
}

// WriteString commits the session if needed and writes s.
func (w *writer) WriteString(s string) (int, error) {
	if !w.send() {
		return 0, w.err
	}
	return w.ResponseWriter.WriteString(s)
}

// WriteHeaderNow commits the session if needed and writes the headers.
func (w *writer) WriteHeaderNow() {
	if w.send() {
		w.ResponseWriter.WriteHeaderNow()
	}
}

// Flush commits the session if needed, writes the headers and flushes.
func (w *writer) Flush() {
	if w.send() {
		w.ResponseWriter.Flush()
	}
}

// FlushError is Flush with an error, for [http.ResponseController].
func (w *writer) FlushError() error {
	if !w.send() {
		return w.err
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack commits the session (as a 101) and hands over the connection;
// see [sessions.Manager.Start]. A writer that cannot hijack (HTTP/2, a
// recorder) gives an error wrapping [http.ErrNotSupported] and leaves the
// session uncommitted.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !canHijack(w.ResponseWriter) {
		return nil, nil, fmt.Errorf("ginsessions: hijack: %w", http.ErrNotSupported)
	}
	conn, brw, err := http.NewResponseController(w.sw).Hijack()
	w.committed = true
	if !w.sent {
		w.sent = true
		// After a hijack the connection is the caller's; after a failed
		// commit the error handler answered: either way, this fails.
		_, w.err = w.sw.Write(nil)
	}
	return conn, brw, err
}

// Unwrap returns the writer this one replaced, for [http.ResponseController].
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// canHijack reports whether the connection under rw can be hijacked. A
// gin.ResponseWriter (gin's own, this package's) always offers Hijack, and
// gin's panics when what it wraps cannot, so those are looked through
// where they can be unwrapped, as are other wrappers that are not
// Hijackers themselves.
func canHijack(rw http.ResponseWriter) bool {
	for {
		_, isGin := rw.(gin.ResponseWriter)
		_, isHijacker := rw.(http.Hijacker)
		u, canUnwrap := rw.(interface{ Unwrap() http.ResponseWriter })
		if !canUnwrap || (isHijacker && !isGin) {
			return isHijacker
		}
		rw = u.Unwrap()
	}
}
