//go:build unix

package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// transport is shared by every request of the suite.
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	t.Proxy = nil
	return t
}()

var httpClient = &http.Client{
	Transport: transport,
	Timeout:   40 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// result is one response, read in full.
type result struct {
	method, path string
	code         int
	body         string
	header       http.Header
	elapsed      time.Duration
}

// setCookies returns the response's Set-Cookie headers, parsed.
func (r *result) setCookies() []*http.Cookie {
	return (&http.Response{Header: r.header}).Cookies()
}

// cookie returns the Set-Cookie for name, or nil. It fails t if there are
// several.
func (r *result) cookie(t *testing.T, name string) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, c := range r.setCookies() {
		if c.Name == name {
			if found != nil {
				t.Fatalf("%s %s: two Set-Cookie headers for %q: %q", r.method, r.path, name, r.header.Values("Set-Cookie"))
			}
			found = c
		}
	}
	return found
}

// do sends one request. cookieHeaders become Cookie header lines, one each,
// exactly as given.
func (a *app) do(t *testing.T, method, path string, cookieHeaders ...string) *result {
	t.Helper()
	for _, h := range cookieHeaders {
		if strings.ContainsFunc(h, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return a.doRaw(t, method, path, cookieHeaders...)
		}
	}
	req, err := http.NewRequest(method, a.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		// Parameters travel in the body, as a form.
		u, _ := url.Parse(a.url + path)
		req, err = http.NewRequest(method, a.url+u.Path, strings.NewReader(u.RawQuery))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range cookieHeaders {
		req.Header.Add("Cookie", h)
	}
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return &result{method: method, path: path, code: resp.StatusCode, body: string(body), header: resp.Header, elapsed: time.Since(start)}
}

// doRaw sends a request over a fresh connection, with the Cookie header
// lines written byte for byte (net/http refuses to send control bytes).
func (a *app) doRaw(t *testing.T, method, path string, cookieHeaders ...string) *result {
	t.Helper()
	host := strings.TrimPrefix(a.url, "http://")
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(40 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, host)
	for _, h := range cookieHeaders {
		fmt.Fprintf(&b, "Cookie: %s\r\n", h)
	}
	b.WriteString("\r\n")
	start := time.Now()
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	req, _ := http.NewRequest(method, a.url+path, nil)
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: reading the response: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return &result{method: method, path: path, code: resp.StatusCode, body: string(body), header: resp.Header, elapsed: time.Since(start)}
}

// get sends a GET with the session cookie token (none if token is "").
func (a *app) get(t *testing.T, path, token string) *result {
	t.Helper()
	if token == "" {
		return a.do(t, http.MethodGet, path)
	}
	return a.do(t, http.MethodGet, path, a.name+"="+token)
}

// client is a browser-like client of one app: a cookie jar that sees the
// app as a secure origin (so that Secure and __Host- cookies are kept and
// sent, as a browser would over HTTPS) while requests go over plain HTTP.
type client struct {
	a   *app
	jar *cookiejar.Jar
}

func newClient(a *app) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	return &client{a: a, jar: jar}
}

// secureURL is the https:// twin of the app URL for path, for the jar.
func (c *client) secureURL(path string) *url.URL {
	u, err := url.Parse(c.a.url + path)
	if err != nil {
		panic(err)
	}
	u.Scheme = "https"
	return u
}

// get sends a GET with the jar's cookies and stores the response's.
func (c *client) get(t *testing.T, path string) *result {
	t.Helper()
	return c.send(t, http.MethodGet, path)
}

// post sends the parameters of path as a form body.
func (c *client) post(t *testing.T, path string) *result {
	t.Helper()
	return c.send(t, http.MethodPost, path)
}

func (c *client) send(t *testing.T, method, path string) *result {
	t.Helper()
	u := c.secureURL(path)
	var headers []string
	if cs := c.jar.Cookies(u); len(cs) > 0 {
		parts := make([]string, len(cs))
		for i, ck := range cs {
			parts[i] = ck.Name + "=" + ck.Value
		}
		headers = append(headers, strings.Join(parts, "; "))
	}
	r := c.a.do(t, method, path, headers...)
	c.jar.SetCookies(u, r.setCookies())
	return r
}

// token returns the session cookie's value in the jar, "" if none.
func (c *client) token() string {
	for _, ck := range c.jar.Cookies(c.secureURL("/")) {
		if ck.Name == c.a.name {
			return ck.Value
		}
	}
	return ""
}

// randomToken returns a well-formed session token (32 random bytes in
// unpadded base64url) that no session has.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// want checks the status and body of r.
func want(t *testing.T, r *result, code int, body string) {
	t.Helper()
	if r.code != code || r.body != body {
		t.Fatalf("%s %s: got %d %q, want %d %q", r.method, r.path, r.code, r.body, code, body)
	}
}

// wantCode checks the status of r.
func wantCode(t *testing.T, r *result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s %s: got %d %q, want status %d", r.method, r.path, r.code, r.body, code)
	}
}

// noSetCookie checks that r sets no cookie at all.
func noSetCookie(t *testing.T, r *result) {
	t.Helper()
	if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
		t.Fatalf("%s %s: unexpected Set-Cookie %q", r.method, r.path, sc)
	}
}

// newSession checks that r sets a fresh session cookie and returns its token.
func newSession(t *testing.T, a *app, r *result) string {
	t.Helper()
	c := r.cookie(t, a.name)
	if c == nil || c.Value == "" {
		t.Fatalf("%s %s: no session cookie %q in %q", r.method, r.path, a.name, r.header.Values("Set-Cookie"))
	}
	switch {
	case a.sealed:
		// A sealed session (docs/cookie-format.md): header, id, expiry,
		// record and tag, within the 4096 bytes browsers keep.
		if len(c.Value) < 110 || len(a.name)+1+len(c.Value) > 4096 {
			t.Fatalf("%s %s: sealed cookie of %d characters", r.method, r.path, len(c.Value))
		}
	case a.signed:
		tok, sig, ok := strings.Cut(c.Value, ".")
		if !ok || len(tok) != 43 || len(sig) != 27 {
			t.Fatalf("%s %s: signed token %q is not 43 characters, a dot and 27", r.method, r.path, c.Value)
		}
		if _, err := base64.RawURLEncoding.DecodeString(sig); err != nil {
			t.Fatalf("%s %s: signed token %q: signature is not base64url: %v", r.method, r.path, c.Value, err)
		}
		if _, err := base64.RawURLEncoding.DecodeString(tok); err != nil {
			t.Fatalf("%s %s: signed token %q is not base64url: %v", r.method, r.path, c.Value, err)
		}
		return c.Value
	case len(c.Value) != 43:
		t.Fatalf("%s %s: session token %q is not 43 characters", r.method, r.path, c.Value)
	}
	if _, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil {
		t.Fatalf("%s %s: session token %q is not base64url: %v", r.method, r.path, c.Value, err)
	}
	return c.Value
}

// noSession checks that token names no session: it reads as empty and sets
// no cookie.
func noSession(t *testing.T, a *app, token string) {
	t.Helper()
	r := a.get(t, "/keys", token)
	want(t, r, http.StatusOK, "[]")
	if c := r.cookie(t, a.name); c != nil && c.Value != "" {
		t.Fatalf("GET /keys with a dead token: got a session cookie %q", c.String())
	}
}

// noCookieWith checks that r does not send the session cookie with value
// token ("" for a removal cookie).
func noCookieWith(t *testing.T, a *app, r *result, token string) {
	t.Helper()
	if c := r.cookie(t, a.name); c != nil && c.Value == token {
		t.Fatalf("%s %s: re-sent the session cookie with the old value: %q", r.method, r.path, c.String())
	}
}
