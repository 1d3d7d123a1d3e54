package sessions_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionkit/sessions"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustClientSide(t testing.TB, opts *sessions.Options) *sessions.Manager {
	t.Helper()
	m, err := sessions.NewClientSide(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClientSideSameAPI: the handlers of the server-side tests work
// unchanged on client-side sessions.
func TestClientSideSameAPI(t *testing.T) {
	m := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}})
	c := newClient(t, m, logoutHandler(t, m))
	if w := c.get("/"); len(setCookies(w)) != 0 {
		t.Errorf("an untouched request sent %q", setCookies(w))
	}
	w := c.get("/set?k=a&v=hello")
	sc := sessionCookie(w, m.CookieName())
	if sc == nil || !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteLaxMode || sc.MaxAge != 24*3600 {
		t.Fatalf("new session cookie %q", setCookies(w))
	}
	if w := c.get("/get?k=a"); w.Body.String() != "hello" {
		t.Errorf("read: %d %q", w.Code, w.Body)
	}
	for i := 1; i <= 3; i++ {
		if w := c.get("/incr"); w.Body.String() != strings.Repeat("", 0)+string(rune('0'+i)) {
			t.Errorf("increment %d: %q", i, w.Body)
		}
	}
	first := c.cookie.Value
	c.get("/renew")
	if c.cookie.Value == first {
		t.Error("renew kept the cookie")
	}
	if w := c.get("/n"); w.Body.String() != "3" {
		t.Errorf("after renew: %q", w.Body)
	}
	if w := c.get("/destroy"); c.cookie != nil {
		t.Errorf("destroy: %q", setCookies(w))
	}
	if _, err := m.ListOwner(context.Background(), "alice"); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("ListOwner: %v", err)
	}
	if _, err := m.DestroyOwner(context.Background(), "alice"); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("DestroyOwner: %v", err)
	}
	if err := m.DestroyID(context.Background(), "00"); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("DestroyID without a revocation store: %v", err)
	}
	if err := m.Sweep(context.Background(), time.Second); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("Sweep without a revocation store: %v", err)
	}
}

func TestClientSideOptions(t *testing.T) {
	tests := []struct {
		name string
		opts *sessions.Options
	}{
		{"nil", nil},
		{"no keys", &sessions.Options{}},
		{"short key", &sessions.Options{Keys: [][]byte{make([]byte, 31)}}},
		{"repeated key", &sessions.Options{Keys: [][]byte{key(1), key(1)}}},
		{"MaxDataSize over a cookie", &sessions.Options{Keys: [][]byte{key(1)}, MaxDataSize: 4096}},
	}
	for _, tt := range tests {
		if _, err := sessions.NewClientSide(tt.opts); !errors.Is(err, sessions.ErrInvalidOptions) {
			t.Errorf("%s: %v, want ErrInvalidOptions", tt.name, err)
		}
	}
	if _, err := sessions.New(mem(), &sessions.Options{Purpose: "x"}); !errors.Is(err, sessions.ErrInvalidOptions) {
		t.Errorf("New with Purpose: %v", err)
	}
	if _, err := sessions.New(mem(), &sessions.Options{Revocation: mem()}); !errors.Is(err, sessions.ErrInvalidOptions) {
		t.Errorf("New with Revocation: %v", err)
	}
	if _, err := sessions.New(mem(), &sessions.Options{Keys: [][]byte{[]byte("short")}}); !errors.Is(err, sessions.ErrInvalidOptions) {
		t.Errorf("New with a short key: %v", err)
	}
}

// TestClientSideKeyRotation: a new key goes first; cookies sealed with the
// old one still open and are sealed again with the new one on that
// response; a cookie from a removed key is no session.
func TestClientSideKeyRotation(t *testing.T) {
	old := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}})
	c := newClient(t, old, testHandler(t))
	c.get("/set?k=a&v=1")
	sealedOld := c.cookie.Value
	rotated := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(2), key(1)}})
	c.h = rotated.Handler(testHandler(t))
	w := c.get("/get?k=a")
	if w.Body.String() != "1" || len(setCookies(w)) != 1 || c.cookie.Value == sealedOld {
		t.Fatalf("read through the rotated keys: %d %q %q", w.Code, w.Body, setCookies(w))
	}
	if keyID(c.cookie.Value) == keyID(sealedOld) {
		t.Error("the re-sealed cookie names the old key")
	}
	if w := c.get("/get?k=a"); len(setCookies(w)) != 0 {
		t.Errorf("a cookie of the first key was sealed again: %q", setCookies(w))
	}
	retired := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(2)}})
	c.h = retired.Handler(testHandler(t))
	c.cookie.Value = sealedOld
	if w := c.get("/get?k=a"); w.Code != 404 {
		t.Errorf("a cookie of a removed key: %d %q", w.Code, w.Body)
	}
}

func keyID(v string) string {
	b, _ := base64.RawURLEncoding.DecodeString(v)
	return string(b[1:5])
}

// TestClientSideBadInput: every kind of bad cookie is no session: 200, no
// store, no panic, never adopted.
func TestClientSideBadInput(t *testing.T) {
	m := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}, Purpose: "app"})
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=secret")
	good := c.cookie.Value
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	otherName := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}, Purpose: "app", CookieName: "__Host-other"})
	otherPurpose := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}, Purpose: "other"})
	sealedElsewhere := func(mm *sessions.Manager) string {
		cc := newClient(t, mm, testHandler(t))
		cc.get("/set?k=a&v=secret")
		return cc.cookie.Value
	}
	synctest.Test(t, func(t *testing.T) {
		short := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}, Purpose: "app", Lifetime: time.Minute})
		cc := newClient(t, short, testHandler(t))
		cc.get("/set?k=a&v=secret")
		time.Sleep(2 * time.Minute)
		expired := cc.cookie.Value
		if w := cc.get("/get?k=a"); w.Code != 404 {
			t.Errorf("an expired cookie: %d", w.Code)
		}
		_ = expired
	})
	tests := map[string]string{
		"tampered header":    flip(2),
		"tampered body":      flip(len(raw) - 20),
		"tampered tag":       flip(len(raw) - 1),
		"truncated":          good[:len(good)-3],
		"extended":           good + "AAAA",
		"unknown version":    flip(0),
		"not base64":         strings.Replace(good, good[10:11], "*", 1),
		"padding":            good + "=",
		"empty":              "",
		"oversized":          strings.Repeat("A", 5000),
		"other cookie name":  sealedElsewhere(otherName),
		"other purpose":      sealedElsewhere(otherPurpose),
		"other key":          sealedElsewhere(mustClientSide(t, &sessions.Options{Keys: [][]byte{key(9)}, Purpose: "app"})),
		"server-side token":  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"just the header":    base64.RawURLEncoding.EncodeToString(raw[:33]),
		"quoted bad value":   `"` + flip(5) + `"`,
		"id only, no record": base64.RawURLEncoding.EncodeToString(raw[:49]),
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/get?k=a", nil)
			r.Header.Set("Cookie", m.CookieName()+"="+v)
			w := httptest.NewRecorder()
			m.Handler(testHandler(t)).ServeHTTP(w, r)
			if w.Code != 404 || len(setCookies(w)) != 0 {
				t.Errorf("%d %q %q, want no session and no cookie", w.Code, w.Body, setCookies(w))
			}
			// A write starts a fresh session: the bad value is never adopted.
			r = httptest.NewRequest("GET", "/set?k=b&v=1", nil)
			r.Header.Set("Cookie", m.CookieName()+"="+v)
			w = httptest.NewRecorder()
			m.Handler(testHandler(t)).ServeHTTP(w, r)
			if sc := sessionCookie(w, m.CookieName()); w.Code != 200 || sc == nil || sc.Value == v {
				t.Errorf("a write with a bad cookie: %d %q", w.Code, setCookies(w))
			}
		})
	}
	t.Run("bad before good", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/get?k=a", nil)
		r.Header.Add("Cookie", m.CookieName()+"="+flip(3))
		r.Header.Add("Cookie", m.CookieName()+"="+good)
		w := httptest.NewRecorder()
		m.Handler(testHandler(t)).ServeHTTP(w, r)
		if w.Body.String() != "secret" {
			t.Errorf("a bad cookie hid a good one: %d %q", w.Code, w.Body)
		}
	})
}

// TestClientSideExpiry: creation time, deadlines and overrides are inside
// the cookie and enforced on every request; reads that move the idle
// deadline re-send the cookie, throttled.
func TestClientSideExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}, IdleTimeout: 10 * time.Minute, Lifetime: time.Hour})
		c := newClient(t, m, testHandler(t))
		c.get("/set?k=a&v=1")
		time.Sleep(30 * time.Second)
		if w := c.get("/get?k=a"); len(setCookies(w)) != 0 {
			t.Errorf("a read 30 s later re-sent the cookie (the touch interval is 1 min): %q", setCookies(w))
		}
		for range 5 {
			time.Sleep(9 * time.Minute)
			if w := c.get("/get?k=a"); w.Body.String() != "1" || len(setCookies(w)) != 1 {
				t.Fatalf("a read after 9 min: %d %q %q", w.Code, w.Body, setCookies(w))
			}
		}
		time.Sleep(16 * time.Minute) // 61 min since the start: past the Lifetime
		if w := c.get("/get?k=a"); w.Code != 404 {
			t.Errorf("past the absolute lifetime: %d", w.Code)
		}
		c.cookie = nil
		c.get("/set?k=a&v=2")
		stale := c.cookie.Value
		time.Sleep(11 * time.Minute)
		if w := c.get("/get?k=a"); w.Code != 404 {
			t.Errorf("idle for 11 min under a 10 min idle timeout: %d", w.Code)
		}
		c.cookie.Value = stale
		c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := sessions.FromContext(r.Context())
			s.Set("x", 1)
		}))
		c.cookie = nil
		c.get("/")
		c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := sessions.FromContext(r.Context())
			must(t, s.SetDeadline(time.Now().Add(2*time.Minute)))
		}))
		c.get("/")
		time.Sleep(3 * time.Minute)
		c.h = m.Handler(testHandler(t))
		if w := c.get("/get?k=x"); w.Code != 404 {
			t.Errorf("past its own deadline: %d", w.Code)
		}
	})
}

// TestClientSideSize: a change that would not fit in a cookie fails at the
// call with a TooLargeError and the previous cookie stays valid.
func TestClientSideSize(t *testing.T) {
	m := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}})
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=1")
	before := c.cookie.Value
	var setErr error
	c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setErr = sessions.FromContext(r.Context()).Set("big", strings.Repeat("x", 4000))
	}))
	w := c.get("/")
	var tl *sessions.TooLargeError
	if !errors.As(setErr, &tl) || len(setCookies(w)) != 0 || c.cookie.Value != before {
		t.Errorf("an oversized change: %v, %q", setErr, setCookies(w))
	}
	c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		for i := 0; ; i++ {
			if err := s.Set(strings.Repeat("k", 8)+string(rune('a'+i%26))+strings.Repeat("z", i/26), strings.Repeat("v", 100)); err != nil {
				break
			}
		}
	}))
	w = c.get("/")
	sc := sessionCookie(w, m.CookieName())
	if sc == nil || len(sc.Name)+1+len(sc.Value) > 4096 {
		t.Fatalf("a session filled to the limit: %q", setCookies(w))
	}
	if len(sc.Name)+1+len(sc.Value) < 3900 {
		t.Errorf("a full session's cookie has %d bytes; the limit wastes room", len(sc.Name)+1+len(sc.Value))
	}
}

// TestClientSideRevocation: with a revocation store, a replayed cookie
// fails after Destroy or Renew, and DestroyID revokes a session; without
// one, a copy stays valid until its expiry (documented).
func TestClientSideRevocation(t *testing.T) {
	for _, revoke := range []bool{false, true} {
		opts := &sessions.Options{Keys: [][]byte{key(1)}}
		rev := newStepStore()
		if revoke {
			opts.Revocation = rev
		}
		m := mustClientSide(t, opts)
		c := newClient(t, m, logoutHandler(t, m))
		c.get("/set?k=a&v=1")
		copied := *c.cookie
		c.get("/destroy")
		replay := newClient(t, m, logoutHandler(t, m))
		replay.cookie = &copied
		w := replay.get("/get?k=a")
		if revoke && w.Code != 404 {
			t.Errorf("with revocation, a cookie replayed after Destroy: %d %q", w.Code, w.Body)
		}
		if !revoke && w.Body.String() != "1" {
			t.Errorf("without revocation, a copied cookie stays valid until its expiry (documented): %d", w.Code)
		}
		if !revoke {
			continue
		}
		c.get("/set?k=a&v=2")
		beforeRenew := *c.cookie
		c.get("/renew")
		replay.cookie = &beforeRenew
		if w := replay.get("/get?k=a"); w.Code != 404 {
			t.Errorf("a cookie replayed after Renew: %d", w.Code)
		}
		if w := c.get("/get?k=a"); w.Body.String() != "2" {
			t.Errorf("the renewed session: %d %q", w.Code, w.Body)
		}
		var id string
		c.h = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ = sessions.FromContext(r.Context()).ID()
		}))
		c.get("/")
		if err := m.DestroyID(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		c.h = m.Handler(logoutHandler(t, m))
		if w := c.get("/get?k=a"); w.Code != 404 {
			t.Errorf("after DestroyID: %d", w.Code)
		}
		// A failing revocation store fails closed.
		rev.setFail(errors.New("down"))
		c.cookie = &beforeRenew
		c.get("/set?k=z&v=1")
		if w := c.get("/get?k=z"); w.Code < 500 {
			t.Errorf("with the revocation store down: %d, want a 5xx", w.Code)
		}
	}
}

// TestSignedTokens: with Options.Keys on a server-side store, random or
// forged cookie values cost no store call, signed ones work, and a token
// signed by an older key is signed again with the first.
func TestSignedTokens(t *testing.T) {
	spy := newSpy()
	m := mustNew(t, spy, &sessions.Options{Keys: [][]byte{key(1)}})
	h := m.Handler(testHandler(t))
	buf := make([]byte, 52)
	for i := range 10000 {
		for j := range buf {
			buf[j] = byte(i*31 + j*7)
		}
		v := base64.RawURLEncoding.EncodeToString(buf)
		if i%2 == 0 {
			v = v[:43] + "." + v[44:] // the signed shape, with a wrong MAC
		}
		r := httptest.NewRequest("GET", "/get?k=a", nil)
		r.Header.Set("Cookie", m.CookieName()+"="+v)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if n := spy.total(); n != 0 {
		t.Errorf("10,000 random cookie values caused %d store calls, want 0", n)
	}
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=1")
	if len(c.cookie.Value) != 71 || c.cookie.Value[43] != '.' {
		t.Fatalf("signed cookie value %q", c.cookie.Value)
	}
	if w := c.get("/get?k=a"); w.Body.String() != "1" {
		t.Errorf("signed session: %d %q", w.Code, w.Body)
	}
	unsigned := *c.cookie
	unsigned.Value = unsigned.Value[:43]
	other := newClient(t, m, testHandler(t))
	other.cookie = &unsigned
	if w := other.get("/get?k=a"); w.Code != 404 {
		t.Errorf("an unsigned token with signing on: %d", w.Code)
	}
	rotated := mustNew(t, spy, &sessions.Options{Keys: [][]byte{key(2), key(1)}})
	c.h = rotated.Handler(testHandler(t))
	old := c.cookie.Value
	w := c.get("/get?k=a")
	if w.Body.String() != "1" || c.cookie.Value == old || c.cookie.Value[:43] != old[:43] {
		t.Errorf("rotation: %q %q (was %q)", w.Body, setCookies(w), old)
	}
}

// TestClientSideQuotedCookie: a sealed cookie value in quotes (RFC 6265
// allows them) opens like the bare value.
func TestClientSideQuotedCookie(t *testing.T) {
	m := mustClientSide(t, &sessions.Options{Keys: [][]byte{key(1)}})
	c := newClient(t, m, testHandler(t))
	c.get("/set?k=a&v=1")
	for _, v := range []string{c.cookie.Value, `"` + c.cookie.Value + `"`} {
		r := httptest.NewRequest("GET", "/get?k=a", nil)
		r.Header.Set("Cookie", m.CookieName()+"="+v)
		w := httptest.NewRecorder()
		m.Handler(testHandler(t)).ServeHTTP(w, r)
		if w.Body.String() != "1" {
			t.Errorf("cookie value %.20q...: %d %q", v, w.Code, w.Body)
		}
	}
}
