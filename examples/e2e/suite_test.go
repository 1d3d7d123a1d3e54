//go:build unix

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A testCase runs against one store kind, on storage of its own.
type testCase struct {
	name string
	run  func(t *testing.T, e *env)
	// bare: the case gets an env without storage (its subtests make their
	// own with env.fresh, or it needs none), so that a parent never holds
	// storage that its parallel subtests wait for.
	bare bool
	// skip, if set, returns why the case does not apply to a kind.
	skip func(k *storeKind) string
}

// cases is the suite every store kind runs.
var cases = []testCase{
	{"Untouched", testUntouched, true, nil},
	{"CookieDefault", testCookieDefault, false, nil},
	{"CookieFlags", testCookieFlags, false, nil},
	{"RefusedFlags", testRefusedFlags, true, nil},
	{"SetGet", testSetGet, false, nil},
	{"DeleteKeysClear", testDeleteKeysClear, false, nil},
	{"Incr", testIncr, false, nil},
	{"Destroy", testDestroy, false, nil},
	{"Renew", testRenew, false, nil},
	{"Status", testStatus, false, nil},
	{"Expiry", testExpiry, false, nil},
	{"ExpiryValidation", testExpiryValidation, false, nil},
	{"Login", testLogin, false, nil},
	{"LogoutAll", testLogoutAll, false, nil},
	{"LogoutAllLive", testLogoutAllLive, false, nil},
	{"Fixation", testFixation, false, nil},
	{"MalformedCookies", testMalformedCookies, false, nil},
	{"CookieSelection", testCookieSelection, false, nil},
	{"IdleTimeout", testIdleTimeout, false, nil},
	{"AbsoluteLifetime", testAbsoluteLifetime, false, nil},
	{"PerSessionOverride", testPerSessionOverride, false, nil},
	{"ReadsAreActivity", testReadsAreActivity, false, nil},
	{"ConcurrentSet", testConcurrentSet, true, nil},
	{"ConcurrentIncr", testConcurrentIncr, false, nil},
	{"SlowVersusDestroy", testSlowVersusDestroy, true, nil},
	{"SlowVersusRenew", testSlowVersusRenew, true, nil},
	{"Restart", testRestart, false, nil},
	{"ConcurrentStart", testConcurrentStart, false, multiProcess},
	{"Shutdown", testShutdown, true, nil},
	{"Unreachable", testUnreachable, true, func(k *storeKind) string {
		if k.unreachable == nil {
			return "no store to be unreachable"
		}
		return ""
	}},
	{"OutagePaused", testOutagePaused, true, noOutage},
	{"OutageKilled", testOutageKilled, true, noOutage},
	{"CacheInstances", testCacheInstances, false, func(k *storeKind) string {
		if !k.cache {
			return "not a cache store"
		}
		return multiProcess(k)
	}},
}

// multiProcess skips the cases that run several instances on one store
// for stores that one process owns at a time.
func multiProcess(k *storeKind) string {
	if k.singleProcess {
		return "one process at a time owns the store"
	}
	return ""
}

// noOutage skips the outage cases for stores that are not network
// services: Redis runs on a private redis-server, PostgreSQL and MySQL
// behind a proxy.
func noOutage(k *storeKind) string {
	if !k.redis && k.dsnVia == nil {
		return "the store is not a network service"
	}
	return ""
}

func TestE2E(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					if why := k.skipCases[c.name]; why != "" {
						t.Skipf("%s: %s", k.name, why)
					}
					if c.skip != nil {
						if why := c.skip(k); why != "" {
							t.Skipf("%s: %s", k.name, why)
						}
					}
					t.Parallel()
					if c.bare {
						c.run(t, &env{kind: k})
						return
					}
					c.run(t, newEnv(t, k))
				})
			}
		})
	}
}

// maxAge returns the Max-Age of the session cookie in r, failing if there
// is none or it has none.
func maxAge(t *testing.T, a *app, r *result) int {
	t.Helper()
	c := r.cookie(t, a.name)
	if c == nil {
		t.Fatalf("%s %s: no session cookie in %q", r.method, r.path, r.header.Values("Set-Cookie"))
	}
	if c.MaxAge <= 0 {
		t.Fatalf("%s %s: session cookie without a positive Max-Age: %q", r.method, r.path, c.String())
	}
	return c.MaxAge
}

// wantMaxAge checks that the session cookie in r has a Max-Age in [lo, hi].
func wantMaxAge(t *testing.T, a *app, r *result, lo, hi int) {
	t.Helper()
	if got := maxAge(t, a, r); got < lo || got > hi {
		t.Fatalf("%s %s: Max-Age=%d, want %d to %d (%q)", r.method, r.path, got, lo, hi, r.header.Values("Set-Cookie"))
	}
}

// maxAgeIfSent checks the Max-Age of the session cookie in r if r has one:
// a write re-sends the cookie only when it moves the expiry, which it may
// not if it comes within the millisecond of the previous one.
func maxAgeIfSent(t *testing.T, a *app, r *result, lo, hi int) {
	t.Helper()
	wantCode(t, r, http.StatusOK)
	if r.cookie(t, a.name) != nil {
		wantMaxAge(t, a, r, lo, hi)
	}
}

// untilUnix returns the Unix time d from now, in seconds, rounded up.
func untilUnix(d time.Duration) int64 {
	return time.Now().Add(d + time.Second - 1).Unix()
}

func testUntouched(t *testing.T, e *env) {
	for _, flags := range [][]string{
		nil,
		{"-idle", "2s"},
		{"-browser-session", "-insecure"},
		{"-lifetime", "3s", "-idle", "1s", "-path", "/x", "-domain", "example.com"},
	} {
		t.Run(strings.Join(append([]string{"flags"}, flags...), " "), func(t *testing.T) {
			t.Parallel()
			e := e.fresh(t)
			a := e.start(t, flags...)
			before := e.records(t)
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				r := a.do(t, method, "/")
				want(t, r, http.StatusOK, "ok")
				noSetCookie(t, r)
			}
			// A session cookie, live or not, does not make "/" touch it.
			tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
			time.Sleep(1100 * time.Millisecond) // past any touch interval
			for _, cookie := range []string{tok, randomToken(), "garbage"} {
				r := a.get(t, "/", cookie)
				want(t, r, http.StatusOK, "ok")
				noSetCookie(t, r)
				if v := r.header.Get("Vary"); v != "" {
					t.Fatalf("GET / answered Vary: %q; an untouched session must leave no trace", v)
				}
			}
			if before >= 0 {
				e.wantRecords(t, before+1, "after one /set and untouched requests")
			}
		})
	}
}

// cookieCheck describes the expected session cookie.
type cookieCheck struct {
	name     string
	path     string
	domain   string
	secure   bool
	sameSite string // as written in Set-Cookie: Lax, Strict or None
	maxAge   [2]int // inclusive range; {0, 0}: no Max-Age and no Expires
}

// checkCookie checks the raw Set-Cookie line of the session cookie, then
// the removal cookie that /destroy sends.
func checkCookie(t *testing.T, a *app, want cookieCheck) {
	t.Helper()
	r := a.get(t, "/set?key=a&value=1", "")
	wantCode(t, r, http.StatusOK)
	lines := r.header.Values("Set-Cookie")
	if len(lines) != 1 {
		t.Fatalf("/set: want one Set-Cookie, got %q", lines)
	}
	line := lines[0]
	c := r.cookie(t, want.name)
	if c == nil {
		t.Fatalf("/set: Set-Cookie %q, want a cookie named %q", line, want.name)
	}
	token := c.Value
	attrs := cookieAttrs(line)
	check := func(attr, value string, present bool) {
		t.Helper()
		got, ok := attrs[strings.ToLower(attr)]
		switch {
		case present && !ok:
			t.Errorf("Set-Cookie %q: missing %s", line, attr)
		case !present && ok:
			t.Errorf("Set-Cookie %q: unexpected %s", line, attr)
		case present && value != "" && !strings.EqualFold(got, value):
			t.Errorf("Set-Cookie %q: %s=%q, want %q", line, attr, got, value)
		}
	}
	check("Path", want.path, true)
	check("Domain", want.domain, want.domain != "")
	check("Secure", "", want.secure)
	check("HttpOnly", "", true)
	check("SameSite", want.sameSite, true)
	if want.maxAge == [2]int{} {
		check("Max-Age", "", false)
		check("Expires", "", false)
	} else {
		check("Max-Age", "", true)
		if c.MaxAge < want.maxAge[0] || c.MaxAge > want.maxAge[1] {
			t.Errorf("Set-Cookie %q: Max-Age=%d, want %d to %d", line, c.MaxAge, want.maxAge[0], want.maxAge[1])
		}
	}

	// The removal cookie repeats every attribute, with an empty value,
	// Max-Age=0 and an Expires in the past.
	r = a.get(t, "/destroy", token)
	want200 := r.code == http.StatusOK
	if !want200 {
		t.Fatalf("/destroy: %d %q", r.code, r.body)
	}
	lines = r.header.Values("Set-Cookie")
	if len(lines) != 1 {
		t.Fatalf("/destroy: want one Set-Cookie, got %q", lines)
	}
	line = lines[0]
	attrs = cookieAttrs(line)
	if !strings.HasPrefix(line, want.name+"=;") {
		t.Errorf("removal cookie %q: want name %q and an empty value", line, want.name)
	}
	check("Path", want.path, true)
	check("Domain", want.domain, want.domain != "")
	check("Secure", "", want.secure)
	check("HttpOnly", "", true)
	check("SameSite", want.sameSite, true)
	check("Max-Age", "0", true)
	check("Expires", "", true)
	if exp, err := http.ParseTime(attrs["expires"]); err != nil || !exp.Before(time.Now()) {
		t.Errorf("removal cookie %q: Expires must be a date in the past (%v)", line, err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// cookieAttrs returns the attributes of a Set-Cookie line, keyed by their
// lower-case names.
func cookieAttrs(line string) map[string]string {
	attrs := map[string]string{}
	parts := strings.Split(line, ";")
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		attrs[strings.ToLower(k)] = v
	}
	return attrs
}

func testCookieDefault(t *testing.T, e *env) {
	a := e.start(t)
	checkCookie(t, a, cookieCheck{
		name: "__Host-session", path: "/", secure: true, sameSite: "Lax",
		maxAge: [2]int{86399, 86400},
	})
}

func testCookieFlags(t *testing.T, e *env) {
	for _, tc := range []struct {
		flags []string
		want  cookieCheck
	}{
		{[]string{"-insecure"}, cookieCheck{name: "session", path: "/", sameSite: "Lax", maxAge: [2]int{86399, 86400}}},
		{[]string{"-cookie-name", "sid"}, cookieCheck{name: "sid", path: "/", secure: true, sameSite: "Lax", maxAge: [2]int{86399, 86400}}},
		{[]string{"-cookie-name", "__Host-x"}, cookieCheck{name: "__Host-x", path: "/", secure: true, sameSite: "Lax", maxAge: [2]int{86399, 86400}}},
		{[]string{"-domain", "example.com"}, cookieCheck{name: "session", path: "/", domain: "example.com", secure: true, sameSite: "Lax", maxAge: [2]int{86399, 86400}}},
		{[]string{"-path", "/app"}, cookieCheck{name: "session", path: "/app", secure: true, sameSite: "Lax", maxAge: [2]int{86399, 86400}}},
		{[]string{"-path", "/app", "-insecure", "-cookie-name", "s"}, cookieCheck{name: "s", path: "/app", sameSite: "Lax", maxAge: [2]int{86399, 86400}}},
		{[]string{"-same-site", "strict"}, cookieCheck{name: "__Host-session", path: "/", secure: true, sameSite: "Strict", maxAge: [2]int{86399, 86400}}},
		{[]string{"-same-site", "none"}, cookieCheck{name: "__Host-session", path: "/", secure: true, sameSite: "None", maxAge: [2]int{86399, 86400}}},
		{[]string{"-same-site", "lax"}, cookieCheck{name: "__Host-session", path: "/", secure: true, sameSite: "Lax", maxAge: [2]int{86399, 86400}}},
		{[]string{"-browser-session"}, cookieCheck{name: "__Host-session", path: "/", secure: true, sameSite: "Lax"}},
		{[]string{"-lifetime", "1h"}, cookieCheck{name: "__Host-session", path: "/", secure: true, sameSite: "Lax", maxAge: [2]int{3599, 3600}}},
		{[]string{"-idle", "90s"}, cookieCheck{name: "__Host-session", path: "/", secure: true, sameSite: "Lax", maxAge: [2]int{89, 90}}},
		{[]string{"-idle", "2h", "-lifetime", "1h"}, cookieCheck{name: "__Host-session", path: "/", secure: true, sameSite: "Lax", maxAge: [2]int{3599, 3600}}},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			t.Parallel()
			a := e.alongside(t).start(t, tc.flags...)
			if a.name != tc.want.name {
				t.Fatalf("test bug: cookieName(%q) = %q, want %q", tc.flags, a.name, tc.want.name)
			}
			checkCookie(t, a, tc.want)
		})
	}
}

func testRefusedFlags(t *testing.T, e *env) {
	for _, flags := range [][]string{
		{"-same-site", "none", "-insecure"},
		{"-same-site", "sideways"},
		{"-cookie-name", "__Host-session", "-insecure"},
		{"-cookie-name", "__Host-session", "-path", "/app"},
		{"-cookie-name", "__Host-session", "-domain", "example.com"},
		{"-cookie-name", "__Secure-session", "-insecure"},
		{"-cookie-name", "bad name"},
		{"-lifetime", "-1s"},
		{"-idle", "-1s"},
		{"-key", "too short"},
	} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			t.Parallel()
			// The flags are refused before the store is opened, so the
			// store needs no storage (nor to be reachable).
			store := []string{"-store", "memory"}
			if e.kind.unreachable != nil {
				store = e.kind.unreachable(t, "127.0.0.1:1")
			}
			res := runToExit(t, append(store, flags...)...)
			if res.code == 0 || strings.Contains(res.stdout, "listening on") {
				t.Fatalf("testapp %q: exit status %d, stdout %q; want a refusal", flags, res.code, res.stdout)
			}
			if strings.TrimSpace(res.stderr) == "" {
				t.Fatalf("testapp %q: refused without a reason on stderr", flags)
			}
		})
	}
}

func testSetGet(t *testing.T, e *env) {
	a := e.start(t)
	c := newClient(a)

	// Reading never creates a session.
	r := c.get(t, "/get?key=a")
	want(t, r, http.StatusNotFound, "not found")
	noSetCookie(t, r)
	want(t, c.get(t, "/keys"), http.StatusOK, "[]")
	e.wantRecords(t, 0, "after reads without a session")

	// A value that is not JSON: 400, no session.
	for _, v := range []string{"", "{", "nope", "1 2", "{'a':1}", "[1,]"} {
		r := c.get(t, "/set?key=a&value="+url.QueryEscape(v))
		wantCode(t, r, http.StatusBadRequest)
		noSetCookie(t, r)
	}
	e.wantRecords(t, 0, "after /set with invalid JSON")

	// Values come back as compact JSON, whatever their spacing.
	for _, tc := range []struct{ in, out string }{
		{`{ "x" : [1, 2, {"y": null}] }`, `{"x":[1,2,{"y":null}]}`},
		{`null`, `null`},
		{`"h\u00e9llo ☃"`, `"h\u00e9llo ☃"`},
		{` 42 `, `42`},
		{`-1.5e3`, `-1.5e3`},
		{`true`, `true`},
		{`[]`, `[]`},
		{`""`, `""`},
	} {
		want(t, c.get(t, "/set?key=v&value="+url.QueryEscape(tc.in)), http.StatusOK, "ok")
		r := c.get(t, "/get?key=v")
		want(t, r, http.StatusOK, tc.out)
	}
	tok := c.token()
	if tok == "" {
		t.Fatal("no session cookie after /set")
	}
	e.wantRecords(t, 1, "after several /set")

	// POST with a form body works the same.
	want(t, c.post(t, "/set?key=p&value="+url.QueryEscape(`{"via":"post"}`)), http.StatusOK, "ok")
	want(t, c.post(t, "/get?key=p"), http.StatusOK, `{"via":"post"}`)

	// Odd keys are keys like any other.
	for _, k := range []string{"", " ", "a/b?c", "ключ", strings.Repeat("k", 300)} {
		want(t, c.get(t, "/set?key="+url.QueryEscape(k)+"&value=7"), http.StatusOK, "ok")
		want(t, c.get(t, "/get?key="+url.QueryEscape(k)), http.StatusOK, "7")
	}

	// A value too large for the session (the library's 64 KiB default) is
	// refused without a 5xx and changes nothing, in an existing session or
	// without one.
	// Client-side sessions answer 500, as their contract says.
	huge := url.QueryEscape(strconv.Quote(strings.Repeat("x", 100<<10)))
	for _, cl := range []*client{c, newClient(a)} {
		r := cl.post(t, "/set?key=x&value="+huge)
		if e.kind.sealed {
			wantCode(t, r, http.StatusInternalServerError)
		} else if r.code < 400 || r.code >= 500 {
			t.Fatalf("/set of a 100 KiB value: %d %q, want a 4xx", r.code, r.body)
		}
		noSetCookie(t, r)
	}
	want(t, c.get(t, "/get?key=x"), http.StatusNotFound, "not found")

	// An invalid value changes nothing in an existing session.
	want(t, c.get(t, "/set?key=x&value=1"), http.StatusOK, "ok")
	r = c.get(t, "/set?key=x&value=oops")
	wantCode(t, r, http.StatusBadRequest)
	noSetCookie(t, r)
	want(t, c.get(t, "/get?key=x"), http.StatusOK, "1")
	if c.token() != tok && !e.kind.sealed { // a sealed cookie changes with every write
		t.Fatal("the session token changed without a renew")
	}
	e.wantRecords(t, 1, "at the end")
}

func testDeleteKeysClear(t *testing.T, e *env) {
	a := e.start(t)
	c := newClient(a)
	for _, k := range []string{"b", "a", "B", "é", "a0", "_", "Z"} {
		want(t, c.get(t, "/set?key="+url.QueryEscape(k)+"&value=1"), http.StatusOK, "ok")
	}
	want(t, c.get(t, "/keys"), http.StatusOK, `["B","Z","_","a","a0","b","é"]`)
	want(t, c.get(t, "/delete?key=b"), http.StatusOK, "ok")
	want(t, c.get(t, "/delete?key=absent"), http.StatusOK, "ok")
	want(t, c.get(t, "/get?key=b"), http.StatusNotFound, "not found")
	want(t, c.get(t, "/keys"), http.StatusOK, `["B","Z","_","a","a0","é"]`)

	// Clear keeps the session, its ID and its owner.
	want(t, c.get(t, "/login?user=carol"), http.StatusOK, "ok")
	tok := c.token()
	want(t, c.get(t, "/clear"), http.StatusOK, "ok")
	want(t, c.get(t, "/keys"), http.StatusOK, "[]")
	if c.token() != tok && !e.kind.sealed {
		t.Fatal("/clear changed the session token")
	}
	want(t, c.get(t, "/set?key=after&value=1"), http.StatusOK, "ok")
	want(t, c.get(t, "/keys"), http.StatusOK, `["after"]`)
	e.wantRecords(t, 1, "after /clear")
	if !e.kind.sealed { // client-side sessions have no owner index
		want(t, a.get(t, "/logout-all?user=carol", ""), http.StatusOK, "1")
		noSession(t, a, tok)
	}

	// Delete and clear without a session create none.
	c2 := newClient(a)
	for _, p := range []string{"/delete?key=a", "/clear", "/keys"} {
		r := c2.get(t, p)
		wantCode(t, r, http.StatusOK)
		noSetCookie(t, r)
	}
	e.wantRecords(t, 0, "after /delete and /clear without a session")
}

func testIncr(t *testing.T, e *env) {
	a := e.start(t)
	c := newClient(a)
	want(t, c.get(t, "/incr?key=n"), http.StatusOK, "1")
	want(t, c.get(t, "/incr?key=n"), http.StatusOK, "2")
	want(t, c.post(t, "/incr?key=n"), http.StatusOK, "3")
	want(t, c.get(t, "/get?key=n"), http.StatusOK, "3")
	want(t, c.get(t, "/incr?key=other"), http.StatusOK, "1")
	want(t, c.get(t, "/set?key=n&value=41"), http.StatusOK, "ok")
	want(t, c.get(t, "/incr?key=n"), http.StatusOK, "42")
	want(t, c.get(t, "/set?key=s&value=%22x%22"), http.StatusOK, "ok")
	r := c.get(t, "/incr?key=s")
	if r.code < 400 || r.code >= 500 {
		t.Fatalf("/incr of a string: got %d %q, want a 4xx", r.code, r.body)
	}
	want(t, c.get(t, "/get?key=s"), http.StatusOK, `"x"`)
	e.wantRecords(t, 1, "after /incr")
}

func testDestroy(t *testing.T, e *env) {
	a := e.start(t)
	c := newClient(a)
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	tok := c.token()
	e.wantRecords(t, 1, "after /set")
	r := c.get(t, "/destroy")
	want(t, r, http.StatusOK, "ok")
	if ck := r.cookie(t, a.name); ck == nil || ck.Value != "" || ck.MaxAge >= 0 {
		t.Fatalf("/destroy: want a removal cookie, got %q", r.header.Values("Set-Cookie"))
	}
	if c.token() != "" {
		t.Fatal("the jar kept the session cookie after its removal")
	}
	e.wantRecords(t, 0, "after /destroy")
	noSession(t, a, tok)
	want(t, a.get(t, "/get?key=a", tok), http.StatusNotFound, "not found")

	// Destroying a dead or absent session is harmless.
	want(t, a.get(t, "/destroy", tok), http.StatusOK, "ok")
	r = a.get(t, "/destroy", "")
	want(t, r, http.StatusOK, "ok")
	if c := r.cookie(t, a.name); c != nil && c.Value != "" {
		t.Fatalf("/destroy without a session sent a session cookie %q", c.String())
	}

	// Writing with the dead token starts a new session under a new ID.
	r = a.get(t, "/set?key=b&value=2", tok)
	wantCode(t, r, http.StatusOK)
	if got := newSession(t, a, r); got == tok {
		t.Fatal("a write with a destroyed token brought the old ID back")
	}
	e.wantRecords(t, 1, "after a write with a destroyed token")
}

func testRenew(t *testing.T, e *env) {
	a := e.start(t, "-lifetime", "1h")
	c := newClient(a)
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	want(t, c.get(t, "/set?key=b&value=[2]"), http.StatusOK, "ok")
	old := c.token()
	time.Sleep(2100 * time.Millisecond)
	r := c.get(t, "/renew")
	want(t, r, http.StatusOK, "ok")
	tok := newSession(t, a, r)
	if tok == old {
		t.Fatal("/renew kept the session ID")
	}
	// The absolute deadline is kept: about 2 s of the hour are gone.
	wantMaxAge(t, a, r, 3590, 3598)
	want(t, c.get(t, "/get?key=a"), http.StatusOK, "1")
	want(t, c.get(t, "/get?key=b"), http.StatusOK, "[2]")
	want(t, c.get(t, "/keys"), http.StatusOK, `["a","b"]`)
	noSession(t, a, old)
	e.wantRecords(t, 1, "after /renew")

	// Renewing without a session creates none.
	r = a.get(t, "/renew", "")
	want(t, r, http.StatusOK, "ok")
	noSetCookie(t, r)
	e.wantRecords(t, 1, "after /renew without a session")
}

func testStatus(t *testing.T, e *env) {
	a := e.start(t)

	// Statuses below 500 save; 500 and above save nothing and send no cookie.
	for _, code := range []int{200, 201, 204, 302, 400, 404, 499} {
		r := a.get(t, fmt.Sprintf("/status?code=%d&key=k&value=%d", code, code), "")
		wantCode(t, r, code)
		tok := newSession(t, a, r)
		want(t, a.get(t, "/get?key=k", tok), http.StatusOK, strconv.Itoa(code))
	}
	e.wantRecords(t, 7, "after /status below 500")
	for _, code := range []int{500, 502, 503, 599} {
		r := a.get(t, fmt.Sprintf("/status?code=%d&key=k&value=1", code), "")
		wantCode(t, r, code)
		noSetCookie(t, r)
	}
	e.wantRecords(t, 7, "after /status of 500 and above without a session")

	c := newClient(a)
	want(t, c.get(t, "/set?key=k&value=1"), http.StatusOK, "ok")
	tok := c.token()
	r := c.get(t, "/status?code=500&key=k&value=2")
	wantCode(t, r, 500)
	noSetCookie(t, r)
	r = c.get(t, "/status?code=503&key=other&value=2")
	wantCode(t, r, 503)
	noSetCookie(t, r)
	want(t, c.get(t, "/get?key=k"), http.StatusOK, "1")
	want(t, c.get(t, "/keys"), http.StatusOK, `["k"]`)
	wantCode(t, c.get(t, "/status?code=201&key=k&value=3"), 201)
	want(t, c.get(t, "/get?key=k"), http.StatusOK, "3")
	if c.token() != tok && !e.kind.sealed {
		t.Fatal("the session token changed without a renew")
	}

	for _, bad := range []string{"", "abc", "99", "199", "600", "1000", "-200", "200.5"} {
		r := a.get(t, "/status?code="+url.QueryEscape(bad)+"&key=k&value=1", "")
		wantCode(t, r, http.StatusBadRequest)
		noSetCookie(t, r)
	}
	e.wantRecords(t, 8, "at the end")
}

func testExpiry(t *testing.T, e *env) {
	a := e.start(t)

	// idle=S: the session's own idle timeout, kept across requests,
	// /renew and /login.
	c := newClient(a)
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	r := c.get(t, "/expiry?idle=30")
	want(t, r, http.StatusOK, "ok")
	wantMaxAge(t, a, r, 29, 30)
	maxAgeIfSent(t, a, c.get(t, "/set?key=b&value=2"), 29, 30)
	r = c.get(t, "/renew")
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 29, 30)
	r = c.get(t, "/login?user=u1")
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 29, 30)
	want(t, c.get(t, "/keys"), http.StatusOK, `["a","b"]`)
	r = c.get(t, "/expiry?idle=0") // removes the override
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 86390, 86400)

	// at=UNIX: the session's own absolute end.
	c = newClient(a)
	r = c.get(t, fmt.Sprintf("/expiry?at=%d", untilUnix(60*time.Second)))
	want(t, r, http.StatusOK, "ok")
	wantMaxAge(t, a, r, 55, 61)
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	r = c.get(t, "/renew")
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 55, 61)
	r = c.get(t, "/login?user=u2") // a fresh lifetime, but the override stays
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 55, 61)

	// A past end ends the session now.
	tok := c.token()
	r = c.get(t, fmt.Sprintf("/expiry?at=%d", time.Now().Add(-10*time.Second).Unix()))
	wantCode(t, r, http.StatusOK)
	if ck := r.cookie(t, a.name); ck == nil || ck.Value != "" || ck.MaxAge >= 0 {
		t.Fatalf("/expiry?at=<past>: want a removal cookie, got %q", r.header.Values("Set-Cookie"))
	}
	noSession(t, a, tok)

	// browser=1: no Max-Age or Expires, kept across writes and renewals.
	c = newClient(a)
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	r = c.get(t, "/expiry?browser=1")
	wantCode(t, r, http.StatusOK)
	wantBrowserCookie(t, a, r)
	r = c.get(t, "/renew")
	wantCode(t, r, http.StatusOK)
	wantBrowserCookie(t, a, r)
	r = c.get(t, "/login?user=u3")
	wantCode(t, r, http.StatusOK)
	wantBrowserCookie(t, a, r)
	want(t, c.get(t, "/get?key=a"), http.StatusOK, "1")
	r = c.get(t, "/expiry?browser=0")
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 86390, 86400)

	// An override on a request without a session starts one.
	r = a.get(t, "/expiry?idle=45", "")
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 44, 45)

	// Overrides combine with -idle and -lifetime: the earliest deadline wins.
	b := e.alongside(t).start(t, "-idle", "40s", "-lifetime", "1h")
	c = newClient(b)
	wantMaxAge(t, b, c.get(t, "/set?key=a&value=1"), 39, 40)
	wantMaxAge(t, b, c.get(t, "/expiry?idle=20"), 19, 20)
	wantMaxAge(t, b, c.get(t, "/expiry?idle=120"), 39, 40)
	wantMaxAge(t, b, c.get(t, fmt.Sprintf("/expiry?at=%d", untilUnix(10*time.Second))), 5, 11)
	c = newClient(b)
	wantMaxAge(t, b, c.get(t, fmt.Sprintf("/expiry?at=%d", untilUnix(2*time.Hour))), 39, 40)
}

// wantBrowserCookie checks that r sends the session cookie with neither
// Max-Age nor Expires.
func wantBrowserCookie(t *testing.T, a *app, r *result) {
	t.Helper()
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, a.name+"=") {
			attrs := cookieAttrs(line)
			_, ma := attrs["max-age"]
			_, ex := attrs["expires"]
			if ma || ex || strings.HasPrefix(line, a.name+"=;") {
				t.Fatalf("%s %s: want a browser-session cookie, got %q", r.method, r.path, line)
			}
			return
		}
	}
	t.Fatalf("%s %s: no session cookie in %q", r.method, r.path, r.header.Values("Set-Cookie"))
}

func testExpiryValidation(t *testing.T, e *env) {
	a := e.start(t)
	c := newClient(a)
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	for _, q := range []string{"", "?idle=1&at=2000000000", "?idle=1&browser=1", "?at=1&browser=1",
		"?idle=-1", "?idle=abc", "?idle=", "?at=soon", "?at=", "?browser=2", "?browser=yes", "?other=1"} {
		r := c.get(t, "/expiry"+q)
		wantCode(t, r, http.StatusBadRequest)
		noSetCookie(t, r)
	}
	want(t, c.get(t, "/get?key=a"), http.StatusOK, "1")
	e.wantRecords(t, 1, "after invalid /expiry requests")
}

func testLogin(t *testing.T, e *env) {
	a := e.start(t, "-lifetime", "1h")
	c := newClient(a)
	want(t, c.get(t, "/set?key=cart&value=[1,2]"), http.StatusOK, "ok")
	old := c.token()
	time.Sleep(2100 * time.Millisecond)
	r := c.get(t, "/login?user=alice")
	want(t, r, http.StatusOK, "ok")
	tok := newSession(t, a, r)
	if tok == old {
		t.Fatal("/login kept the session ID")
	}
	// Re-authentication starts a fresh absolute lifetime.
	wantMaxAge(t, a, r, 3599, 3600)
	want(t, c.get(t, "/get?key=cart"), http.StatusOK, "[1,2]")
	noSession(t, a, old)
	e.wantRecords(t, 1, "after /login")

	// Logging in as someone else replaces the owner.
	want(t, c.get(t, "/login?user=bob"), http.StatusOK, "ok")
	want(t, a.get(t, "/logout-all?user=alice", ""), http.StatusOK, "0")
	want(t, c.get(t, "/get?key=cart"), http.StatusOK, "[1,2]")
	want(t, a.get(t, "/logout-all?user=bob", ""), http.StatusOK, "1")
	want(t, c.get(t, "/get?key=cart"), http.StatusNotFound, "not found")

	// Logging in without a session starts one.
	r = a.get(t, "/login?user=dave", "")
	wantCode(t, r, http.StatusOK)
	newSession(t, a, r)
	want(t, a.get(t, "/logout-all?user=dave", ""), http.StatusOK, "1")
}

func testLogoutAll(t *testing.T, e *env) {
	a := e.start(t)
	login := func(user string) *client {
		c := newClient(a)
		want(t, c.get(t, "/set?key=who&value="+url.QueryEscape(strconv.Quote(user))), http.StatusOK, "ok")
		want(t, c.get(t, "/login?user="+url.QueryEscape(user)), http.StatusOK, "ok")
		return c
	}
	alice := []*client{login("alice"), login("alice"), login("alice")}
	bob := login("bob")
	anon := newClient(a)
	want(t, anon.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	e.wantRecords(t, 5, "after five sessions")

	// /destroy removes a session from its owner's list.
	want(t, alice[2].get(t, "/destroy"), http.StatusOK, "ok")
	r := a.get(t, "/logout-all?user=alice", "")
	want(t, r, http.StatusOK, "2")
	noSetCookie(t, r)
	for _, c := range alice[:2] {
		want(t, c.get(t, "/get?key=who"), http.StatusNotFound, "not found")
	}
	want(t, bob.get(t, "/get?key=who"), http.StatusOK, `"bob"`)
	want(t, anon.get(t, "/get?key=a"), http.StatusOK, "1")
	want(t, a.get(t, "/logout-all?user=alice", ""), http.StatusOK, "0")
	want(t, a.get(t, "/logout-all?user=nobody", ""), http.StatusOK, "0")
	want(t, a.post(t, "/logout-all?user=bob"), http.StatusOK, "1")
	want(t, bob.get(t, "/get?key=who"), http.StatusNotFound, "not found")
	e.wantRecords(t, 1, "after /logout-all")

	// Owners are exact strings.
	c := login("Alice ")
	want(t, a.get(t, "/logout-all?user=alice", ""), http.StatusOK, "0")
	want(t, a.get(t, "/logout-all?user="+url.QueryEscape("Alice "), ""), http.StatusOK, "1")
	want(t, c.get(t, "/get?key=who"), http.StatusNotFound, "not found")
}

// post sends a POST with the parameters of path as a form body.
func (a *app) post(t *testing.T, path string) *result {
	t.Helper()
	return a.do(t, http.MethodPost, path)
}

func testFixation(t *testing.T, e *env) {
	a := e.start(t)
	for _, tc := range []struct{ path, keys string }{
		{"/set?key=a&value=1", `["a"]`},
		{"/login?user=mallory", `[]`},
		{"/incr?key=n", `["n"]`},
		{"/expiry?idle=60", `[]`},
		{"/status?code=200&key=a&value=1", `["a"]`},
	} {
		planted := randomToken()
		r := a.get(t, tc.path, planted)
		wantCode(t, r, http.StatusOK)
		tok := newSession(t, a, r)
		if tok == planted {
			t.Fatalf("GET %s adopted the client-chosen token", tc.path)
		}
		noSession(t, a, planted)
		want(t, a.get(t, "/keys", tok), http.StatusOK, tc.keys)
	}
	// Renewing a planted token creates nothing.
	planted := randomToken()
	r := a.get(t, "/renew", planted)
	want(t, r, http.StatusOK, "ok")
	noCookieWith(t, a, r, planted)
	e.wantRecords(t, 5, "after five writes with planted tokens")
}

func testMalformedCookies(t *testing.T, e *env) {
	a := e.start(t)
	// A live session whose token the malformed cookies resemble.
	live := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	before := e.records(t)
	n := a.name
	badAlphabet := strings.Repeat("+", 42) + "A"
	wrongBits := live[:42] + flipLast(live[42])
	cookies := []struct {
		name     string
		headers  []string
		rejected bool // net/http itself answers 400 Bad Request
	}{
		{"empty", []string{n + "="}, false},
		{"empty quoted", []string{n + `=""`}, false},
		{"short", []string{n + "=abc"}, false},
		{"42 chars", []string{n + "=" + live[:42]}, false},
		{"44 chars", []string{n + "=" + live + "A"}, false},
		{"5 KB", []string{n + "=" + strings.Repeat("A", 5*1024)}, false},
		{"wrong alphabet", []string{n + "=" + badAlphabet}, false},
		{"standard base64", []string{n + "=" + strings.Repeat("/", 42) + "A"}, false},
		{"padded", []string{n + "=" + live + "="}, false},
		{"non-zero trailing bits", []string{n + "=" + wrongBits}, false},
		{"percent-encoded", []string{n + "=" + url.QueryEscape(live[:40]+"+/=")}, false},
		{"unknown token", []string{n + "=" + randomToken()}, false},
		{"unknown token quoted", []string{n + `="` + randomToken() + `"`}, false},
		{"name in other case", []string{strings.ToUpper(n) + "=" + live}, false},
		{"name with prefix dropped", []string{strings.TrimPrefix(strings.TrimPrefix(n, "__Host-"), "__Secure-") + "x=" + live}, false},
		{"no name", []string{"=" + live}, false},
		{"duplicates, all bad", []string{n + "=x; " + n + "=" + randomToken() + "; " + n + "="}, false},
		{"300 cookies", []string{manyCookies(300, "c", "v")}, false},
		{"300 bad session cookies", []string{manyCookies(300, n, "bad")}, false},
		{"two headers, both bad", []string{n + "=bad", n + "=" + randomToken()}, false},
		{"control bytes", []string{n + "=\x01\x02" + live[2:]}, true},
		{"non-ASCII", []string{n + "=é" + live[2:]}, false},
		{"semicolons only", []string{";;;;"}, false},
	}
	for _, tc := range cookies {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/get?key=a", "/keys", "/delete?key=a", "/clear", "/renew", "/destroy", "/"} {
				r := a.do(t, http.MethodGet, path, tc.headers...)
				if r.code >= 500 {
					t.Fatalf("GET %s with Cookie %.80q: %d %q", path, tc.headers, r.code, r.body)
				}
				if c := r.cookie(t, a.name); c != nil && c.Value != "" {
					t.Fatalf("GET %s with Cookie %.80q: got a session cookie %q", path, tc.headers, c.String())
				}
				if tc.rejected {
					want(t, r, http.StatusBadRequest, "400 Bad Request")
					continue
				}
				switch path {
				case "/get?key=a":
					want(t, r, http.StatusNotFound, "not found")
				case "/keys":
					want(t, r, http.StatusOK, "[]")
				}
			}
			if before >= 0 {
				e.wantRecords(t, before, "after requests with malformed cookies")
			}
			if tc.rejected {
				return
			}
			// A write with a malformed cookie gets a fresh session.
			r := a.do(t, http.MethodGet, "/set?key=w&value=1", tc.headers...)
			wantCode(t, r, http.StatusOK)
			tok := newSession(t, a, r)
			if tok == live || strings.Contains(strings.Join(tc.headers, ";"), tok) {
				t.Fatalf("a write with Cookie %.80q reused a token from the request", tc.headers)
			}
			want(t, a.get(t, "/keys", tok), http.StatusOK, `["w"]`)
			want(t, a.get(t, "/destroy", tok), http.StatusOK, "ok")
		})
	}
	// The live session was never touched.
	want(t, a.get(t, "/get?key=a", live), http.StatusOK, "1")
}

// flipLast returns a base64url character with the same top bits as c but
// non-zero bits where a canonical 43rd character has zeros.
func flipLast(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i|1])
}

// manyCookies returns one Cookie header value with n cookies.
func manyCookies(n int, name, value string) string {
	parts := make([]string, n)
	for i := range parts {
		if name == "c" {
			parts[i] = fmt.Sprintf("c%d=%s%d", i, value, i)
		} else {
			parts[i] = fmt.Sprintf("%s=%s%d", name, value, i)
		}
	}
	return strings.Join(parts, "; ")
}

func testCookieSelection(t *testing.T, e *env) {
	a := e.start(t)
	live := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	n := a.name
	unknown := randomToken()
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"garbage first", []string{n + "=garbage; " + n + "=" + live}},
		{"garbage last", []string{n + "=" + live + "; " + n + "=garbage"}},
		{"unknown first", []string{n + "=" + unknown + "; " + n + "=" + live}},
		{"unknown last", []string{n + "=" + live + "; " + n + "=" + unknown}},
		{"empty first", []string{n + "=; " + n + "=" + live}},
		{"5 KB first", []string{n + "=" + strings.Repeat("A", 5*1024) + "; " + n + "=" + live}},
		{"among other cookies", []string{"a=1; b=2; " + n + "=" + live + "; c=3"}},
		{"quoted", []string{n + `="` + live + `"`}},
		{"second header", []string{"other=1", n + "=" + live}},
		{"bad in first header", []string{n + "=bad", n + "=" + live}},
		{"unknown in first header", []string{n + "=" + unknown, n + "=" + live}},
		{"live in first header", []string{n + "=" + live, n + "=" + unknown}},
		{"after 299 other cookies", []string{manyCookies(299, "c", "v") + "; " + n + "=" + live}},
		{"after 299 bad session cookies", []string{manyCookies(299, n, "bad") + "; " + n + "=" + live}},
		{"after 3 unknown tokens", []string{n + "=" + randomToken() + "; " + n + "=" + randomToken() + "; " + n + "=" + randomToken() + "; " + n + "=" + live}},
		// The contract: "Every cookie carrying the session name, in every
		// Cookie header, is considered; the first that names a live
		// session is used."
		{"after 5 unknown tokens", []string{n + "=" + randomToken() + "; " + n + "=" + randomToken() + "; " + n + "=" + randomToken() + "; " + n + "=" + randomToken() + "; " + n + "=" + randomToken() + "; " + n + "=" + live}},
		{"after 4 unknown tokens in 4 headers", []string{n + "=" + randomToken(), n + "=" + randomToken(), n + "=" + randomToken(), n + "=" + randomToken(), n + "=" + live}},
		{"after 15 unknown tokens", []string{unknownTokens(n, 15) + "; " + n + "=" + live}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, http.MethodGet, "/get?key=a", tc.headers...)
			if strings.Contains(tc.name, "unknown tokens") && (r.code != http.StatusOK || r.body != "1") {
				t.Fatalf("LIBRARY BUG (core, token.go candidates): a live session cookie after %d well-formed "+
					"but unknown cookies of the same name was ignored (GET /get?key=a: %d %q). The contract says "+
					"every cookie carrying the session name, in every Cookie header, is considered, and the first "+
					"that names a live session is used.", strings.Count(strings.Join(tc.headers, ";"), n+"=")-1, r.code, r.body)
			}
			want(t, r, http.StatusOK, "1")
			noSetCookie(t, r)
			r = a.do(t, http.MethodGet, "/set?key=b&value=2", tc.headers...)
			want(t, r, http.StatusOK, "ok")
			cur := live
			if e.kind.sealed {
				// The write sealed the live session, with b, into a
				// new cookie.
				cur = newSession(t, a, r)
				want(t, a.get(t, "/get?key=a", cur), http.StatusOK, "1")
			} else if c := r.cookie(t, n); c != nil && c.Value != live {
				t.Fatalf("a write through the live session sent another token: %q", c.String())
			}
			want(t, a.get(t, "/get?key=b", cur), http.StatusOK, "2")
			want(t, a.get(t, "/delete?key=b", cur), http.StatusOK, "ok")
		})
	}
	// The library looks up at most 16 well-formed tokens per request (a
	// documented bound on the store calls one request can cause). Past it,
	// a live session may go unseen, but nothing breaks and nothing is
	// created by a read.
	r := a.do(t, http.MethodGet, "/get?key=a", unknownTokens(n, 40)+"; "+n+"="+live)
	if r.code >= 500 {
		t.Fatalf("GET /get?key=a after 40 unknown tokens: %d %q", r.code, r.body)
	}
	noSetCookie(t, r)
	e.wantRecords(t, 1, "after requests with duplicate cookies")
}

// unknownTokens returns k cookies named name with well-formed tokens that
// name no session, as one Cookie header value.
func unknownTokens(name string, k int) string {
	parts := make([]string, k)
	for i := range parts {
		parts[i] = name + "=" + randomToken()
	}
	return strings.Join(parts, "; ")
}

func testIdleTimeout(t *testing.T, e *env) {
	// With -browser-session the browser keeps the cookie until it closes;
	// the server enforces the timeout all the same.
	for _, flags := range [][]string{{"-idle", "2s"}, {"-idle", "2s", "-browser-session"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			t.Parallel()
			a := e.alongside(t).start(t, flags...)
			r := a.get(t, "/set?key=a&value=1", "")
			tok := newSession(t, a, r)
			if len(flags) == 2 {
				wantMaxAge(t, a, r, 2, 2)
			} else {
				wantBrowserCookie(t, a, r)
			}
			want(t, a.get(t, "/get?key=a", tok), http.StatusOK, "1")
			time.Sleep(3 * time.Second)
			// The cookie is sent although a browser would have dropped it.
			r = a.get(t, "/get?key=a", tok)
			want(t, r, http.StatusNotFound, "not found")
			noCookieWith(t, a, r, tok)
			noSession(t, a, tok)
			r = a.get(t, "/set?key=b&value=2", tok)
			wantCode(t, r, http.StatusOK)
			if newSession(t, a, r) == tok {
				t.Fatal("a write with an idle-expired token brought the old ID back")
			}
		})
	}
}

// testLogoutAllLive checks that /logout-all counts live sessions only.
func testLogoutAllLive(t *testing.T, e *env) {
	a := e.start(t, "-idle", "2s")
	stale := newSession(t, a, a.get(t, "/login?user=frank", ""))
	time.Sleep(3 * time.Second)
	live := newSession(t, a, a.get(t, "/login?user=frank", ""))
	want(t, a.get(t, "/logout-all?user=frank", ""), http.StatusOK, "1")
	noSession(t, a, live)
	noSession(t, a, stale)
	e.wantRecords(t, 0, "after /logout-all")
}

func testAbsoluteLifetime(t *testing.T, e *env) {
	a := e.start(t, "-lifetime", "3s")
	r := a.get(t, "/set?key=a&value=1", "")
	tok := newSession(t, a, r)
	wantMaxAge(t, a, r, 3, 3)
	start := time.Now()
	// Activity does not extend an absolute lifetime.
	for i := 1; i <= 2; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second)))
		want(t, a.get(t, fmt.Sprintf("/set?key=n&value=%d", i), tok), http.StatusOK, "ok")
		want(t, a.get(t, "/get?key=a", tok), http.StatusOK, "1")
	}
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	r = a.get(t, "/get?key=a", tok)
	want(t, r, http.StatusNotFound, "not found")
	noCookieWith(t, a, r, tok)
	noSession(t, a, tok)
}

func testPerSessionOverride(t *testing.T, e *env) {
	a := e.start(t) // no -idle: only the override times the session out
	withOverride := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	plain := newSession(t, a, a.get(t, "/set?key=a&value=2", ""))
	r := a.get(t, "/expiry?idle=2", withOverride)
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 2, 2)
	withOverride = latest(t, e, a, r, withOverride)
	time.Sleep(time.Second)
	// The override survives later requests...
	r = a.get(t, "/set?key=b&value=3", withOverride)
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, a, r, 2, 2)
	withOverride = latest(t, e, a, r, withOverride)
	time.Sleep(time.Second)
	want(t, a.get(t, "/get?key=b", withOverride), http.StatusOK, "3")
	// ...and applies to its session alone.
	time.Sleep(3 * time.Second)
	r = a.get(t, "/get?key=a", withOverride)
	want(t, r, http.StatusNotFound, "not found")
	noCookieWith(t, a, r, withOverride)
	want(t, a.get(t, "/get?key=a", plain), http.StatusOK, "2")
}

func testReadsAreActivity(t *testing.T, e *env) {
	a := e.start(t, "-idle", "2s")
	tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	start := time.Now()
	extended := 0
	for i := 1; i <= 5; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second)))
		path := "/get?key=a"
		if i%2 == 0 {
			path = "/keys"
		}
		r := a.get(t, path, tok)
		if r.code != http.StatusOK {
			t.Fatalf("read %d after %v: %d %q; reads every second must keep a 2 s idle session alive", i, time.Since(start).Round(time.Millisecond), r.code, r.body)
		}
		if c := r.cookie(t, a.name); c != nil {
			if e.kind.sealed {
				tok = newSession(t, a, r) // the new deadline is sealed in
			} else if c.Value != tok {
				t.Fatalf("read %d: the cookie changed to %q", i, c.Value)
			}
			wantMaxAge(t, a, r, 2, 2)
			extended++
		}
	}
	if extended == 0 {
		t.Fatal("no read re-sent the cookie with the extended Max-Age")
	}
	want(t, a.get(t, "/get?key=a", tok), http.StatusOK, "1")
}

// parallel runs n requests at once and returns their results in order.
func parallel(t *testing.T, n int, do func(i int) *result) []*result {
	t.Helper()
	results := make([]*result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = do(i) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return results
}

// doAsync sends a request from another goroutine; the result arrives on the
// channel. Failures are reported with t.Errorf.
func doAsync(t *testing.T, a *app, path, token string) <-chan *result {
	c := make(chan *result, 1)
	go func() {
		defer close(c)
		req, _ := http.NewRequest(http.MethodGet, a.url+path, nil)
		if token != "" {
			req.Header.Set("Cookie", a.name+"="+token)
		}
		start := time.Now()
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Errorf("GET %s: reading the body: %v", path, err)
			return
		}
		c <- &result{method: http.MethodGet, path: path, code: resp.StatusCode, body: string(body), header: resp.Header, elapsed: time.Since(start)}
	}()
	return c
}

func testConcurrentSet(t *testing.T, e *env) {
	for _, flags := range [][]string{nil, {"-idle", "3s"}} {
		t.Run(strings.Join(append([]string{"flags"}, flags...), " "), func(t *testing.T) {
			t.Parallel()
			e := e.fresh(t)
			a := e.start(t, flags...)
			tok := newSession(t, a, a.get(t, "/set?key=init&value=0", ""))
			// With -idle, slow reads in between touch the session's expiry
			// while the writes are in flight; no write may be lost to them.
			writes := 20
			if e.kind.emulated {
				writes = 8
			}
			reads := 0
			if flags != nil {
				reads = writes
			}
			results := parallel(t, writes+reads, func(i int) *result {
				if i >= writes {
					return a.get(t, "/get?key=init&delay=400", tok)
				}
				return a.get(t, fmt.Sprintf("/set?key=k%02d&value=%d&delay=300", i, i), tok)
			})
			for i, r := range results {
				if i >= writes {
					want(t, r, http.StatusOK, "0")
				} else {
					want(t, r, http.StatusOK, "ok")
				}
				noCookieWith(t, a, r, "") // no removal cookie
			}
			wantKeys := []string{`"init"`}
			for i := range writes {
				wantKeys = append(wantKeys, fmt.Sprintf(`"k%02d"`, i))
			}
			want(t, a.get(t, "/keys", tok), http.StatusOK, "["+strings.Join(wantKeys, ",")+"]")
			for i := range writes {
				want(t, a.get(t, fmt.Sprintf("/get?key=k%02d", i), tok), http.StatusOK, strconv.Itoa(i))
			}
			e.wantRecords(t, 1, "after concurrent /set")
		})
	}
}

func testConcurrentIncr(t *testing.T, e *env) {
	a := e.start(t)
	tok := newSession(t, a, a.get(t, "/set?key=init&value=0", ""))
	n := 50
	if e.kind.emulated {
		n = 15
	}
	results := parallel(t, n, func(int) *result {
		return a.get(t, "/incr?key=n&delay=100", tok)
	})
	var got []int
	for _, r := range results {
		if r.code != http.StatusOK {
			t.Errorf("concurrent /incr: %d %q, want 200", r.code, r.body)
			continue
		}
		n, err := strconv.Atoi(r.body)
		if err != nil {
			t.Errorf("concurrent /incr: body %q is not an integer", r.body)
		}
		got = append(got, n)
	}
	want(t, a.get(t, "/get?key=n", tok), http.StatusOK, strconv.Itoa(n))
	slices.Sort(got)
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("concurrent /incr answered %v; want each of 1..%d once", got, n)
		}
	}
	e.wantRecords(t, 1, "after concurrent /incr")
}

// slowCase is a slow request with a token overlapping a fast one.
type slowCase struct {
	slow string // path of the slow request, with a delay
	idle bool   // run the app with -idle, so that reads touch the session
}

var slowRequests = []slowCase{
	{slow: "/set?key=b&value=2&delay=1000"},
	{slow: "/incr?key=n&delay=1000"},
	{slow: "/delete?key=a&delay=1000"},
	{slow: "/get?key=a&delay=1000", idle: true},
	{slow: "/keys?delay=1000", idle: true},
	{slow: "/renew?delay=1000"},
	{slow: "/login?user=u&delay=1000"},
	{slow: "/expiry?idle=100&delay=1000"},
	{slow: "/clear?delay=1000"},
}

func testSlowVersusDestroy(t *testing.T, e *env) {
	for _, tc := range slowRequests {
		t.Run(tc.slow, func(t *testing.T) {
			t.Parallel()
			te := e.fresh(t)
			var flags []string
			if tc.idle {
				flags = []string{"-idle", "20s"}
			}
			a := te.start(t, flags...)
			tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
			slow := doAsync(t, a, tc.slow, tok)
			time.Sleep(300 * time.Millisecond)
			want(t, a.get(t, "/destroy", tok), http.StatusOK, "ok")
			r := <-slow
			if r == nil {
				t.FailNow()
			}
			if r.code >= 500 {
				t.Errorf("slow %s overlapping /destroy: %d %q", tc.slow, r.code, r.body)
			}
			// Nothing may bring the destroyed session back.
			for _, c := range r.setCookies() {
				if c.Name == a.name && c.Value != "" {
					t.Fatalf("slow %s overlapping /destroy answered %d with a session cookie %q", tc.slow, r.code, c.String())
				}
			}
			noSession(t, a, tok)
			te.wantRecords(t, 0, "after a slow request overlapping /destroy")
		})
	}
}

func testSlowVersusRenew(t *testing.T, e *env) {
	for _, tc := range slowRequests {
		t.Run(tc.slow, func(t *testing.T) {
			t.Parallel()
			te := e.fresh(t)
			var flags []string
			if tc.idle {
				flags = []string{"-idle", "20s"}
			}
			a := te.start(t, flags...)
			old := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
			slow := doAsync(t, a, tc.slow, old)
			time.Sleep(300 * time.Millisecond)
			r := a.get(t, "/renew", old)
			want(t, r, http.StatusOK, "ok")
			renewed := newSession(t, a, r)
			r = <-slow
			if r == nil {
				t.FailNow()
			}
			if r.code >= 500 {
				t.Errorf("slow %s overlapping /renew: %d %q", tc.slow, r.code, r.body)
			}
			noCookieWith(t, a, r, old)
			noSession(t, a, old)
			want(t, a.get(t, "/get?key=a", renewed), http.StatusOK, "1")
			// The slow request either failed or started a session of its
			// own: the old record is gone either way.
			extra := 0
			for _, c := range r.setCookies() {
				if c.Name == a.name && c.Value != "" {
					extra++
				}
			}
			te.wantRecords(t, 1+extra, "after a slow request overlapping /renew")
		})
	}
}

func testRestart(t *testing.T, e *env) {
	args := []string{"-idle", "1h"}
	a := e.start(t, args...)
	c := newClient(a)
	want(t, c.get(t, "/set?key=a&value=%7B%22x%22%3A1%7D"), http.StatusOK, "ok")
	want(t, c.get(t, "/login?user=erin"), http.StatusOK, "ok")
	want(t, c.get(t, "/expiry?idle=600"), http.StatusOK, "ok")
	tok := c.token()
	a.stop()
	if t.Failed() {
		t.FailNow()
	}
	b := e.start(t, args...)
	r := b.get(t, "/get?key=a", tok)
	if !e.kind.persistent {
		want(t, r, http.StatusNotFound, "not found")
		noSetCookie(t, r)
		return
	}
	want(t, r, http.StatusOK, `{"x":1}`)
	// The per-session override and the owner survived too.
	r = b.get(t, "/set?key=b&value=1", tok)
	wantCode(t, r, http.StatusOK)
	wantMaxAge(t, b, r, 599, 600)
	if e.kind.sealed { // no owner index
		return
	}
	want(t, b.get(t, "/logout-all?user=erin", ""), http.StatusOK, "1")
	noSession(t, b, tok)
}

// testConcurrentStart starts several instances at once on one fresh store,
// as a deployment of replicas does: each must create the schema or find it.
func testConcurrentStart(t *testing.T, e *env) {
	const n = 6
	apps := make([]*app, n)
	var wg sync.WaitGroup
	for i := range apps {
		wg.Go(func() { apps[i] = startAppNoFatal(t, e.flags...) })
	}
	wg.Wait()
	for i, a := range apps {
		if a == nil {
			t.Fatalf("instance %d of %d started at once did not start", i, n)
		}
	}
	tok := newSession(t, apps[0], apps[0].get(t, "/set?key=a&value=1", ""))
	if e.kind.persistent {
		for _, a := range apps[1:] {
			want(t, a.get(t, "/get?key=a", tok), http.StatusOK, "1")
		}
	}
}

func testShutdown(t *testing.T, e *env) {
	for _, sig := range []string{"SIGTERM", "SIGINT"} {
		t.Run(sig, func(t *testing.T) {
			t.Parallel()
			te := e.fresh(t)
			a := te.start(t)
			tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
			slow := doAsync(t, a, "/set?key=b&value=2&delay=1500", tok)
			time.Sleep(300 * time.Millisecond)
			a.once.Do(func() {
				if sig == "SIGTERM" {
					a.signalAndWait(syscall.SIGTERM)
				} else {
					a.signalAndWait(syscall.SIGINT)
				}
			})
			r := <-slow
			if r == nil {
				t.FailNow()
			}
			want(t, r, http.StatusOK, "ok")
			tok = latest(t, e, a, r, tok)
			if e.kind.persistent {
				b := te.start(t)
				want(t, b.get(t, "/get?key=b", tok), http.StatusOK, "2")
			}
		})
	}
}

func testUnreachable(t *testing.T, e *env) {
	if e.kind.unreachable == nil {
		t.Skipf("%s: no store to be unreachable", e.kind.name)
	}
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"refused", closedAddr},
		{"silent", silentAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.addr(t)
			args := e.kind.unreachable(t, addr)
			if tc.name == "silent" && !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, addr) }) {
				t.Skipf("%s: the store has no network address (the refused case gives it an unwritable path)", e.kind.name)
			}
			res := runToExit(t, args...)
			if res.code == 0 {
				t.Fatalf("exit status 0 with an unreachable store; stdout %q", res.stdout)
			}
			if strings.Contains(res.stdout, "listening on") {
				t.Fatalf("printed %q with an unreachable store", res.stdout)
			}
			if strings.TrimSpace(res.stderr) == "" {
				t.Fatal("no reason on stderr")
			}
			if res.elapsed > 30*time.Second {
				t.Fatalf("took %v to give up, want at most 30 s", res.elapsed)
			}
		})
	}
}

// closedAddr returns an address where connections are refused.
func closedAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// silentAddr returns the address of a server that accepts connections and
// never answers, like a hung database.
func silentAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
