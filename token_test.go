package sessions

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestNewTokenIsCanonical(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok, id, _ := newToken()
		if raw, _ := decodeToken(tok); tokenID(raw) != id {
			t.Fatalf("newToken's ID %q is not the ID of its token %q", id, tok)
		}
		if len(tok) != tokenLen {
			t.Fatalf("token %q has length %d, want %d", tok, len(tok), tokenLen)
		}
		raw, ok := decodeToken(tok)
		if !ok {
			t.Fatalf("decodeToken rejected a fresh token %q", tok)
		}
		if got := base64.RawURLEncoding.EncodeToString(raw[:]); got != tok {
			t.Fatalf("decodeToken(%q) decoded to bytes that encode as %q", tok, got)
		}
		if seen[tok] {
			t.Fatalf("token %q generated twice", tok)
		}
		seen[tok] = true
	}
}

func TestDecodeTokenRejects(t *testing.T) {
	good := tok()
	// A canonical token ends in a character whose low 2 bits are zero; "B"
	// (value 1) sets a trailing bit.
	trailing := good[:tokenLen-1] + "B"
	tests := []struct {
		name, tok string
	}{
		{"empty", ""},
		{"short", good[:tokenLen-1]},
		{"long", good + "A"},
		{"padded", good + "="},
		{"std alphabet plus", "+" + good[1:]},
		{"std alphabet slash", "/" + good[1:]},
		{"space", " " + good[1:]},
		{"non-ASCII", "é" + good[2:]},
		{"trailing bits", trailing},
		{"five kilobytes", strings.Repeat("A", 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := decodeToken(tt.tok); ok {
				t.Errorf("decodeToken(%q) accepted a value newToken cannot produce", tt.tok)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	a, b, c := tok(), tok(), tok()
	tests := []struct {
		name    string
		headers []string
		want    []string
		seen    bool
	}{
		{"no cookie", nil, nil, false},
		{"other cookies", []string{"x=1; y=" + a}, nil, false},
		{"one", []string{"session=" + a}, []string{a}, true},
		{"spaces", []string{"x=1;   session=" + a + "  ; y=2"}, []string{a}, true},
		{"quoted", []string{`session="` + a + `"`}, []string{a}, true},
		{"invalid first does not hide valid", []string{"session=bogus; session=" + a}, []string{a}, true},
		{"both orders", []string{"session=" + a + "; session=" + b}, []string{a, b}, true},
		{"duplicates collapse", []string{"session=" + a + "; session=" + a}, []string{a}, true},
		{"several header lines", []string{"x=1", "session=" + b, "session=" + c}, []string{b, c}, true},
		{"only invalid", []string{"session=; session=abc"}, nil, true},
		{"prefix name is not ours", []string{"xsession=" + a + "; session2=" + b}, nil, false},
		{"capped", []string{manyTokens(maxCandidates + 4)}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			for _, h := range tt.headers {
				r.Header.Add("Cookie", h)
			}
			cands, seen := candidates(nil, r, "session", nil)
			var got []string
			for _, c := range cands {
				got = append(got, c.token)
			}
			if tt.name == "capped" {
				if len(got) != maxCandidates {
					t.Fatalf("got %d candidates, want the cap %d", len(got), maxCandidates)
				}
				return
			}
			if !slices.Equal(got, tt.want) || seen != tt.seen {
				t.Errorf("candidates = %q, %v; want %q, %v", got, seen, tt.want, tt.seen)
			}
		})
	}
}

func TestCandidatesAllocs(t *testing.T) {
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "a=1; b=2; c=3")
	if n := testing.AllocsPerRun(100, func() { candidates(nil, r, "session", nil) }); n != 0 {
		t.Errorf("candidates without a session cookie allocates %v times, want 0", n)
	}
}

// FuzzCandidates checks that no Cookie header makes the parser panic, and
// that everything it returns is a canonical token.
func FuzzCandidates(f *testing.F) {
	f.Add("session=" + tok())
	f.Add("session=; session=\"\"; session=" + strings.Repeat("x", 300))
	f.Add(";;;=;session==;session")
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Cookie": {header, header}}}
		got, seen := candidates(nil, r, "session", nil)
		if len(got) > maxCandidates {
			t.Fatalf("%d candidates exceed the cap", len(got))
		}
		if len(got) > 0 && !seen {
			t.Fatal("candidates returned without seeing the cookie")
		}
		for _, c := range got {
			raw, ok := decodeToken(c.token)
			if !ok || raw != c.raw || base64.RawURLEncoding.EncodeToString(raw[:]) != c.token {
				t.Fatalf("non-canonical candidate %q", c.token)
			}
		}
	})
}

// FuzzDecodeToken checks that decodeToken accepts exactly the canonical
// base64url encodings of 32 bytes.
func FuzzDecodeToken(f *testing.F) {
	f.Add(tok())
	f.Add(strings.Repeat("A", tokenLen))
	f.Add(strings.Repeat("_", tokenLen))
	f.Fuzz(func(t *testing.T, s string) {
		raw, ok := decodeToken(s)
		want, err := base64.RawURLEncoding.Strict().DecodeString(s)
		// The standard decoder skips CR and LF; a token never contains them.
		stdOK := err == nil && len(want) == tokenBytes && !strings.ContainsAny(s, "\r\n")
		if ok != stdOK {
			t.Fatalf("decodeToken(%q) ok=%v, strict base64url says %v", s, ok, stdOK)
		}
		if ok && string(raw[:]) != string(want) {
			t.Fatalf("decodeToken(%q) = %x, want %x", s, raw, want)
		}
	})
}

// manyTokens returns a Cookie header with n distinct session tokens.
func manyTokens(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "session=" + tok()
	}
	return strings.Join(parts, "; ")
}

// tok returns a fresh token.
func tok() string {
	t, _, _ := newToken()
	return t
}
