package main

import (
	"net/url"
	"testing"

	"github.com/sessionkit/sessions/examples/internal/demotest"
)

// TestLoginCounterLogout runs the application's router on a test server
// and walks through it with a browser-like client.
func TestLoginCounterLogout(t *testing.T) {
	a := demotest.Start(t, router)

	a.Expect("GET", "/", nil, 200, "anonymous: 1 views\n")
	anon := a.Cookie()
	a.Expect("GET", "/account/", nil, 401, "log in first\n")

	a.Expect("POST", "/login", url.Values{"name": {"alice"}}, 200, "alice: 2 views\n") // redirected to /
	alice := a.Cookie()
	if alice == anon {
		t.Fatal("login kept the session ID")
	}
	a.WithCookie(anon).Expect("GET", "/account/", nil, 401, "log in first\n") // the pre-login ID is worthless
	a.Expect("GET", "/", nil, 200, "alice: 3 views\n")
	a.Expect("GET", "/account/", nil, 200, "account of alice\n")

	a.Expect("POST", "/logout", nil, 200, "anonymous: 1 views\n") // a new session after the redirect
	a.WithCookie(alice).Expect("GET", "/account/", nil, 401, "log in first\n")
	if n := a.Store.Len(); n != 1 {
		t.Errorf("store holds %d records, want 1 (the anonymous session after logout)", n)
	}
}
