package echo5sessions_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/echo5sessions"
	"github.com/sessionkit/sessions/memstore"
)

// A visit counter in echo. The request to /fail counts a visit, then
// returns an error: echo renders it as a 500 before the session is
// committed, so that visit is not saved.
func Example() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.New(store, nil) // the zero Options are the secure defaults
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.Use(middleware.Recover(), echo5sessions.Middleware(m))
	visits := sessions.Key[int]("visits")
	// count records one more visit; it is saved with the response, if the
	// response's status lets it (below 500 by default).
	count := func(c *echo.Context) (int, error) {
		s := echo5sessions.Session(c)
		n, _, err := visits.Get(s)
		if err != nil {
			return 0, err
		}
		return n + 1, visits.Set(s, n+1)
	}
	e.GET("/", func(c *echo.Context) error {
		n, err := count(c)
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "session unavailable")
		}
		return c.String(http.StatusOK, "visit "+strconv.Itoa(n))
	})
	e.GET("/fail", func(c *echo.Context) error {
		if _, err := count(c); err != nil {
			return err
		}
		return echo.NewHTTPError(http.StatusInternalServerError, "something broke")
	})
	srv := httptest.NewTLSServer(e) // the cookie is Secure: serve TLS
	defer srv.Close()

	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	for _, path := range []string{"/", "/", "/fail", "/"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %d %s\n", path, resp.StatusCode, body)
	}
	// Output:
	// /: 200 visit 1
	// /: 200 visit 2
	// /fail: 500 {"message":"something broke"}
	//
	// /: 200 visit 3
}
