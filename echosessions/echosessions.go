package echosessions

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/sessionkit/sessions"
)

// Middleware returns echo middleware that gives every request the session
// of m, saves it and sets its cookie just before the response headers are
// written, exactly as [sessions.Manager.Handler] does for net/http.
//
// A handler that returns an error has it rendered by echo's
// HTTPErrorHandler before the session is committed, so the status of the
// error response decides about saving: a returned echo.NewHTTPError(500)
// or plain error saves nothing (with the default [sessions.Options]
// ShouldSave), a 4xx HTTPError saves. The error is then returned up the
// chain, as echo's RequestLogger with HandleError does, so that outer
// middleware (loggers, tracing) still sees it; echo's default
// HTTPErrorHandler ignores it there because the response is committed. A
// custom HTTPErrorHandler must do the same (return early when
// c.Response().Committed), as echo's documentation recommends.
//
// A panic is not recovered here and commits nothing: with echo's Recover
// middleware, before or after this one, the error response it renders is
// a 500 and saves nothing. A [sessions.Session.Destroy] made before the
// panic still removes the cookie then, as it does on every status.
//
// When the session cannot be saved, the Manager's
// [sessions.Options.ErrorHandler] answers instead, and c.Response().Status
// is set to the status it sent, for the middleware outside this one.
//
// Register it with e.Use, on a group or on a route; handlers get the
// session with [Session] or [sessions.FromContext] on c.Request().Context().
// Middleware panics if m is nil.
func Middleware(m *sessions.Manager) echo.MiddlewareFunc {
	if m == nil {
		panic("echosessions: nil *sessions.Manager")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			res := c.Response()
			sent := &statusWriter{ResponseWriter: res.Writer}
			w, r, finish := m.Start(sent, c.Request())
			c.SetRequest(r)
			res.Writer = w
			// The writer stays in place after this function returns: when
			// a panic goes through here, the error response that a Recover
			// middleware further out renders must still commit the session,
			// as a 500.
			err := next(c)
			if err != nil && !res.Committed {
				c.Error(err) // renders through w: the commit sees the error's status
			}
			finish()
			if sent.status != 0 && (!res.Committed || res.Status != sent.status) {
				// The Manager's ErrorHandler replaced the response.
				res.Status, res.Committed = sent.status, true
			}
			return err
		}
	}
}

// Session returns the session of the request in c, as [sessions.FromContext]
// does with c.Request().Context(): the innermost Manager's session, or nil
// if no [Middleware] handled the request. A nil *Session is safe to use: its
// accessors return [sessions.ErrNoSession]. With several Managers, use
// [sessions.Manager.FromContext] to pick one.
func Session(c echo.Context) *sessions.Session {
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

// Unwrap returns the wrapped writer, for [http.ResponseController]: flushing
// and hijacking reach echo's original writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
