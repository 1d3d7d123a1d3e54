package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Client-side sessions: the payload sealed into the cookie is
//
//	id (16 random bytes) || expiry (uvarint, Unix ms) || record (record.go)
//
// The id names the session for renewal, revocation and [Session.ID]; the
// expiry is the one a server-side store would hold, enforced on every
// load together with the record's own deadlines.
const sealedIDLen = 16

// sealedCandidates returns the distinct values of the request's cookies
// named name that could be sealed cookies, in order, at most
// maxCandidates, and whether any cookie had that name.
func sealedCandidates(r *http.Request, name string) (out []string, seen bool) {
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k != name {
				continue
			}
			seen = true
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1] // RFC 6265 allows a quoted value
			}
			if len(v) < sealedLen(sealedIDLen) || len(v) > maxCookieLen || slices.Contains(out, v) {
				continue
			}
			if out = append(out, v); len(out) == maxCandidates {
				return out, true
			}
		}
	}
	return out, seen
}

// loadSealed finds the request's session among its sealed cookies: the
// first that opens, is live at now under the current options, and (with a
// revocation store) was not revoked. A revocation store failure is kept
// and returned by every accessor, never taken for "not revoked".
func (s *Session) loadSealed(now time.Time) {
	vals, hadCookie := sealedCandidates(s.req, s.m.cfg.CookieName)
	s.hadCookie = hadCookie
	s.rec = record{}
	for _, v := range vals {
		pt, key, err := s.m.keys.open(s.m.cfg.Purpose, s.m.cfg.CookieName, v)
		if err != nil || len(pt) < sealedIDLen {
			continue
		}
		d := decoder{b: pt[sealedIDLen:]}
		expiry := time.UnixMilli(d.int())
		if d.err {
			continue
		}
		rec, err := decodeRecord(d.b)
		if err != nil {
			s.m.cfg.Logger.WarnContext(s.ctx, "sessions: sealed cookie with a corrupt record ignored", "err", err)
			continue
		}
		if !expiry.After(now) || !s.m.live(&rec, expiry, now) {
			continue
		}
		id := hex.EncodeToString(pt[:sealedIDLen])
		if s.m.store != nil {
			revoked, err := s.revoked(id, now)
			if err != nil {
				s.err = err
				s.m.cfg.Logger.ErrorContext(s.ctx, "sessions: revocation check failed", "session", id[:8], "err", err)
				return
			}
			if revoked {
				continue
			}
		}
		s.token, s.id, s.exists, s.expiry, s.rec, s.size = v, id, true, expiry, rec, len(d.b)
		s.reseal = key > 0 // opened with an older key: sealed again with the first
		return
	}
}

// revocationID returns the store ID under which a revocation of the
// client-side session id is recorded: the hex SHA-256 of the id's bytes,
// 64 hex characters as the Store contract wants.
func revocationID(id string) string {
	sum := sha256.Sum256([]byte("sessionkit revoked " + id))
	return hex.EncodeToString(sum[:])
}

// revoked reports whether the session id was revoked.
func (s *Session) revoked(id string, now time.Time) (bool, error) {
	ctx := s.begin(OpLoad, 1)
	_, _, _, found, err := s.m.store.Load(ctx, revocationID(id), now)
	ctx.finish(pick(found, OutcomeFound, OutcomeNotFound), err)
	if err != nil {
		return false, fmt.Errorf("%w: revocation check: %w", ErrStore, err)
	}
	return found, nil
}

// revoke records that the session id ends now, until until (the latest
// time any cookie of it could still be live), if there is a revocation
// store. It completes even if the client goes away.
func (m *Manager) revoke(ctx context.Context, id string, until, now time.Time) error {
	if m.store == nil || !until.After(now) {
		return nil
	}
	sctx := m.begin(context.WithoutCancel(ctx), OpCreate, 1)
	_, err := m.store.Create(sctx, revocationID(id), []byte{}, until, "", now)
	sctx.finish(OutcomeCreated, err)
	if err != nil {
		return fmt.Errorf("%w: revoke: %w", ErrStore, err)
	}
	return nil // created == false: already revoked
}

// revokeID is DestroyID for client-side sessions.
func (m *Manager) revokeID(ctx context.Context, id string) error {
	if m.store == nil {
		return ErrNotSupported
	}
	now := m.now()
	return m.revoke(ctx, id, now.Add(max(m.cfg.Lifetime, m.cfg.RememberLifetime)), now)
}

// newSealedID returns a fresh client-side session id.
func newSealedID() string {
	var b [sealedIDLen]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sealRecord seals the session id, expiry and encoded record into a cookie
// value, or fails with a TooLargeError if the cookie would exceed what
// browsers keep.
func (s *Session) sealRecord(id string, exp time.Time, data []byte) (string, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != sealedIDLen {
		return "", fmt.Errorf("sessions: bad client-side session id %q", id)
	}
	pt := make([]byte, 0, sealedIDLen+binary.MaxVarintLen64+len(data))
	pt = append(pt, raw...)
	pt = binary.AppendUvarint(pt, uint64(exp.UnixMilli()))
	pt = append(pt, data...)
	if n := len(s.m.cfg.CookieName) + 1 + sealedLen(len(pt)); n > maxCookieLen {
		return "", &TooLargeError{Size: len(data) + n - sealedLen(len(data)), Limit: s.m.cfg.MaxDataSize}
	}
	return s.m.keys.seal(s.m.cfg.Purpose, s.m.cfg.CookieName, pt), nil
}

// saveSealed writes the session into a new cookie: under a fresh id when
// the session has none or is renewed (the old id is revoked first), under
// its id otherwise.
func (s *Session) saveSealed(now time.Time, renew bool) error {
	if !s.exists && s.rec.empty() {
		s.ops, s.dirty = s.ops[:0], false
		return nil // never issue an empty session
	}
	exp, data, done, err := s.prepare(now)
	if done || err != nil {
		return err
	}
	id := s.id
	if !s.exists || renew {
		id = newSealedID()
	}
	tok, err := s.sealRecord(id, exp, data)
	if err != nil {
		return err
	}
	if s.exists && renew {
		if err := s.m.revoke(s.ctx, s.id, s.until(), now); err != nil {
			return err
		}
	}
	s.token, s.id, s.exists, s.expiry, s.size = tok, id, true, exp, len(data)
	s.ops, s.dirty, s.cookie, s.reseal = s.ops[:0], false, true, false
	return nil
}

// until returns the latest time a cookie of this session could be live.
func (s *Session) until() time.Time {
	return maxTime(s.m.deadline(&s.rec), s.expiry)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
