package ginsessions_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"

	"github.com/gin-gonic/gin"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/ginsessions"
	"github.com/sessionkit/sessions/memstore"
)

// A gin application with login, a counter and logout; a browser-like
// client with a cookie jar calls it.
func Example() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.New(store, nil) // the secure defaults
	if err != nil {
		log.Fatal(err)
	}
	user := sessions.Key[string]("user")
	views := sessions.Key[int]("views")

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery(), ginsessions.Middleware(m))
	r.POST("/login", func(c *gin.Context) {
		s := ginsessions.Session(c)
		name := c.PostForm("name")
		// A new ID at every privilege change; the owner enables "log out everywhere".
		if err := s.RenewAfterLogin(name); err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		if err := user.Set(s, name); err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		c.String(http.StatusOK, "hello %s", name)
	})
	r.GET("/count", func(c *gin.Context) {
		s := ginsessions.Session(c)
		name, _, err := user.Get(s)
		if err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		n, err := views.Update(s, func(n int) int { return n + 1 })
		if err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		c.String(http.StatusOK, "%s: %d", name, n)
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := ginsessions.Session(c).Destroy(); err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		c.String(http.StatusOK, "bye")
	})

	srv := httptest.NewTLSServer(r) // the cookie is Secure: serve TLS
	defer srv.Close()
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	do := func(method, path string, form url.Values) {
		var resp *http.Response
		var err error
		if method == http.MethodPost {
			resp, err = client.PostForm(srv.URL+path, form)
		} else {
			resp, err = client.Get(srv.URL + path)
		}
		if err != nil {
			log.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %s: %s\n", method, path, b)
	}
	do("POST", "/login", url.Values{"name": {"alice"}})
	do("GET", "/count", nil)
	do("GET", "/count", nil)
	do("POST", "/logout", nil)
	do("GET", "/count", nil)
	// Output:
	// POST /login: hello alice
	// GET /count: alice: 1
	// GET /count: alice: 2
	// POST /logout: bye
	// GET /count: : 1
}
