package echo5sessions

import (
	"net/http"

	"github.com/labstack/echo/v5"
	"github.com/sessionkit/sessions"
)

// Middleware returns echo middleware that gives every request the session
// of m, saves it and sets its cookie just before the response headers are
// written, exactly as [sessions.Manager.Handler] does for net/http.
//
// A handler that returns an error has it rendered by echo's
// HTTPErrorHandler before the session is committed, so the status of the
// error response decides about saving: a returned
// echo.ErrInternalServerError or plain error saves nothing (with the
// default [sessions.Options] ShouldSave), a 4xx error saves. The error is
// then returned up the chain, as echo's RequestLogger with HandleError
// does, so that outer middleware still sees it; echo's default
// HTTPErrorHandler ignores it there because the response is committed. A
// custom HTTPErrorHandler must do the same (return early when
// echo.UnwrapResponse(c.Response()) is committed).
//
// A panic is not recovered here and commits nothing: echo's Recover
// middleware, before or after this one, turns it into an error whose 500
// response saves nothing. A [sessions.Session.Destroy] made before the
// panic still removes the cookie then, as it does on every status.
//
// Under a middleware whose writer hides echo's Response (one without an
// Unwrap method), Middleware commits on top of that writer and, having
// rendered an error, returns nil instead, since nothing further out could
// tell that the response is committed.
//
// When the session cannot be saved, the Manager's
// [sessions.Options.ErrorHandler] answers instead, and the echo Response's
// Status is set to the status it sent, for the middleware outside this
// one.
//
// Register it with e.Use, on a group or on a route; handlers get the
// session with [Session] or [sessions.FromContext] on c.Request().Context().
// Middleware panics if m is nil.
func Middleware(m *sessions.Manager) echo.MiddlewareFunc {
	if m == nil {
		panic("echo5sessions: nil *sessions.Manager")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			res, uerr := echo.UnwrapResponse(c.Response())
			var sent *statusWriter
			if uerr == nil {
				// Commit beneath echo's Response, so that its Before hooks
				// run first and it keeps track of Status and Committed.
				// The writer stays in place after this function returns:
				// when a panic goes through here, the error response that a
				// Recover middleware further out leads to must still commit
				// the session, as a 500.
				sent = &statusWriter{ResponseWriter: res.ResponseWriter}
				w, r, finish := m.Start(sent, c.Request())
				c.SetRequest(r)
				res.ResponseWriter = w
				return run(c, next, finish, res, sent)
			}
			// Another middleware put a writer that hides echo's Response:
			// commit on top of it.
			sent = &statusWriter{ResponseWriter: c.Response()}
			w, r, finish := m.Start(sent, c.Request())
			c.SetRequest(r)
			c.SetResponse(w)
			return run(c, next, finish, nil, sent)
		}
	}
}

// run runs next, has echo render the error it returns while the response
// is not committed, commits the session and makes res agree with what
// went out.
func run(c *echo.Context, next echo.HandlerFunc, finish func(), res *echo.Response, sent *statusWriter) error {
	err := next(c)
	rendered := false
	if err != nil && sent.status == 0 && (res == nil || !res.Committed) {
		c.Echo().HTTPErrorHandler(c, err) // renders through the session's writer
		rendered = true
	}
	finish()
	if res == nil {
		if rendered {
			// Without echo's Response nobody further out can tell that
			// the response is committed: do not have the error rendered
			// again.
			return nil
		}
		return err
	}
	if sent.status != 0 && (!res.Committed || res.Status != sent.status) {
		// The Manager's ErrorHandler replaced the response.
		res.Status, res.Committed = sent.status, true
	}
	return err
}

// Session returns the session of the request in c, as [sessions.FromContext]
// does with c.Request().Context(): the innermost Manager's session, or nil
// if no [Middleware] handled the request. A nil *Session is safe to use: its
// accessors return [sessions.ErrNoSession]. With several Managers, use
// [sessions.Manager.FromContext] to pick one.
func Session(c *echo.Context) *sessions.Session {
	if c == nil {
		return nil
	}
	r := c.Request()
	if r == nil {
		return nil
	}
	return sessions.FromContext(r.Context())
}

// statusWriter records the status of the response that actually went out,
// which differs from echo's view when the Manager's ErrorHandler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the wrapped writer, for [http.ResponseController] and
// echo.UnwrapResponse.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
