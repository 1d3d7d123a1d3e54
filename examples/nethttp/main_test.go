package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// TestLoginCounterLogout runs the application's handler on a test server
// and walks through it with a browser-like client; the steps run in order
// and share the client's cookie jar.
func TestLoginCounterLogout(t *testing.T) {
	store, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessions.New(store, &sessions.Options{InsecureCookie: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler(m))
	defer srv.Close()
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	u, _ := url.Parse(srv.URL)

	var ids []string // the session cookie's value after each step
	for _, step := range []struct {
		method, path, form string
		status             int
		want               string
	}{
		{"GET", "/", "", 200, "anonymous: 1 views\n"},
		{"POST", "/login", "", 400, "name required\n"},
		{"POST", "/login", "name=alice", 200, "alice: 2 views\n"}, // redirected to /
		{"GET", "/", "", 200, "alice: 3 views\n"},
		{"POST", "/logout", "", 200, "anonymous: 1 views\n"}, // a new session after the redirect
		{"GET", "/", "", 200, "anonymous: 2 views\n"},
	} {
		req, err := http.NewRequest(step.method, srv.URL+step.path, strings.NewReader(step.form))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != step.status || string(b) != step.want {
			t.Fatalf("%s %s %s: %d %q, want %d %q", step.method, step.path, step.form, resp.StatusCode, b, step.status, step.want)
		}
		cs := client.Jar.Cookies(u)
		if len(cs) != 1 || cs[0].Name != m.CookieName() {
			t.Fatalf("%s %s: cookie jar holds %v, want one session cookie", step.method, step.path, cs)
		}
		ids = append(ids, cs[0].Value)
	}
	if ids[0] != ids[1] || ids[2] == ids[1] || ids[3] != ids[2] || ids[4] == ids[3] {
		t.Errorf("session IDs %q: want the same until login, a new one at login and after logout", ids)
	}
	// The logged-in session is gone from the store: its cookie now
	// reads as a new, anonymous visitor.
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: m.CookieName(), Value: ids[3]})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "anonymous: 1 views\n" {
		t.Errorf("the logged-out cookie reads %q", b)
	}
}
