// Package demotest runs an example application on a test server, with
// sessions in memory, and talks to it like a browser: a cookie jar and
// redirects followed.
package demotest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// An App is an application under test and a browser-like client of it.
type App struct {
	Store   *memstore.Store
	Manager *sessions.Manager
	t       *testing.T
	srv     *httptest.Server
	url     *url.URL
	client  *http.Client
}

// Start serves build(m) on a plain-HTTP test server, where m keeps its
// sessions in a new memstore (with InsecureCookie, since there is no
// TLS), until the test ends.
func Start(t *testing.T, build func(m *sessions.Manager) http.Handler) *App {
	t.Helper()
	store, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessions.New(store, &sessions.Options{InsecureCookie: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(build(m))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	a := &App{Store: store, Manager: m, t: t, srv: srv, url: u}
	return a.WithCookie("")
}

// WithCookie returns another client of the same application, whose jar
// holds only the session cookie with the value, or nothing if it is "".
func (a *App) WithCookie(value string) *App {
	jar, err := cookiejar.New(nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if value != "" {
		jar.SetCookies(a.url, []*http.Cookie{{Name: a.Manager.CookieName(), Value: value}})
	}
	client := *a.srv.Client() // a copy: the server's client is shared
	client.Jar = jar
	b := *a
	b.client = &client
	return &b
}

// Expect sends a request (form, if not nil, as a POST body), follows
// redirects and fails the test unless the final response has the status
// and body.
func (a *App) Expect(method, path string, form url.Values, status int, body string) {
	a.t.Helper()
	var resp *http.Response
	var err error
	if form != nil || method == http.MethodPost {
		resp, err = a.client.PostForm(a.srv.URL+path, form)
	} else {
		resp, err = a.client.Get(a.srv.URL + path)
	}
	if err != nil {
		a.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode != status || string(b) != body {
		a.t.Fatalf("%s %s: %d %q, want %d %q", method, path, resp.StatusCode, b, status, body)
	}
}

// Cookie returns the value of the session cookie in the client's jar; it
// fails the test unless the jar holds exactly that cookie.
func (a *App) Cookie() string {
	a.t.Helper()
	cs := a.client.Jar.Cookies(a.url)
	if len(cs) != 1 || cs[0].Name != a.Manager.CookieName() {
		a.t.Fatalf("cookie jar holds %v, want one session cookie", cs)
	}
	return cs[0].Value
}
