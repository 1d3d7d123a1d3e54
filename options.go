package sessions

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults applied by [New] to zero fields of [Options].
const (
	// DefaultCookieName is the cookie name used when Options.CookieName is
	// empty and the cookie qualifies for the __Host- prefix (Secure, Path
	// "/", no Domain). Otherwise the default drops the prefix it no longer
	// qualifies for: "__Secure-session" when only Secure holds, "session"
	// otherwise.
	DefaultCookieName = "__Host-session"

	// DefaultLifetime is the absolute lifetime of a session: the longest it
	// lives from its creation (or from its last [Session.RenewAfterLogin]),
	// however active it is. It is the NIST SP 800-63B limit for AAL2
	// reauthentication.
	DefaultLifetime = 24 * time.Hour

	// MaxLifetime is the largest Lifetime accepted: NIST SP 800-63B's
	// AAL1 limit.
	MaxLifetime = 30 * 24 * time.Hour

	// DefaultStoreTimeout bounds every store call, on top of the request's
	// context.
	DefaultStoreTimeout = 3 * time.Second

	// DefaultMaxDataSize is the largest encoded session accepted.
	DefaultMaxDataSize = 64 << 10

	// DefaultRememberLifetime is the absolute lifetime of a session that
	// [Session.Remember] marked.
	DefaultRememberLifetime = 30 * 24 * time.Hour

	// MaxRememberLifetime is the largest RememberLifetime accepted: browsers
	// cap a cookie's lifetime at 400 days (RFC 6265bis).
	MaxRememberLifetime = 400 * 24 * time.Hour
)

// Options configures a [Manager]. The zero value is the secure default:
// an HttpOnly, Secure, SameSite=Lax, host-only cookie named
// "__Host-session", a 24-hour absolute lifetime and no idle timeout.
// [New] copies the struct; changing it afterwards has no effect.
type Options struct {
	// CookieName is the session cookie's name. Empty means
	// [DefaultCookieName] (see there for how it adapts). A name with the
	// __Host- prefix requires Secure, Path "/" and no Domain; one with the
	// __Secure- prefix requires Secure.
	CookieName string

	// Path is the cookie's Path attribute; empty means "/".
	Path string

	// Domain is the cookie's Domain attribute; empty means a host-only
	// cookie, which is the safest choice.
	Domain string

	// SameSite is the cookie's SameSite attribute. The zero value and
	// http.SameSiteDefaultMode mean Lax. None requires Secure.
	SameSite http.SameSite

	// InsecureCookie leaves the Secure attribute off, so that the browser
	// also sends the cookie over plain HTTP, where anyone on the path can
	// read it. Use it only for local development over http://.
	InsecureCookie bool

	// Partitioned sets the Partitioned attribute (CHIPS), for sessions in
	// third-party contexts. It requires Secure.
	Partitioned bool

	// BrowserSessionCookie sends cookies with neither Max-Age nor Expires,
	// so the browser drops them when it closes. The server still enforces
	// Lifetime and IdleTimeout. A session can change this for itself with
	// [Session.SetBrowserSession] or [Session.Remember].
	BrowserSessionCookie bool

	// Lifetime is the absolute lifetime of a session. Zero means
	// [DefaultLifetime]; at most [MaxLifetime].
	Lifetime time.Duration

	// RememberLifetime is the absolute lifetime of a session marked with
	// [Session.Remember] ("remember me"), counted from its start (its last
	// [Session.RenewAfterLogin]). Zero means [DefaultRememberLifetime]; at
	// most [MaxRememberLifetime].
	RememberLifetime time.Duration

	// IdleTimeout ends a session that sees no request for this long. Reads
	// count as activity. Zero means no idle timeout. It does not apply to
	// sessions marked with [Session.Remember].
	IdleTimeout time.Duration

	// TouchInterval is how much a request must be able to push the idle
	// deadline forward before a read-only request spends a store write on
	// it. Zero means a tenth of the idle timeout. It bounds the write
	// traffic that reads cause to one write per session per interval.
	TouchInterval time.Duration

	// StoreTimeout bounds every store call. Zero means
	// [DefaultStoreTimeout].
	StoreTimeout time.Duration

	// MaxDataSize is the largest encoded session, in bytes; a change that
	// would exceed it fails with a [*TooLargeError]. Zero means
	// [DefaultMaxDataSize].
	MaxDataSize int

	// ShouldSave reports whether a response with the given status code
	// saves the session's changes and sends its cookie. Nil means: every
	// status below 500. A [Session.Destroy] applies whatever the status.
	ShouldSave func(status int) bool

	// ErrorHandler answers a request whose session could not be saved
	// (a store failure, [ErrSessionGone], [ErrConflict], ...). It runs
	// before anything was written, with the session's cookie left out. Nil
	// means: [ErrSessionGone] answers 409, anything else 500, with a plain
	// text status message. The error is logged either way.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// Keys are secret keys, each at least [MinKeyLen] bytes from
	// crypto/rand; the first seals or signs, every one opens or verifies,
	// so a new key goes first and an old one stays last until the cookies
	// it made have expired. A cookie opened with any key but the first is
	// sealed or signed again with the first on that response.
	//
	// [NewClientSide] requires them: they seal the session into its cookie.
	// With [New] they are optional: set, the session token in the cookie
	// carries a MAC, so that forged or random cookie values are rejected
	// without a store call (enabling it ends the sessions whose cookies
	// were issued without it).
	Keys [][]byte

	// Purpose binds sealed cookies to one application: a cookie sealed for
	// another purpose (or under another cookie name) never opens, even with
	// the same keys. Client-side sessions only.
	Purpose string

	// Revocation, if set, lets client-side sessions be revoked: the ID of a
	// destroyed or renewed session is recorded in this store until the
	// session's own deadline, and every load checks it (one store read per
	// request that uses its session), so that a copied cookie stops working
	// at logout. Any [Store] works; run [Manager.Sweep] if it keeps expired
	// records. Client-side sessions only.
	Revocation Store

	// Observer, if set, watches every store call (for tracing and
	// metrics; see package github.com/sessionkit/sessions/otelsessions).
	Observer Observer

	// Logger receives the Manager's log records. Nil means slog.Default().
	// Session tokens are never logged; a prefix of the store ID at most.
	Logger *slog.Logger
}

// config is the validated, defaulted form of Options.
type config struct {
	Options
	secure bool
}

func (o *Options) resolve() (config, error) {
	c := config{Options: *o}
	c.secure = !o.InsecureCookie
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.CookieName == "" {
		switch {
		case c.secure && c.Path == "/" && c.Domain == "":
			c.CookieName = DefaultCookieName
		case c.secure:
			c.CookieName = "__Secure-session"
		default:
			c.CookieName = "session"
		}
	}
	if err := (&http.Cookie{Name: c.CookieName, Value: "x"}).Valid(); err != nil {
		bad("cookie name %q: %v", c.CookieName, err)
	}
	// Browsers match the prefixes case-insensitively (RFC 6265bis).
	lower := strings.ToLower(c.CookieName)
	switch {
	case strings.HasPrefix(lower, "__host-"):
		if !c.secure {
			bad("cookie name %q: the __Host- prefix requires Secure (InsecureCookie is set)", c.CookieName)
		}
		if c.Domain != "" {
			bad("cookie name %q: the __Host- prefix forbids a Domain", c.CookieName)
		}
		if c.Path != "/" {
			bad("cookie name %q: the __Host- prefix requires Path \"/\"", c.CookieName)
		}
	case strings.HasPrefix(lower, "__secure-"):
		if !c.secure {
			bad("cookie name %q: the __Secure- prefix requires Secure (InsecureCookie is set)", c.CookieName)
		}
	}
	if err := (&http.Cookie{Name: "n", Value: "v", Path: c.Path, Domain: c.Domain}).Valid(); err != nil || !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, ";\x00") {
		bad("cookie path %q or domain %q invalid", c.Path, c.Domain)
	}
	switch c.SameSite {
	case 0, http.SameSiteDefaultMode:
		c.SameSite = http.SameSiteLaxMode
	case http.SameSiteLaxMode, http.SameSiteStrictMode:
	case http.SameSiteNoneMode:
		if !c.secure {
			bad("SameSite=None requires Secure (InsecureCookie is set)")
		}
	default:
		bad("unknown SameSite value %d", c.SameSite)
	}
	if c.Partitioned && !c.secure {
		bad("Partitioned requires Secure (InsecureCookie is set)")
	}
	switch {
	case c.Lifetime < 0:
		bad("negative Lifetime %v", c.Lifetime)
	case c.Lifetime == 0:
		c.Lifetime = DefaultLifetime
	case c.Lifetime > MaxLifetime:
		bad("Lifetime %v exceeds the maximum %v", c.Lifetime, MaxLifetime)
	case c.Lifetime < time.Second:
		bad("Lifetime %v is below one second", c.Lifetime)
	}
	switch {
	case c.RememberLifetime < 0:
		bad("negative RememberLifetime %v", c.RememberLifetime)
	case c.RememberLifetime == 0:
		c.RememberLifetime = DefaultRememberLifetime
	case c.RememberLifetime > MaxRememberLifetime:
		bad("RememberLifetime %v exceeds the maximum %v", c.RememberLifetime, MaxRememberLifetime)
	case c.RememberLifetime < time.Second:
		bad("RememberLifetime %v is below one second", c.RememberLifetime)
	}
	if c.IdleTimeout < 0 {
		bad("negative IdleTimeout %v", c.IdleTimeout)
	} else if c.IdleTimeout > 0 && c.IdleTimeout < time.Second {
		bad("IdleTimeout %v is below one second", c.IdleTimeout)
	}
	if c.TouchInterval < 0 {
		bad("negative TouchInterval %v", c.TouchInterval)
	}
	switch {
	case c.StoreTimeout < 0:
		bad("negative StoreTimeout %v", c.StoreTimeout)
	case c.StoreTimeout == 0:
		c.StoreTimeout = DefaultStoreTimeout
	}
	switch {
	case c.MaxDataSize < 0:
		bad("negative MaxDataSize %d", c.MaxDataSize)
	case c.MaxDataSize == 0:
		c.MaxDataSize = DefaultMaxDataSize
	}
	if c.ShouldSave == nil {
		c.ShouldSave = func(status int) bool { return status < 500 }
	}
	if c.ErrorHandler == nil {
		c.ErrorHandler = defaultErrorHandler
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return c, nil
}

func defaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, ErrSessionGone) {
		code = http.StatusConflict
	}
	http.Error(w, http.StatusText(code), code)
}
