package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// client is a browser without JavaScript: a cookie jar, redirects not
// followed, and the headers a same-origin form post carries.
type client struct {
	t    *testing.T
	app  *testApp
	http *http.Client
}

func newClient(t *testing.T, app *testApp) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, app: app, http: &http.Client{
		Transport:     app.srv.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request and returns the status, the Location and the body.
func (c *client) do(method, path string, form url.Values) (int, string, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.app.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// The application's forms without a browser: validation, wrong
// passwords, redirects after login, and private pages' cache headers.
func TestForms(t *testing.T) {
	app := startApp(t, true)
	c := newClient(t, app)
	steps := []struct {
		name         string
		method, path string
		form         url.Values
		wantCode     int
		wantLocation string
		wantBody     string
	}{
		{"private page", "GET", "/password", nil, 303, "/login?next=%2Fpassword", ""},
		{"short password", "POST", "/signup", url.Values{"name": {"Cy"}, "email": {"cy@example.com"}, "password": {"short"}}, 422, "", "at least 8 characters"},
		{"sign up", "POST", "/signup", url.Values{"name": {"Cy"}, "email": {"cy@example.com"}, "password": {"cy's password"}}, 303, "/", ""},
		{"home", "GET", "/", nil, 200, "", "Hello, Cy."},
		{"log out", "POST", "/logout", nil, 303, "/login", ""},
		{"email taken", "POST", "/signup", url.Values{"name": {"Cy"}, "email": {"CY@example.com"}, "password": {"cy's password"}}, 422, "", "exists already"},
		{"wrong password", "POST", "/login", url.Values{"email": {"cy@example.com"}, "password": {"wrong password"}}, 401, "", "wrong email address or password"},
		{"unknown email", "POST", "/login", url.Values{"email": {"nobody@example.com"}, "password": {"wrong password"}}, 401, "", "wrong email address or password"},
		{"log in, next elsewhere", "POST", "/login", url.Values{"email": {"cy@example.com"}, "password": {"cy's password"}, "next": {"//evil.example/"}}, 303, "/", ""},
		{"log in, next", "POST", "/login", url.Values{"email": {"cy@example.com"}, "password": {"cy's password"}, "next": {"/devices"}}, 303, "/devices", ""},
		{"login page when logged in", "GET", "/login?next=%2Fdevices", nil, 303, "/devices", ""},
		{"wrong current password", "POST", "/password", url.Values{"current": {"nope nope"}, "new": {"a new password"}}, 422, "", "current password is wrong"},
		{"change password", "POST", "/password", url.Values{"current": {"cy's password"}, "new": {"a new password"}}, 303, "/", ""},
		{"revoke unknown device", "POST", "/devices/revoke", url.Values{"device": {"nope"}}, 303, "/devices", ""},
		{"flash", "GET", "/devices", nil, 200, "", "already logged out"},
	}
	for _, s := range steps {
		code, loc, body := c.do(s.method, s.path, s.form)
		if code != s.wantCode || loc != s.wantLocation || !strings.Contains(body, s.wantBody) {
			t.Fatalf("%s: %d, Location %q, body %.300q; want %d, %q, %q", s.name, code, loc, body, s.wantCode, s.wantLocation, s.wantBody)
		}
	}
	// Private pages are not stored by the browser.
	req, _ := http.NewRequest("GET", app.srv.URL+"/devices", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("devices page: Cache-Control %q, want no-store", cc)
	}
	// A form posted from another origin is refused.
	req, _ = http.NewRequest("POST", app.srv.URL+"/logout", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST /logout: %d, want 403", resp.StatusCode)
	}
}
