package sessions

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for the decoders of untrusted input that FuzzCandidates,
// FuzzDecodeToken, FuzzDecodeRecord and FuzzOpenSealed leave out: the
// sealed-cookie candidate scanner, the signed-token verifier, the
// candidate scanner with a keyring, and the payload of a sealed cookie
// (authenticated, so it reaches loadSealed only with the key; fuzzed here
// as if the key had leaked). scripts/fuzz.sh runs every target.

func fzKeyring(t testing.TB) *keyring {
	kr, err := newKeyring([][]byte{bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// FuzzSealedCandidates: no Cookie header makes the sealed-cookie scanner
// panic; it returns at most maxCandidates distinct values, each of a
// cookie with the name, of a length a sealed cookie can have, in the order
// of the header.
func FuzzSealedCandidates(f *testing.F) {
	kr := fzKeyring(f)
	v := kr.seal("", "session", []byte("0123456789abcdef\x01\x00"))
	f.Add("session=" + v)
	f.Add("a=1; session=" + v + "; session=" + v + ";session=x")
	f.Add(";;;=;session==;session")
	f.Add(strings.Repeat("session="+v+"; ", 20))
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Cookie": {header, header}}}
		got, seen := sealedCandidates(r, "session")
		if len(got) > maxCandidates {
			t.Fatalf("%d candidates exceed the cap", len(got))
		}
		if len(got) > 0 && !seen {
			t.Fatal("candidates returned without seeing the cookie")
		}
		if seen && !strings.Contains(header, "session=") {
			t.Fatalf("seen without %q in the header", "session=")
		}
		for i, c := range got {
			if len(c) < sealedLen(sealedIDLen) || len(c) > maxCookieLen {
				t.Fatalf("candidate of length %d", len(c))
			}
			if !strings.Contains(header, "session="+c) {
				t.Fatalf("candidate %q not in the header", c)
			}
			for _, d := range got[:i] {
				if c == d {
					t.Fatalf("duplicate candidate %q", c)
				}
			}
		}
	})
}

// FuzzVerifySigned: no cookie value makes the signed-token verifier panic;
// whatever verifies is the canonical signature of its token by one of the
// keys (by the first exactly when old is false), so that only the holder
// of a key can produce it.
func FuzzVerifySigned(f *testing.F) {
	kr := fzKeyring(f)
	_, _, raw := newToken()
	good := kr.sign(raw)
	f.Add(good)
	f.Add(good[:tokenLen] + "." + strings.Repeat("A", signedTokenLen-tokenLen-1))
	f.Add(strings.Repeat("_", signedTokenLen))
	f.Add(good[:signedTokenLen-1] + "B")
	f.Add("")
	old, err := newKeyring([][]byte{bytes.Repeat([]byte{8}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(old.sign(raw))
	f.Fuzz(func(t *testing.T, v string) {
		token, raw, isOld, ok := kr.verify(v)
		if !ok {
			if token != "" {
				t.Fatalf("rejected value returned token %q", token)
			}
			return
		}
		if token != v[:tokenLen] {
			t.Fatalf("token %q is not the value's prefix", token)
		}
		if dec, ok := decodeToken(token); !ok || dec != raw {
			t.Fatalf("verified token %q is not canonical", token)
		}
		signer := kr
		if isOld {
			signer = old
		}
		if want := signer.sign(raw); want != v {
			t.Fatalf("verified %q, but the canonical signature is %q", v, want)
		}
	})
}

// FuzzCandidatesSigned: with a keyring, the token scanner returns only
// correctly signed tokens.
func FuzzCandidatesSigned(f *testing.F) {
	kr := fzKeyring(f)
	_, _, raw := newToken()
	good := kr.sign(raw)
	f.Add("session=" + good)
	f.Add("session=\"" + good + "\"; session=" + good[:tokenLen])
	f.Add("session=" + good[:tokenLen] + "." + strings.Repeat("A", signedTokenLen-tokenLen-1))
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Cookie": {header}}}
		got, _ := candidates(nil, r, "session", kr)
		if len(got) > maxCandidates {
			t.Fatalf("%d candidates exceed the cap", len(got))
		}
		for _, c := range got {
			tok, raw, _, ok := kr.verify(c.token)
			if !ok || raw != c.raw || tok != c.token[:tokenLen] {
				t.Fatalf("candidate %q does not verify", c.token)
			}
		}
	})
}

// FuzzSealedPayload: a client-side Manager given a cookie that opens (the
// fuzzer holds the key) but whose payload is arbitrary never panics and
// never fails the request: it either loads a session whose record decodes,
// or starts a new one. (A value that is not JSON of the type asked for is
// an error of Get, as for any stored value of another type: the handler
// here ignores it.)
func FuzzSealedPayload(f *testing.F) {
	now := time.Now()
	rec := record{values: valuesOf(map[string]json.RawMessage{"k": json.RawMessage(`"v"`)}), start: now.UnixMilli()}
	payload := func(exp int64, body []byte) []byte {
		b := bytes.Repeat([]byte{9}, sealedIDLen)
		b = binary.AppendUvarint(b, uint64(exp))
		return append(b, body...)
	}
	f.Add(payload(now.Add(time.Hour).UnixMilli(), rec.encode()))
	f.Add(payload(now.Add(-time.Hour).UnixMilli(), rec.encode()))
	f.Add(payload(1<<62, []byte{1, 0}))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	keys := [][]byte{bytes.Repeat([]byte{7}, 32)}
	m, err := NewClientSide(&Options{Keys: keys, CookieName: "session", InsecureCookie: true})
	if err != nil {
		f.Fatal(err)
	}
	kr := m.keys
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		_, _, _ = Get[string](s, "k")
		if _, err := s.Keys(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	f.Fuzz(func(t *testing.T, pt []byte) {
		v := kr.seal(m.cfg.Purpose, "session", pt)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", "session="+v)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for payload %x: %s", w.Code, pt, w.Body)
		}
	})
}
