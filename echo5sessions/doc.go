// Package echo5sessions adapts [github.com/sessionkit/sessions] to echo v5
// (github.com/labstack/echo/v5). Package
// github.com/sessionkit/sessions/echosessions, a module of its own, does
// the same for echo v4; neither brings in the other's echo.
//
// Install [Middleware] and get the session in handlers with [Session]:
//
//	e := echo.New()
//	e.Use(middleware.Recover(), echo5sessions.Middleware(m))
//	var views = sessions.Key[int]("views")
//	e.GET("/", func(c *echo.Context) error {
//		s := echo5sessions.Session(c)
//		n, _, err := views.Get(s)
//		if err == nil {
//			err = views.Set(s, n+1) // saved with the response, if its status is below 500
//		}
//		if err != nil {
//			return echo.NewHTTPError(http.StatusServiceUnavailable, "session unavailable")
//		}
//		return c.String(http.StatusOK, strconv.Itoa(n+1))
//	})
//
// Everything the core package documents holds: sessions are lazy, saved
// once just before the response headers are written, and a change after
// that returns [sessions.ErrCommitted]; flushing the response commits the
// session with the first chunk.
//
// # Why not echo.WrapMiddleware
//
// echo.WrapMiddleware(m.Handler) runs the handler inside m.Handler, so a
// handler that returns an error comes back to m.Handler with nothing
// written: the session is committed as a 200, saving the handler's changes
// and sending its cookie, and only then does echo render the error.
// [Middleware] has echo's HTTPErrorHandler render a returned error first,
// so the session sees the real status, and [sessions.Options.ShouldSave]
// decides as for net/http.
//
// # Returned errors
//
// After rendering it, [Middleware] returns the error up the chain (as
// echo's RequestLogger with HandleError does) so that loggers and tracing
// further out see it. echo's default HTTPErrorHandler does nothing for a
// committed response; a custom one must return early when
// echo.UnwrapResponse(c.Response()) reports Committed, or the error is
// rendered twice.
package echo5sessions
