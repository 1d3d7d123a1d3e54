package sessions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// Sealed cookies, format 1 (docs/cookie-format.md is the full
// specification, with test vectors in testdata/sealed-v1.json):
//
//	value  = base64url-unpadded(header || ciphertext)
//	header = 0x01 || key id (4) || salt (16) || nonce (12)
//	subkey = HKDF-SHA256(secret = key, salt = salt, info = "sessionkit sealed cookie v1", 32 bytes)
//	ciphertext = AES-256-GCM(subkey, nonce, plaintext, aad)
//	aad    = "sessionkit sealed cookie v1" || 0x00 || purpose || 0x00 || cookie name || 0x00 || header
//
// Every cookie gets its own subkey from a fresh random salt, so no
// AES-GCM key ever seals more than a handful of messages: the nonce-reuse
// bound of random-nonce AES-GCM (2^32 messages per key) does not apply.
// Two cookies share a subkey only if their 128-bit salts collide, and then
// they still need colliding 96-bit nonces: after 2^64 cookies under one key
// the chance of any subkey-and-nonce reuse is below 2^-96.
const (
	sealVersion  = 1
	keyIDLen     = 4
	saltLen      = 16
	nonceLen     = 12
	tagLen       = 16
	sealHeader   = 1 + keyIDLen + saltLen + nonceLen
	sealOverhead = sealHeader + tagLen
	sealLabel    = "sessionkit sealed cookie v1"
	keyIDLabel   = "sessionkit key id v1"
	tokenLabel   = "sessionkit signed token v1"

	// MinKeyLen is the shortest key [Options.Keys] accepts, in bytes.
	MinKeyLen = 32

	// maxCookieLen is the largest name=value browsers keep (RFC 6265bis).
	maxCookieLen = 4096
)

// keyring holds the keys of Options.Keys: the first seals and signs, every
// one opens and verifies.
type keyring struct {
	keys [][]byte
	ids  [][keyIDLen]byte
}

// newKeyring validates and copies keys.
func newKeyring(keys [][]byte) (*keyring, error) {
	kr := &keyring{}
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("key %d of Options.Keys has %d bytes, want at least %d (use 32 bytes from crypto/rand)", i, len(k), MinKeyLen)
		}
		k = append([]byte(nil), k...)
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(keyIDLabel))
		var id [keyIDLen]byte
		copy(id[:], mac.Sum(nil))
		for j, prev := range kr.keys {
			if hmac.Equal(prev, k) {
				return nil, fmt.Errorf("key %d of Options.Keys repeats key %d", i, j)
			}
		}
		kr.keys, kr.ids = append(kr.keys, k), append(kr.ids, id)
	}
	return kr, nil
}

// aad returns the associated data of a sealed cookie.
func sealAAD(purpose, name string, header []byte) []byte {
	b := make([]byte, 0, len(sealLabel)+len(purpose)+len(name)+3+len(header))
	b = append(b, sealLabel...)
	b = append(b, 0)
	b = append(b, purpose...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	return append(b, header...)
}

func aead(key, salt []byte) cipher.AEAD {
	sub, err := hkdf.Key(sha256.New, key, salt, sealLabel, 32)
	if err != nil {
		panic(err) // 32 bytes of SHA-256 output never fail
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// sealedLen returns the length of the cookie value that seals n bytes.
func sealedLen(n int) int { return base64.RawURLEncoding.EncodedLen(sealOverhead + n) }

// seal encrypts plaintext under the first key, bound to purpose and name.
func (kr *keyring) seal(purpose, name string, plaintext []byte) string {
	return kr.sealWith(purpose, name, plaintext, nil)
}

// sealWith is seal with the salt and nonce taken from random (nil: crypto/rand),
// for test vectors.
func (kr *keyring) sealWith(purpose, name string, plaintext, random []byte) string {
	buf := make([]byte, sealHeader, sealOverhead+len(plaintext))
	buf[0] = sealVersion
	copy(buf[1:], kr.ids[0][:])
	if random != nil {
		copy(buf[1+keyIDLen:sealHeader], random)
	} else {
		rand.Read(buf[1+keyIDLen : sealHeader])
	}
	salt, nonce := buf[1+keyIDLen:1+keyIDLen+saltLen], buf[1+keyIDLen+saltLen:sealHeader]
	buf = aead(kr.keys[0], salt).Seal(buf, nonce, plaintext, sealAAD(purpose, name, buf[:sealHeader]))
	return base64.RawURLEncoding.EncodeToString(buf)
}

var errUnsealed = errors.New("sessions: cookie does not open")

// open decrypts a sealed cookie value and returns its plaintext and the
// index of the key that opened it. Any failure (length, encoding, version,
// unknown key, authentication) is errUnsealed, from one path.
func (kr *keyring) open(purpose, name, value string) ([]byte, int, error) {
	if len(value) > maxCookieLen || len(value) < sealedLen(0) {
		return nil, 0, errUnsealed
	}
	buf, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(buf) < sealOverhead || buf[0] != sealVersion {
		return nil, 0, errUnsealed
	}
	header := buf[:sealHeader]
	salt, nonce := header[1+keyIDLen:1+keyIDLen+saltLen], header[1+keyIDLen+saltLen:]
	aad := sealAAD(purpose, name, header)
	for i, id := range kr.ids {
		if [keyIDLen]byte(header[1:1+keyIDLen]) != id {
			continue // two keys share an id once in 2^32: both are tried
		}
		if pt, err := aead(kr.keys[i], salt).Open(nil, nonce, buf[sealHeader:], aad); err == nil {
			return pt, i, nil
		}
	}
	return nil, 0, errUnsealed
}

// Signed tokens (Options.Keys with a Store): the cookie value is the token
// followed by "." and base64url(key id || tag), where tag is the first 16
// bytes of HMAC-SHA256(key, "sessionkit signed token v1" || token bytes).
const signedTokenLen = tokenLen + 1 + ((keyIDLen+tagLen)*8+5)/6 // 43 + 1 + 27 = 71

func (kr *keyring) tag(i int, raw [tokenBytes]byte) [tagLen]byte {
	mac := hmac.New(sha256.New, kr.keys[i])
	mac.Write([]byte(tokenLabel))
	mac.Write(raw[:])
	var t [tagLen]byte
	copy(t[:], mac.Sum(nil))
	return t
}

// sign returns the cookie value of a token signed with the first key.
func (kr *keyring) sign(raw [tokenBytes]byte) string {
	var b [keyIDLen + tagLen]byte
	copy(b[:], kr.ids[0][:])
	t := kr.tag(0, raw)
	copy(b[keyIDLen:], t[:])
	return base64.RawURLEncoding.EncodeToString(raw[:]) + "." + base64.RawURLEncoding.EncodeToString(b[:])
}

// verify checks a signed cookie value and returns its token, the token's
// bytes, and whether a key other than the first signed it.
func (kr *keyring) verify(v string) (token string, raw [tokenBytes]byte, old bool, ok bool) {
	if len(v) != signedTokenLen || v[tokenLen] != '.' {
		return "", raw, false, false
	}
	token = v[:tokenLen]
	if raw, ok = decodeToken(token); !ok {
		return "", raw, false, false
	}
	var b [keyIDLen + tagLen]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(v[tokenLen+1:])); err != nil || n != len(b) {
		return "", raw, false, false
	}
	for i, id := range kr.ids {
		if [keyIDLen]byte(b[:keyIDLen]) != id {
			continue
		}
		if t := kr.tag(i, raw); hmac.Equal(t[:], b[keyIDLen:]) {
			return token, raw, i > 0, true
		}
	}
	return "", raw, false, false
}
