package main

import (
	"net/url"
	"testing"

	"github.com/sessionkit/sessions/examples/internal/demotest"
)

// TestLoginCounterLogout runs the application's handler on a test server
// and walks through it with a browser-like client; the steps run in order
// and share the client's cookie jar.
func TestLoginCounterLogout(t *testing.T) {
	a := demotest.Start(t, handler)
	var ids []string // the session cookie after each step
	for _, step := range []struct {
		method, path string
		form         url.Values
		status       int
		want         string
	}{
		{"GET", "/", nil, 200, "anonymous: 1 views\n"},
		{"POST", "/login", url.Values{}, 400, "name required\n"},
		{"POST", "/login", url.Values{"name": {"alice"}}, 200, "alice: 2 views\n"}, // redirected to /
		{"GET", "/", nil, 200, "alice: 3 views\n"},
		{"POST", "/logout", nil, 200, "anonymous: 1 views\n"}, // a new session after the redirect
		{"GET", "/", nil, 200, "anonymous: 2 views\n"},
	} {
		a.Expect(step.method, step.path, step.form, step.status, step.want)
		ids = append(ids, a.Cookie())
	}
	if ids[0] != ids[1] || ids[2] == ids[1] || ids[3] != ids[2] || ids[4] == ids[3] {
		t.Errorf("session IDs %q: want the same until login, a new one at login and after logout", ids)
	}
	// The logged-in session is gone from the store: its cookie now reads
	// as a new, anonymous visitor.
	a.WithCookie(ids[3]).Expect("GET", "/", nil, 200, "anonymous: 1 views\n")
}
