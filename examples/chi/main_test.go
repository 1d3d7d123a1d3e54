package main

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

// TestLoginCounterLogout runs the application's router on a test server
// and walks through it with a browser-like client.
func TestLoginCounterLogout(t *testing.T) {
	store, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessions.New(store, &sessions.Options{InsecureCookie: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router(m))
	defer srv.Close()
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	u, _ := url.Parse(srv.URL)

	// do sends a request with client (following redirects) and checks
	// the final status and body.
	do := func(client *http.Client, method, path string, form url.Values, status int, want string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == http.MethodPost {
			resp, err = client.PostForm(srv.URL+path, form)
		} else {
			resp, err = client.Get(srv.URL + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status || string(b) != want {
			t.Fatalf("%s %s: %d %q, want %d %q", method, path, resp.StatusCode, b, status, want)
		}
	}
	cookie := func() *http.Cookie {
		t.Helper()
		cs := client.Jar.Cookies(u)
		if len(cs) != 1 || cs[0].Name != m.CookieName() {
			t.Fatalf("cookie jar holds %v, want one session cookie", cs)
		}
		return cs[0]
	}
	// fresh is a client without the jar, sending only cookie c.
	fresh := func(c *http.Cookie) *http.Client {
		jar, _ := cookiejar.New(nil)
		jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value}})
		return &http.Client{Jar: jar}
	}

	do(client, "GET", "/", nil, 200, "anonymous: 1 views\n")
	anon := cookie()
	do(client, "GET", "/account/", nil, 401, "log in first\n")

	do(client, "POST", "/login", url.Values{"name": {"alice"}}, 200, "alice: 2 views\n")
	alice := cookie()
	if alice.Value == anon.Value {
		t.Fatal("login kept the session ID")
	}
	do(fresh(anon), "GET", "/account/", nil, 401, "log in first\n") // the pre-login ID is worthless
	do(client, "GET", "/", nil, 200, "alice: 3 views\n")
	do(client, "GET", "/account/", nil, 200, "account of alice\n")

	do(client, "POST", "/logout", nil, 200, "anonymous: 1 views\n")
	do(fresh(alice), "GET", "/account/", nil, 401, "log in first\n") // the logged-out ID too
	if n := store.Len(); n != 1 {
		t.Errorf("store holds %d records, want 1 (the anonymous session after logout)", n)
	}
}
