//go:build unix

package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Keys for the cookie kinds and the signed-token kind (-key takes the
// secret's UTF-8 bytes, at least 32).
const (
	cookieKey1 = "e2e first key, 32 bytes or more........"
	cookieKey2 = "e2e second key, 32 bytes or more......."
	cookieKey3 = "e2e third key, 32 bytes or more........"
)

// The client-side kinds keep the whole session sealed in its cookie: there
// is no store to count (nor to be unreachable), every write sends a new
// cookie value, and the cases below cannot apply to them. "cookie" has no
// revocation store, so a destroyed or renewed cookie stays valid until its
// own expiry (the documented limitation; TestCookieReplay shows it);
// "cookie-revocation" records ended sessions in a memory store (-revocation
// memory), so the cases where an old cookie must stop working run on it.
// "memory-signed" is the memory store with signed tokens (-key).
func init() {
	common := map[string]string{
		"LogoutAll":         "client-side sessions have no owner index: /logout-all answers 501 (TestCookieLogoutAll)",
		"LogoutAllLive":     "client-side sessions have no owner index: /logout-all answers 501 (TestCookieLogoutAll)",
		"Login":             "its checks go through /logout-all, which answers 501 here; TestCookieReplay covers /login",
		"ConcurrentSet":     "client-side sessions are last-writer-wins by design: the browser keeps the last cookie it was sent",
		"ConcurrentIncr":    "client-side sessions are last-writer-wins by design: the browser keeps the last cookie it was sent",
		"SlowVersusDestroy": "last-writer-wins: a slow write that loaded the session before /destroy seals it again (with revocation, under the revoked ID, which then never loads)",
		"SlowVersusRenew":   "last-writer-wins: a slow write that loaded the session before /renew sends its own cookie",
	}
	without := map[string]string{
		"Destroy": "without -revocation a destroyed cookie stays valid until its own expiry (documented); runs on cookie-revocation, TestCookieReplay",
		"Renew":   "without -revocation a renewed session's old cookie stays valid until its own expiry (documented); runs on cookie-revocation",
		"Expiry":  "it replays a cookie after ending its session with a past deadline, valid without -revocation; runs on cookie-revocation",
	}
	for k, v := range common {
		without[k] = v
	}
	storeKinds = append(storeKinds,
		&storeKind{name: "cookie", persistent: true, sealed: true, skipCases: without,
			setup: func(*testing.T) ([]string, func(*testing.T) int) {
				return []string{"-store", "cookie", "-key", cookieKey1}, nil
			}},
		// persistent: the cookies survive a restart (the memory revocation
		// list does not).
		&storeKind{name: "cookie-revocation", persistent: true, sealed: true, skipCases: common,
			setup: func(*testing.T) ([]string, func(*testing.T) int) {
				return []string{"-store", "cookie", "-key", cookieKey1, "-revocation", "memory"}, nil
			}},
		&storeKind{name: "memory-signed", signed: true,
			setup: func(*testing.T) ([]string, func(*testing.T) int) {
				return []string{"-store", "memory", "-key", cookieKey1}, nil
			}},
	)
}

// latest returns the session cookie value r sent for a client-side kind
// (every write seals the session anew), or tok for the other kinds and
// when r sent none.
func latest(t *testing.T, e *env, a *app, r *result, tok string) string {
	t.Helper()
	if !e.kind.sealed || r.cookie(t, a.name) == nil {
		return tok
	}
	return newSession(t, a, r)
}

// cookieApp starts a client-side app with keys (the first seals) and more
// flags.
func cookieApp(t *testing.T, keys []string, more ...string) *app {
	t.Helper()
	args := []string{"-store", "cookie"}
	for _, k := range keys {
		args = append(args, "-key", k)
	}
	return startApp(t, append(args, more...)...)
}

// noData checks that cookie names no session for a.
func noData(t *testing.T, a *app, cookie, why string) {
	t.Helper()
	for _, p := range []string{"/get?key=a", "/keys"} {
		r := a.do(t, http.MethodGet, p, cookie)
		if r.code >= 500 {
			t.Fatalf("%s: GET %s: %d %q", why, p, r.code, r.body)
		}
		if p == "/keys" {
			want(t, r, http.StatusOK, "[]")
		} else {
			want(t, r, http.StatusNotFound, "not found")
		}
		if c := r.cookie(t, a.name); c != nil && c.Value != "" {
			t.Fatalf("%s: GET %s sent a session cookie", why, p)
		}
	}
}

// TestCookieTampering: a sealed cookie that was changed in any way, or
// sealed for another cookie name or with another key, is no session: no
// 5xx, no cookie on reads, and a write starts an empty session.
func TestCookieTampering(t *testing.T) {
	t.Parallel()
	a := cookieApp(t, []string{cookieKey1}, "-insecure")
	live := newSession(t, a, a.get(t, "/set?key=a&value=%22secret%22", ""))
	want(t, a.get(t, "/get?key=a", live), http.StatusOK, `"secret"`)
	flip := func(i int) string {
		b := []byte(live)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other := cookieApp(t, []string{cookieKey2}, "-insecure")
	otherName := cookieApp(t, []string{cookieKey1}, "-insecure", "-cookie-name", "other")
	fromOther := newSession(t, other, other.get(t, "/set?key=a&value=1", ""))
	fromOtherName := newSession(t, otherName, otherName.get(t, "/set?key=a&value=1", ""))
	for _, tc := range []struct{ name, value string }{
		{"version byte", flip(0)},
		{"key id", flip(2)},
		{"salt", flip(10)},
		{"nonce", flip(40)},
		{"ciphertext", flip(len(live) / 2)},
		{"tag", flip(len(live) - 2)},
		{"truncated by one", live[:len(live)-1]},
		{"truncated by four", live[:len(live)-4]},
		{"extended", live + "AAAA"},
		{"padded", live + "="},
		{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(live) + "+/"},
		{"sealed with another key", fromOther},
		{"sealed under another cookie name", fromOtherName},
		{"header only", live[:44]},
		{"5 KB", live + strings.Repeat("A", 5000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noData(t, a, a.name+"="+tc.value, tc.name)
			r := a.get(t, "/set?key=b&value=2", tc.value)
			wantCode(t, r, http.StatusOK)
			fresh := newSession(t, a, r)
			want(t, a.get(t, "/keys", fresh), http.StatusOK, `["b"]`)
		})
	}
	// The other app's own cookie does not open here either way round.
	noData(t, other, other.name+"="+live, "a cookie sealed with another key")
	want(t, a.get(t, "/get?key=a", live), http.StatusOK, `"secret"`)
}

// TestCookieRotation: restarting with a new first key keeps the sessions
// sealed with the old one (listed second), and seals them again with the
// new key on their next response; once the old key is dropped, only the
// re-sealed cookies open.
func TestCookieRotation(t *testing.T) {
	t.Parallel()
	a := cookieApp(t, []string{cookieKey1})
	old := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	untouched := newSession(t, a, a.get(t, "/set?key=a&value=2", ""))
	a.stop()

	b := cookieApp(t, []string{cookieKey2, cookieKey1})
	want(t, b.get(t, "/get?key=a", untouched), http.StatusOK, "2")
	r := b.get(t, "/set?key=b&value=3", old)
	want(t, r, http.StatusOK, "ok")
	resealed := newSession(t, b, r)
	// A read of an old-key cookie re-seals it too.
	r = b.get(t, "/get?key=a", untouched)
	want(t, r, http.StatusOK, "2")
	readResealed := newSession(t, b, r)
	b.stop()

	c := cookieApp(t, []string{cookieKey2})
	want(t, c.get(t, "/keys", resealed), http.StatusOK, `["a","b"]`)
	want(t, c.get(t, "/get?key=a", readResealed), http.StatusOK, "2")
	noData(t, c, c.name+"="+old, "a cookie sealed with a dropped key")
	noData(t, c, c.name+"="+untouched, "a cookie sealed with a dropped key")

	// The first key seals: an app whose first key is the third does not
	// open cookies of the second, and vice versa.
	d := cookieApp(t, []string{cookieKey3, cookieKey2})
	r = d.get(t, "/set?key=c&value=4", resealed)
	want(t, r, http.StatusOK, "ok")
	fromD := newSession(t, d, r)
	noData(t, c, c.name+"="+fromD, "a cookie sealed with a key the app does not have")
}

// TestCookieTooLarge: a write whose cookie would exceed 4096 bytes (name and
// value) answers 500 with no Set-Cookie, and the previous cookie stays valid
// with its data; every cookie sent fits.
func TestCookieTooLarge(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "a-rather-long-session-cookie-name-" + strings.Repeat("n", 200)} {
		t.Run(fmt.Sprintf("name of %d", len(name)), func(t *testing.T) {
			t.Parallel()
			var more []string
			if name != "" {
				more = []string{"-cookie-name", name}
			}
			a := cookieApp(t, []string{cookieKey1}, more...)
			c := newClient(a)
			// Fill the session 500 bytes at a time until a write is refused.
			chunk := strconv.Quote(strings.Repeat("x", 500))
			n, prev := 0, ""
			for ; n < 20; n++ {
				r := c.post(t, fmt.Sprintf("/set?key=k%02d&value=%s", n, url.QueryEscape(chunk)))
				if r.code != http.StatusOK {
					want(t, r, http.StatusInternalServerError, r.body)
					noSetCookie(t, r)
					break
				}
				ck := r.cookie(t, a.name)
				if ck == nil {
					t.Fatalf("write %d: no cookie", n)
				}
				if l := len(ck.Name) + 1 + len(ck.Value); l > 4096 {
					t.Fatalf("write %d: a cookie of %d bytes (name and value), browsers drop it", n, l)
				}
				prev = ck.Value
			}
			if n == 0 || n == 20 {
				t.Fatalf("%d writes of 500 bytes fit in the cookie; want a refusal before 4096 bytes", n)
			}
			t.Logf("cookie name of %d bytes: %d values of 500 bytes fit, the last cookie had %d bytes", len(a.name), n, len(a.name)+1+len(prev))
			// The jar kept the previous cookie, which still holds every key.
			if c.token() != prev {
				t.Fatal("the jar's cookie changed on a refused write")
			}
			r := c.get(t, "/keys")
			wantCode(t, r, http.StatusOK)
			if got := strings.Count(r.body, `"k`); got != n {
				t.Fatalf("after the refused write: /keys %q, want %d keys", r.body, n)
			}
			// A value too large from the start creates nothing.
			r = a.post(t, "/set?key=big&value="+url.QueryEscape(strconv.Quote(strings.Repeat("y", 5000))))
			wantCode(t, r, http.StatusInternalServerError)
			noSetCookie(t, r)
			// A smaller write still works on the full session.
			want(t, c.post(t, "/delete?key=k00"), http.StatusOK, "ok")
			want(t, c.post(t, "/set?key=small&value=1"), http.StatusOK, "ok")
		})
	}
}

// TestCookieReplay: without a revocation store, a cookie copied before
// /destroy, /renew or /login stays valid until its own expiry (the
// documented limitation); with -revocation memory, it is refused.
func TestCookieReplay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		more  []string
		valid bool
	}{
		{"without revocation", nil, true},
		{"with revocation", []string{"-revocation", "memory"}, false},
		{"with revocation in sqlite", []string{"-revocation", "sqlite", "-dsn", "SQLITE"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for i, s := range tc.more {
				if s == "SQLITE" {
					tc.more[i] = t.TempDir() + "/revoked.db"
				}
			}
			a := cookieApp(t, []string{cookieKey1}, tc.more...)
			for _, end := range []string{"/destroy", "/renew", "/login?user=u"} {
				copied := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
				r := a.get(t, end, copied)
				wantCode(t, r, http.StatusOK)
				if end == "/destroy" {
					if ck := r.cookie(t, a.name); ck == nil || ck.Value != "" || ck.MaxAge >= 0 {
						t.Fatalf("/destroy: want a removal cookie, got %q", r.header.Values("Set-Cookie"))
					}
				} else {
					renewed := newSession(t, a, r)
					want(t, a.get(t, "/get?key=a", renewed), http.StatusOK, "1")
				}
				if tc.valid {
					want(t, a.get(t, "/get?key=a", copied), http.StatusOK, "1")
					continue
				}
				noSession(t, a, copied)
				// A write with the revoked cookie starts an empty session.
				r = a.get(t, "/set?key=b&value=2", copied)
				wantCode(t, r, http.StatusOK)
				want(t, a.get(t, "/keys", newSession(t, a, r)), http.StatusOK, `["b"]`)
			}
		})
	}
}

// TestCookieLogoutAll: /logout-all answers 501 with the cookie kind.
func TestCookieLogoutAll(t *testing.T) {
	t.Parallel()
	a := cookieApp(t, []string{cookieKey1})
	tok := newSession(t, a, a.get(t, "/login?user=u", ""))
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		r := a.do(t, method, "/logout-all?user=u", a.name+"="+tok)
		wantCode(t, r, http.StatusNotImplemented)
		noSetCookie(t, r)
	}
	want(t, a.get(t, "/get?key=a", tok), http.StatusNotFound, "not found")
	want(t, a.get(t, "/keys", tok), http.StatusOK, "[]")
	r := a.get(t, "/set?key=a&value=1", tok)
	wantCode(t, r, http.StatusOK)
	want(t, a.get(t, "/get?key=a", newSession(t, a, r)), http.StatusOK, "1")
}

// TestNoStoreCall shows from outside that a request with a cookie that
// does not verify costs no store call: with the store down, it answers
// like "no session" (a store call would have failed it with a 5xx). That
// holds for signed tokens on a server-side store, and for client-side
// sessions with a revocation store; a valid cookie does need the store,
// and fails instead.
func TestNoStoreCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		flags  func(dsn string) []string
		forged func(live string) []string
	}{
		{"signed tokens", func(dsn string) []string {
			return []string{"-store", "redis", "-dsn", dsn, "-key", cookieKey1}
		}, func(live string) []string {
			tok, _, _ := strings.Cut(live, ".")
			var out []string
			for range 200 {
				out = append(out, randomToken()+"."+randomToken()[:27])
			}
			return append(out, tok, randomToken(), otherLast(live), tok+"."+strings.Repeat("A", 27))
		}},
		{"client-side with revocation", func(dsn string) []string {
			return []string{"-store", "cookie", "-key", cookieKey1, "-revocation", "redis", "-dsn", dsn}
		}, func(live string) []string {
			var out []string
			for range 200 {
				out = append(out, randomToken()+randomToken()+randomToken())
			}
			return append(out, otherLast(live), randomToken())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startRedisServer(t, false)
			a := startApp(t, tc.flags(srv.url())...)
			live := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
			want(t, a.get(t, "/get?key=a", live), http.StatusOK, "1")
			srv.kill()
			// Control: the live cookie needs the store, which is down.
			if r := a.get(t, "/get?key=a", live); r.code < 500 {
				t.Fatalf("GET /get with a live cookie and the store down: %d %q, want a 5xx (the test cannot see store calls otherwise)", r.code, r.body)
			}
			start := time.Now()
			forged := tc.forged(live)
			for _, v := range forged {
				r := a.get(t, "/get?key=a", v)
				if r.code != http.StatusNotFound {
					t.Fatalf("GET /get with the forged cookie %.40q and the store down: %d %q; want 404 without a store call", v, r.code, r.body)
				}
				noSetCookie(t, r)
			}
			t.Logf("%d forged cookies answered without the store in %v", len(forged), time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestSignedTokenUnsigned: with -key on a server-side store, a session
// whose cookie was issued without it (an unsigned token) is not adopted,
// and a signed token sent without its signature is no session either.
func TestSignedTokenUnsigned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flags := []string{"-store", "sqlite", "-dsn", dir + "/s.db"}
	a := startApp(t, flags...)
	plain := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	a.stop()
	b := startApp(t, append(flags, "-key", cookieKey1)...)
	noSession(t, b, plain)
	signed := newSession(t, b, b.get(t, "/set?key=a&value=2", ""))
	tok, _, _ := strings.Cut(signed, ".")
	noSession(t, b, tok)
	want(t, b.get(t, "/get?key=a", signed), http.StatusOK, "2")
	b.stop()
	// Rotation: a new first key keeps the old signature valid and signs
	// again on the next response.
	c := startApp(t, append(flags, "-key", cookieKey2, "-key", cookieKey1)...)
	r := c.get(t, "/get?key=a", signed)
	want(t, r, http.StatusOK, "2")
	resigned := newSession(t, c, r)
	if resigned == signed || !strings.HasPrefix(resigned, tok+".") {
		t.Fatalf("a token signed with the second key was not signed again with the first (got %q from %q)", resigned, signed)
	}
}

// otherLast returns v with its last character replaced by another one.
func otherLast(v string) string {
	if strings.HasSuffix(v, "A") {
		return v[:len(v)-1] + "B"
	}
	return v[:len(v)-1] + "A"
}
