package auth

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sessionkit/sessions"
)

// stateKey is the session key under which Auth keeps its state. Keys that
// start with "_" are reserved for libraries.
const stateKey = "_auth"

// state is what a logged-in session holds besides its owner.
type state struct {
	Hash    string `json:"h"`            // the session auth hash
	Created int64  `json:"c"`            // login time, Unix ms
	Seen    int64  `json:"s"`            // last seen, Unix ms (coarse)
	Client  string `json:"ua,omitempty"` // shortened user agent
	Network string `json:"ip,omitempty"` // client address prefix
	Listed  string `json:"l,omitempty"`  // handle under which the device record lists it
}

// request is the per-request state of the middleware: the user, loaded
// at most once.
type request[U any] struct {
	mu     sync.Mutex
	loaded bool
	user   U
	ok     bool
	err    error
}

func (q *request[U]) set(user U, ok bool) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loaded, q.user, q.ok, q.err = true, user, ok, nil
}

// Middleware makes the current user available to next through
// [Auth.User], loaded at most once per request and only if asked for. It
// must run inside the Manager's middleware:
//
//	handler := m.Handler(a.Middleware(mux))
//
// Without it, [Auth.User] still works but loads the user on every call.
func (a *Auth[U]) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, a.with(r))
	})
}

// with returns r with a per-request state, unless it has one.
func (a *Auth[U]) with(r *http.Request) *http.Request {
	if _, ok := r.Context().Value(a.ctxKey).(*request[U]); ok {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), a.ctxKey, new(request[U])))
}

func (a *Auth[U]) req(ctx context.Context) *request[U] {
	q, _ := ctx.Value(a.ctxKey).(*request[U])
	return q
}

// User returns the request's logged-in user: ok is false, with a nil
// error, when there is none. A session whose user no longer exists, or
// whose session auth hash no longer matches the user's secret (the
// password changed on another device), is ended, and User reports no
// user. An error means the session store or [Users.LoadUser] failed.
//
// Under [Auth.Middleware] the result is computed once per request; a
// request that never calls User loads no user.
func (a *Auth[U]) User(r *http.Request) (user U, ok bool, err error) {
	q := a.req(r.Context())
	if q == nil {
		return a.load(r)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.loaded {
		q.user, q.ok, q.err = a.load(r)
		q.loaded = true
	}
	return q.user, q.ok, q.err
}

// load finds the user of the request's session and checks its session
// auth hash.
func (a *Auth[U]) load(r *http.Request) (U, bool, error) {
	var zero U
	ctx := r.Context()
	s := a.m.FromContext(ctx)
	uid, err := s.Owner()
	if err != nil || uid == "" {
		return zero, false, err
	}
	// The session is loaded (Owner succeeded): Get fails only to decode.
	st, found, err := sessions.Get[state](s, stateKey)
	if !found || err != nil || st.Hash == "" {
		// Owned, but not by a login of ours (or unreadable): as Django,
		// a session without a valid hash is not logged in.
		return zero, false, a.end(r, s, uid, "session has no auth hash")
	}
	user, found, err := a.users.LoadUser(ctx, uid)
	if err != nil {
		return zero, false, fmt.Errorf("auth: load user: %w", err)
	}
	if !found {
		return zero, false, a.end(r, s, uid, "user no longer exists")
	}
	if !hmac.Equal([]byte(st.Hash), []byte(a.sessionHash(user))) {
		return zero, false, a.end(r, s, uid, "session auth hash mismatch (credentials changed)")
	}
	a.seen(r, s, uid, st)
	return user, true, nil
}

// end destroys a session that is no longer logged in.
func (a *Auth[U]) end(r *http.Request, s *sessions.Session, uid, why string) error {
	a.cfg.Logger.InfoContext(r.Context(), "auth: session ended", "reason", why, "user", uid)
	if err := s.Destroy(); err != nil {
		return fmt.Errorf("auth: end session: %w", err)
	}
	return nil
}

// seen updates the session's "last seen" time and its entry in the
// device record, when it is older than LastSeenInterval or the session
// changed ID since it was listed. Failures are logged: it is bookkeeping.
func (a *Auth[U]) seen(r *http.Request, s *sessions.Session, uid string, st state) {
	status, err := s.Status()
	if err != nil || status&(sessions.StatusNew|sessions.StatusRenewing|sessions.StatusDestroyed|sessions.StatusGone) != 0 {
		return // its ID is not final in this request
	}
	id, err := s.ID()
	if err != nil || id == "" {
		return
	}
	now := time.Now()
	h := a.handle(id)
	if st.Listed == h && now.Sub(time.UnixMilli(st.Seen)) < a.cfg.LastSeenInterval {
		return
	}
	ms := now.UnixMilli()
	err = sessions.Modify(s, stateKey, func(cur state) state {
		if cur.Hash == "" {
			return cur
		}
		cur.Seen = max(cur.Seen, ms)
		cur.Listed = h
		return cur
	})
	if err != nil {
		a.cfg.Logger.WarnContext(r.Context(), "auth: last seen not updated", "err", err)
		return
	}
	st.Seen, st.Listed = max(st.Seen, ms), h
	if err := a.putDevice(r.Context(), uid, h, st); err != nil {
		a.cfg.Logger.WarnContext(r.Context(), "auth: device record not updated", "err", err)
	}
}

// RequireUser passes requests with a logged-in user to next and answers
// the others: browsers ([Options.IsBrowser]) are redirected (303) to
// [Options.LoginURL] with the page they asked for in [Options.NextParam];
// other clients get [Options.Unauthorized] (401 by default). Responses
// from next get "Cache-Control: no-store" (private pages must not be
// shown again from the browser's cache after logout); a handler may set
// another. RequireUser installs [Auth.Middleware] if it is not there yet.
func (a *Auth[U]) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = a.with(r)
		_, ok, err := a.User(r)
		if err != nil {
			a.cfg.Logger.ErrorContext(r.Context(), "auth: cannot tell the user", "err", err)
			if a.cfg.ErrorHandler != nil {
				a.cfg.ErrorHandler(w, r, err)
				return
			}
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		if !a.cfg.IsBrowser(r) {
			if a.cfg.Unauthorized != nil {
				a.cfg.Unauthorized.ServeHTTP(w, r)
				return
			}
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, a.LoginURL(r), http.StatusSeeOther)
	})
}

// LoginURL returns [Options.LoginURL] with the path and query of r in
// [Options.NextParam]: where [Auth.RequireUser] sends a browser.
func (a *Auth[U]) LoginURL(r *http.Request) string {
	u, _ := url.Parse(a.cfg.LoginURL) // validated by New
	q := u.Query()
	q.Set(a.cfg.NextParam, r.URL.RequestURI())
	u.RawQuery = q.Encode()
	return u.String()
}

// session returns the request's session and its verified user ID, or
// ErrNotLoggedIn.
func (a *Auth[U]) current(r *http.Request) (*sessions.Session, string, error) {
	user, ok, err := a.User(r)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", ErrNotLoggedIn
	}
	return a.m.FromContext(r.Context()), a.users.UserID(user), nil
}

// errNotSupported wraps sessions.ErrNotSupported with what was asked.
func errNotSupported(what string) error {
	return fmt.Errorf("auth: %s needs a session store with an owner index (sessions.OwnerIndex): %w", what, sessions.ErrNotSupported)
}

func notSupported(err error, what string) error {
	if errors.Is(err, sessions.ErrNotSupported) {
		return errNotSupported(what)
	}
	return err
}
