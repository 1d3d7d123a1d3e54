package sessions

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
)

// A token is the secret a browser holds: 32 bytes from crypto/rand in
// unpadded base64url, 43 characters. Stores only ever see its ID, the
// lower-case hex SHA-256 of the 32 bytes.
const (
	tokenBytes = 32
	tokenLen   = 43 // base64.RawURLEncoding.EncodedLen(tokenBytes)

	// maxCandidates bounds how many well-formed tokens of one request are
	// looked up, so that a request carrying hundreds of cookies cannot
	// cause hundreds of store round trips. Browsers send one cookie per
	// matching Path and Domain, a handful at most; malformed values do not
	// count against the bound.
	maxCandidates = 16
)

// newToken returns a fresh token, its store ID and its bytes.
func newToken() (token, id string, raw [tokenBytes]byte) {
	rand.Read(raw[:]) // never returns an error; crashes the program instead (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(raw[:]), tokenID(raw), raw
}

// b64 maps a base64url character to its 6-bit value, or 0xff.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeToken decodes a canonical token without allocating. It rejects
// every string that newToken cannot produce: another length, another
// alphabet, padding, or non-zero trailing bits.
func decodeToken(s string) (b [tokenBytes]byte, ok bool) {
	if len(s) != tokenLen {
		return b, false
	}
	// Ten groups of four characters make 30 bytes; valid characters map to
	// values below 64, so one test per group finds any invalid one.
	for i, j := 0, 0; i < 40; i, j = i+4, j+3 {
		c0, c1, c2, c3 := b64[s[i]], b64[s[i+1]], b64[s[i+2]], b64[s[i+3]]
		if (c0|c1|c2|c3)&0xc0 != 0 {
			return b, false
		}
		b[j] = c0<<2 | c1>>4
		b[j+1] = c1<<4 | c2>>2
		b[j+2] = c2<<6 | c3
	}
	// The last three characters carry 18 bits: two bytes, then two bits
	// that must be zero.
	c0, c1, c2 := b64[s[40]], b64[s[41]], b64[s[42]]
	if (c0|c1|c2)&0xc0 != 0 || c2&3 != 0 {
		return b, false
	}
	b[30] = c0<<2 | c1>>4
	b[31] = c1<<4 | c2>>2
	return b, true
}

const hexDigits = "0123456789abcdef"

// tokenID returns the store ID of a token that decodeToken accepted.
func tokenID(raw [tokenBytes]byte) string {
	sum := sha256.Sum256(raw[:])
	var buf [2 * sha256.Size]byte
	// hex.Encode, with the bounds checks the fixed sizes make unnecessary
	// left out by the compiler: this runs on every request with a cookie.
	for i, c := range sum {
		buf[2*i] = hexDigits[c>>4]
		buf[2*i+1] = hexDigits[c&0x0f]
	}
	return string(buf[:])
}

// A candidate is a well-formed token from the request (the cookie value)
// and its bytes; old is set when an older key signed it.
type candidate struct {
	token string
	raw   [tokenBytes]byte
	old   bool
}

// candidates returns the distinct well-formed tokens that the request's
// cookies named name carry, in order, at most maxCandidates, and whether any
// cookie had that name. Every Cookie header line is considered, and a
// malformed value never hides a valid one. Cookies are parsed by hand, for
// the configured name only, so that requests with many cookies cost no more
// than a scan.
// The result is appended to out, which the caller may preallocate.
//
// With a keyring (Options.Keys), only correctly signed tokens are
// candidates, so forged or random values cost no store call.
func candidates(out []candidate, r *http.Request, name string, kr *keyring) (_ []candidate, seen bool) {
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			seen = true
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1] // RFC 6265 allows a quoted value
			}
			var (
				raw [tokenBytes]byte
				old bool
			)
			if kr != nil {
				_, raw, old, ok = kr.verify(v)
			} else {
				raw, ok = decodeToken(v)
			}
			if !ok || slices.ContainsFunc(out, func(c candidate) bool { return c.token == v }) {
				continue
			}
			out = append(out, candidate{v, raw, old})
			if len(out) == maxCandidates {
				return out, true
			}
		}
	}
	return out, seen
}
