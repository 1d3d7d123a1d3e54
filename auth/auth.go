package auth

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sessionkit/sessions"
)

// Errors returned by [Auth] methods. Match them with [errors.Is]; their
// text is stable.
var (
	// ErrInvalidOptions is wrapped by every error [New] returns for invalid
	// arguments or [Options].
	ErrInvalidOptions = errors.New("auth: invalid options")

	// ErrNotLoggedIn is returned by operations on the current user's
	// sessions ([Auth.LogoutEverywhere], [Auth.Devices], ...) when the
	// request has no logged-in user.
	ErrNotLoggedIn = errors.New("auth: no user is logged in")

	// ErrUnknownDevice is returned by [Auth.RevokeDevice] for a handle that
	// names none of the user's live sessions.
	ErrUnknownDevice = errors.New("auth: unknown device")

	// ErrNoUserID is returned by [Auth.Login] for a user whose ID is empty.
	ErrNoUserID = errors.New("auth: user has an empty ID")
)

// Users is what an application tells [Auth] about its users. Credential
// checking stays the application's: Auth never sees a password.
// Implementations must be safe for concurrent use.
type Users[U any] interface {
	// LoadUser returns the user with the ID. found is false, with a nil
	// error, when there is no such user (any more); an error means the
	// users could not be read, and fails the request rather than log the
	// user out.
	LoadUser(ctx context.Context, id string) (user U, found bool, err error)

	// UserID returns the user's ID, which becomes the session's owner
	// ([sessions.Session.Owner]). It must not be empty.
	UserID(user U) string

	// SessionSecret returns a secret of the user that changes whenever the
	// user's credentials change, typically the password hash. Sessions
	// keep only an HMAC of it; a session whose HMAC no longer matches the
	// user's current secret is ended on its next request.
	SessionSecret(user U) []byte
}

// Defaults applied by [New] to zero fields of [Options].
const (
	// MinKeySize is the shortest Options.Key accepted, in bytes.
	MinKeySize = 32

	// DefaultLoginURL is where [Auth.RequireUser] sends browsers without a
	// user.
	DefaultLoginURL = "/login"

	// DefaultNextParam is the query parameter of the login URL that
	// carries the page the browser asked for.
	DefaultNextParam = "next"

	// DefaultLastSeenInterval is how stale a session's "last seen" time
	// may get before a request updates it.
	DefaultLastSeenInterval = 5 * time.Minute

	// DefaultIPv4PrefixLen and DefaultIPv6PrefixLen are the network
	// prefixes of the client address that a session records.
	DefaultIPv4PrefixLen = 24
	DefaultIPv6PrefixLen = 48
)

// Options configures an [Auth]. Key is required; every other zero field
// means the documented default. [New] copies the struct.
type Options struct {
	// Key is the server key from which the session auth hashes, device
	// handles and device record IDs are derived (with HKDF-SHA256), at
	// least [MinKeySize] bytes from a CSPRNG. Changing it logs every user
	// out. Keep it secret, and apart from other keys.
	Key []byte

	// LoginURL is where [Auth.RequireUser] redirects browsers that have no
	// user: a path ("/login", the default) or an absolute URL.
	LoginURL string

	// NextParam is the query parameter added to LoginURL with the path and
	// query the browser asked for ("next" by default). Use [SafeNext] to
	// read it back.
	NextParam string

	// IsBrowser reports whether a request without a user gets a redirect
	// to LoginURL (true) or a 401 (false). Nil means: a browser is a
	// request with "Sec-Fetch-Mode: navigate" or whose Accept header names
	// text/html; anything else (fetch, curl, API clients) gets 401.
	IsBrowser func(r *http.Request) bool

	// Unauthorized answers API requests (see IsBrowser) that have no user.
	// Nil means a plain-text 401.
	Unauthorized http.Handler

	// ErrorHandler answers a request for which [Auth.RequireUser] could not
	// tell the user (the session store or LoadUser failed). Nil means a
	// plain-text 500. The error is logged either way.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// LastSeenInterval is how stale a session's "last seen" time may get
	// before a request that asks for the user updates it (one session
	// write and one device-record write). Zero means
	// [DefaultLastSeenInterval]. It is never a write per request.
	LastSeenInterval time.Duration

	// ClientIP returns the client address recorded (as a prefix) with a
	// session at login. Nil means the host of r.RemoteAddr: behind a
	// reverse proxy, supply the address the proxy vouches for; never trust
	// X-Forwarded-For from anyone else. Returning "" records nothing.
	ClientIP func(r *http.Request) string

	// IPv4PrefixLen and IPv6PrefixLen are the lengths of the network
	// prefix recorded of the client address: the address is never stored
	// in full unless they are 32 and 128. Zero means
	// [DefaultIPv4PrefixLen] (/24) and [DefaultIPv6PrefixLen] (/48).
	IPv4PrefixLen, IPv6PrefixLen int

	// DeviceStore keeps one device record per user: the metadata (created,
	// last seen, client) of the user's sessions, so that [Auth.Devices]
	// can show it for sessions other than the current one. Use the store
	// the Manager uses: the records go through the [sessions.Store]
	// interface only, under IDs derived from Key, with no owner, so they
	// are never listed as sessions, and they expire (400 days after their
	// last write). Nil means no device records: Devices still lists the
	// user's sessions, with metadata for the current one only.
	DeviceStore sessions.Store

	// Logger receives Auth's log records. Nil means slog.Default().
	Logger *slog.Logger
}

// An Auth logs users in and out on top of a [sessions.Manager]: the user
// is the session's owner, and a session auth hash (Django's) ends every
// session whose user's credentials changed. Create one with [New]. An
// Auth is immutable and safe for concurrent use.
//
// Install [Auth.Middleware] (or [Auth.RequireUser]) inside the Manager's
// middleware, so that the user is loaded at most once per request, and
// only by a request that asks for it.
type Auth[U any] struct {
	m     *sessions.Manager
	users Users[U]
	cfg   Options

	hashKey, handleKey, recordKey []byte
	ctxKey                        *contextKey
}

// contextKey is the type of the context key of an Auth's per-request state.
type contextKey struct{ name string }

func (k *contextKey) String() string { return "auth context key " + k.name }

// New returns an Auth for the sessions of m and the users of users. A nil
// opts is invalid (Options.Key is required). New copies *opts and reports
// invalid arguments with an error wrapping [ErrInvalidOptions]; it never
// panics.
func New[U any](m *sessions.Manager, users Users[U], opts *Options) (*Auth[U], error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m == nil {
		bad("nil Manager")
	}
	if users == nil {
		bad("nil Users")
	}
	var cfg Options
	if opts != nil {
		cfg = *opts
		cfg.Key = append([]byte(nil), opts.Key...)
	}
	if len(cfg.Key) < MinKeySize {
		bad("Key is %d bytes, want at least %d", len(cfg.Key), MinKeySize)
	}
	if cfg.LoginURL == "" {
		cfg.LoginURL = DefaultLoginURL
	}
	if u, err := url.Parse(cfg.LoginURL); err != nil || (!u.IsAbs() && !strings.HasPrefix(cfg.LoginURL, "/")) || strings.HasPrefix(cfg.LoginURL, "//") {
		bad("LoginURL %q: want a path starting with / or an absolute URL", cfg.LoginURL)
	}
	if cfg.NextParam == "" {
		cfg.NextParam = DefaultNextParam
	}
	switch {
	case cfg.LastSeenInterval < 0:
		bad("negative LastSeenInterval %v", cfg.LastSeenInterval)
	case cfg.LastSeenInterval == 0:
		cfg.LastSeenInterval = DefaultLastSeenInterval
	}
	switch {
	case cfg.IPv4PrefixLen < 0 || cfg.IPv4PrefixLen > 32:
		bad("IPv4PrefixLen %d: want 1 to 32", cfg.IPv4PrefixLen)
	case cfg.IPv4PrefixLen == 0:
		cfg.IPv4PrefixLen = DefaultIPv4PrefixLen
	}
	switch {
	case cfg.IPv6PrefixLen < 0 || cfg.IPv6PrefixLen > 128:
		bad("IPv6PrefixLen %d: want 1 to 128", cfg.IPv6PrefixLen)
	case cfg.IPv6PrefixLen == 0:
		cfg.IPv6PrefixLen = DefaultIPv6PrefixLen
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	if cfg.IsBrowser == nil {
		cfg.IsBrowser = isBrowser
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Auth[U]{m: m, users: users, cfg: cfg, ctxKey: &contextKey{"user"}}
	var err error
	for _, k := range []struct {
		dst  *[]byte
		info string
	}{
		{&a.hashKey, "sessionkit auth v1: session auth hash"},
		{&a.handleKey, "sessionkit auth v1: device handle"},
		{&a.recordKey, "sessionkit auth v1: device record id"},
	} {
		if *k.dst, err = hkdf.Key(sha256.New, cfg.Key, nil, k.info, sha256.Size); err != nil {
			return nil, fmt.Errorf("%w: key derivation: %w", ErrInvalidOptions, err)
		}
	}
	return a, nil
}

// sessionHash returns the session auth hash of user: an HMAC-SHA256,
// under a key derived from Options.Key, of the user's ID and secret.
func (a *Auth[U]) sessionHash(user U) string {
	mac := hmac.New(sha256.New, a.hashKey)
	id := a.users.UserID(user)
	var n [binary.MaxVarintLen64]byte
	mac.Write(n[:binary.PutUvarint(n[:], uint64(len(id)))])
	mac.Write([]byte(id))
	mac.Write(a.users.SessionSecret(user))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// handle returns the opaque handle of the session with the store ID id:
// an HMAC, so it reveals neither the ID nor the token.
func (a *Auth[U]) handle(id string) string {
	mac := hmac.New(sha256.New, a.handleKey)
	mac.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}

// recordID returns the store ID of the user's device record: 64 hex
// characters like a session's, which no session token hashes to.
func (a *Auth[U]) recordID(uid string) string {
	mac := hmac.New(sha256.New, a.recordKey)
	mac.Write([]byte(uid))
	return hex.EncodeToString(mac.Sum(nil))
}

// isBrowser is the default Options.IsBrowser.
func isBrowser(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		return true
	}
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/html") {
			return true
		}
	}
	return false
}

// SafeNext returns next if it is a local path ("/..." but not "//..." nor
// "/\..."), to redirect to after login, and fallback otherwise, so that a
// crafted login link cannot send the user to another site.
func SafeNext(next, fallback string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t\\") {
		return fallback
	}
	if u, err := url.Parse(next); err != nil || u.IsAbs() || u.Host != "" {
		return fallback
	}
	return next
}
