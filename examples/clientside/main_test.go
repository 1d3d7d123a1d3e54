package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

var (
	key1 = bytes.Repeat([]byte{1}, 32)
	key2 = bytes.Repeat([]byte{2}, 32)
)

type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
}

func (b *browser) do(method, path string) string {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.url+path, nil)
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		b.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, body)
	}
	return strings.TrimSpace(string(body))
}

// cookie returns the browser's session cookie for srv.
func (b *browser) cookie() string {
	u, _ := url.Parse(b.url)
	for _, c := range b.c.Jar.Cookies(u) {
		return c.Value
	}
	return ""
}

func server(t *testing.T, keys ...[]byte) *httptest.Server {
	t.Helper()
	h, err := newHandler(keys)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestCounterLoginLogout(t *testing.T) {
	srv := server(t, key1)
	b := newBrowser(t, srv)
	for i, want := range []string{"anonymous: 1 views", "anonymous: 2 views"} {
		if got := b.do("GET", "/"); got != want {
			t.Fatalf("view %d: %q, want %q", i+1, got, want)
		}
	}
	before := b.cookie()
	if got := b.do("POST", "/login?user=ann"); got != "logged in as ann" {
		t.Fatal(got)
	}
	if got := b.do("GET", "/"); got != "ann: 3 views" {
		t.Fatalf("after login: %q", got)
	}
	if b.cookie() == before {
		t.Fatal("login kept the cookie")
	}
	if got := b.do("POST", "/logout"); got != "logged out" {
		t.Fatal(got)
	}
	if b.cookie() != "" {
		t.Fatal("logout left the cookie")
	}
	if got := b.do("GET", "/"); got != "anonymous: 1 views" {
		t.Fatalf("after logout: %q", got)
	}
}

// TestRestartAndRotation: another instance with the same key serves the
// same sessions; one whose first key is new still opens them while the old
// key is listed; one without the old key does not.
func TestRestartAndRotation(t *testing.T) {
	b := newBrowser(t, server(t, key1))
	b.do("POST", "/login?user=bob")
	b.do("GET", "/")
	b.url = server(t, key1).URL
	if got := b.do("GET", "/"); got != "bob: 2 views" {
		t.Fatalf("same key, other instance: %q", got)
	}
	b.url = server(t, key2, key1).URL
	if got := b.do("GET", "/"); got != "bob: 3 views" {
		t.Fatalf("rotated key: %q", got)
	}
	b.url = server(t, key2).URL
	if got := b.do("GET", "/"); got != "bob: 4 views" {
		t.Fatalf("after dropping the old key: %q (the rotated instance should have sealed again)", got)
	}
	b.url = server(t, key1).URL
	if got := b.do("GET", "/"); got != "anonymous: 1 views" {
		t.Fatalf("a key that did not seal it: %q", got)
	}
}

func TestKeyFlag(t *testing.T) {
	var k keyFlags
	for _, bad := range []string{"!!", "c2hvcnQ="} {
		if err := k.Set(bad); err == nil {
			t.Errorf("-key %q accepted", bad)
		}
	}
	for _, good := range []string{"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"} {
		if err := k.Set(good); err != nil {
			t.Errorf("-key %q: %v", good, err)
		}
	}
	if len(k) != 2 || !bytes.Equal(k[0], key1) {
		t.Fatalf("keys %v", k)
	}
}
