package auth

import (
	"crypto/hmac"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sessionkit/sessions"
)

// Login logs user in on the request's session, once the application has
// checked the user's credentials. As Django's login, it keeps the
// session's data unless the session belonged to another user (or to a
// stale login of this one), in which case it clears it; then it renews the
// session ([sessions.Session.RenewAfterLogin]: a new ID at commit, a fresh
// lifetime, the user ID as owner) and stores the session auth hash and the
// device metadata (login time, last seen, a short client description and
// an address prefix). With remember set, the session gets a persistent
// cookie and the Manager's RememberLifetime ([sessions.Session.Remember]);
// otherwise the Manager's defaults.
//
// Later calls of [Auth.User] in the same request return user.
func (a *Auth[U]) Login(r *http.Request, user U, remember bool) error {
	uid := a.users.UserID(user)
	if uid == "" {
		return ErrNoUserID
	}
	s := a.m.FromContext(r.Context())
	owner, err := s.Owner()
	if err != nil {
		return err
	}
	hash := a.sessionHash(user)
	if owner != "" {
		st, _, _ := sessions.Get[state](s, stateKey)
		if owner != uid || !hmac.Equal([]byte(st.Hash), []byte(hash)) {
			if err := s.Clear(); err != nil {
				return err
			}
		}
	}
	if err := s.RenewAfterLogin(uid); err != nil {
		return err
	}
	if err := s.Remember(remember); err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	st := state{
		Hash:    hash,
		Created: now,
		Seen:    now,
		Client:  ShortUserAgent(r.UserAgent()),
		Network: a.network(r),
	}
	if err := s.Set(stateKey, st); err != nil {
		return err
	}
	a.req(r.Context()).set(user, true)
	return nil
}

// Logout ends the request's session ([sessions.Session.Destroy]): its
// record is deleted and the response removes the cookie. Logging out
// without a user is not an error.
func (a *Auth[U]) Logout(r *http.Request) error {
	if err := a.m.FromContext(r.Context()).Destroy(); err != nil {
		return err
	}
	var zero U
	a.req(r.Context()).set(zero, false)
	return nil
}

// UpdateSessionAuthHash keeps the request's session logged in after its
// user changed their own credentials (Django's update_session_auth_hash):
// call it with the updated user, after the new secret is saved. It stores
// the new session auth hash and renews the session's ID. Every other
// session of the user ends: at once when the session store has an owner
// index (a failure there is logged, not returned), and in any case on its
// next request, whose stored hash no longer matches.
//
// It returns [ErrNotLoggedIn] if the request's session does not belong to
// user.
func (a *Auth[U]) UpdateSessionAuthHash(r *http.Request, user U) error {
	uid := a.users.UserID(user)
	s := a.m.FromContext(r.Context())
	owner, err := s.Owner()
	if err != nil {
		return err
	}
	if owner == "" || owner != uid {
		return ErrNotLoggedIn
	}
	hash := a.sessionHash(user)
	err = sessions.Modify(s, stateKey, func(st state) state {
		st.Hash = hash
		return st
	})
	if err != nil {
		return err
	}
	if err := s.Renew(); err != nil {
		return err
	}
	a.req(r.Context()).set(user, true)
	if _, err := a.logoutOthers(r, s, uid); err != nil {
		a.cfg.Logger.WarnContext(r.Context(), "auth: other sessions not ended at once after a credential change; their auth hash ends them on their next request", "err", err)
	}
	return nil
}

// LogoutEverywhere ends every session of the request's user, this one
// included ([sessions.Manager.DestroyOwner]), and returns how many it
// ended. A login that completes after it returns is not affected. It
// returns [ErrNotLoggedIn] without a user, and an error wrapping
// [sessions.ErrNotSupported] if the session store has no owner index.
func (a *Auth[U]) LogoutEverywhere(r *http.Request) (int, error) {
	_, uid, err := a.current(r)
	if err != nil {
		return 0, err
	}
	n, err := a.m.DestroyOwner(r.Context(), uid)
	if err != nil {
		return n, notSupported(err, "log out everywhere")
	}
	var zero U
	a.req(r.Context()).set(zero, false)
	if err := a.deleteDevices(r.Context(), uid); err != nil {
		a.cfg.Logger.WarnContext(r.Context(), "auth: device record not deleted", "err", err)
	}
	return n, nil
}

// LogoutOthers ends every session of the request's user but the current
// one ("log out every other device") and returns how many it ended. It
// returns [ErrNotLoggedIn] without a user, and an error wrapping
// [sessions.ErrNotSupported] if the session store has no owner index.
func (a *Auth[U]) LogoutOthers(r *http.Request) (int, error) {
	s, uid, err := a.current(r)
	if err != nil {
		return 0, err
	}
	return a.logoutOthers(r, s, uid)
}

// logoutRounds bounds the list-and-delete rounds of logoutOthers.
const logoutRounds = 4

// logoutOthers deletes the sessions of uid but s, and lists again until
// none is left, so that a renewal racing it (which creates its new record
// before retiring the old one) leaves no successor.
func (a *Auth[U]) logoutOthers(r *http.Request, s *sessions.Session, uid string) (int, error) {
	cur, err := s.ID()
	if err != nil {
		return 0, err
	}
	n := 0
	for range logoutRounds {
		ids, err := a.m.ListOwner(r.Context(), uid)
		if err != nil {
			return n, notSupported(err, "log out other devices")
		}
		ids = slices.DeleteFunc(ids, func(id string) bool { return id == cur })
		if len(ids) == 0 {
			return n, nil
		}
		for _, id := range ids {
			if err := a.m.DestroyID(r.Context(), id); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, fmt.Errorf("auth: log out other devices: %w", sessions.ErrConflict)
}
