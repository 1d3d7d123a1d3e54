package sessions

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// A Manager is the sessions middleware: it finds each request's session
// through its cookie, gives it to the handler through the request context,
// and saves it and sets the cookie just before the response headers are
// written. Create one with [New]. A Manager is immutable and safe for
// concurrent use; several Managers with different cookie names can serve
// one request, each with its own session.
type Manager struct {
	store Store // the session store; client-side: the revocation store, or nil
	cfg   config
	key   *contextKey

	keys       *keyring // Options.Keys, or nil
	clientSide bool     // sessions live in sealed cookies

	warnedPlainHTTP atomic.Bool
}

// contextKey is the type of the context keys of sessions. Each Manager has
// its own key; anyManager finds the innermost Manager's session.
type contextKey struct{ name string }

func (k *contextKey) String() string { return "sessions context key " + k.name }

var anyManager = &contextKey{"any"}

// New returns a Manager that keeps sessions in store. A nil opts means the
// zero [Options], the secure default. New copies *opts and reports invalid
// options with an error wrapping [ErrInvalidOptions].
func New(store Store, opts *Options) (*Manager, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil Store", ErrInvalidOptions)
	}
	if opts == nil {
		opts = &Options{}
	}
	if opts.Revocation != nil || opts.Purpose != "" {
		return nil, fmt.Errorf("%w: Revocation and Purpose apply to client-side sessions (NewClientSide)", ErrInvalidOptions)
	}
	return newManager(store, opts, false)
}

// NewClientSide returns a Manager that keeps each session in its cookie,
// sealed with AES-256-GCM under [Options.Keys] (required), instead of in a
// store: no server state, and the same [Session] API, so a handler neither
// knows nor cares which mode it runs under. A nil opts is not accepted,
// since the keys are required.
//
// What differs from server-side sessions:
//   - Concurrent requests are last-writer-wins: the browser keeps the last
//     cookie it was sent, so two requests that change the session at once
//     keep only one request's changes.
//   - A copied cookie stays valid until its own expiry, even after Destroy
//     or Renew, unless [Options.Revocation] names a store that records
//     ended sessions (one store read per request that uses its session).
//   - A session is at most about 3 KB of data: browsers drop cookies over
//     4096 bytes, so [Options.MaxDataSize] defaults to, and may not exceed,
//     what fits. A change past it fails with a [*TooLargeError].
//   - Owner operations ([Manager.ListOwner], [Manager.DestroyOwner]) return
//     [ErrNotSupported]; [Manager.DestroyID] needs a revocation store.
//
// The sealed format is specified in docs/cookie-format.md.
func NewClientSide(opts *Options) (*Manager, error) {
	if opts == nil || len(opts.Keys) == 0 {
		return nil, fmt.Errorf("%w: client-side sessions need Options.Keys", ErrInvalidOptions)
	}
	return newManager(opts.Revocation, opts, true)
}

func newManager(store Store, opts *Options, clientSide bool) (*Manager, error) {
	cfg, err := opts.resolve()
	var kr *keyring
	if len(opts.Keys) > 0 {
		var kerr error
		if kr, kerr = newKeyring(opts.Keys); kerr != nil {
			err = errors.Join(err, fmt.Errorf("%w: %w", ErrInvalidOptions, kerr))
		}
	}
	if clientSide {
		// The largest record whose sealed cookie fits in 4096 bytes, stamps
		// (at most maxStampLen) and expiry included.
		fit := (maxCookieLen-len(cfg.CookieName)-1)*3/4 - sealOverhead - sealedIDLen - binary.MaxVarintLen64 - maxStampLen
		switch {
		case opts.MaxDataSize == 0:
			cfg.MaxDataSize = fit
		case opts.MaxDataSize > fit:
			err = errors.Join(err, fmt.Errorf("%w: MaxDataSize %d does not fit in a cookie named %q (at most %d)", ErrInvalidOptions, opts.MaxDataSize, cfg.CookieName, fit))
		}
	}
	if err != nil {
		return nil, err
	}
	return &Manager{store: store, cfg: cfg, key: &contextKey{cfg.CookieName}, keys: kr, clientSide: clientSide}, nil
}

// CookieName returns the name of the session cookie, after defaults.
func (m *Manager) CookieName() string { return m.cfg.CookieName }

// FromContext returns this Manager's session of the request with context
// ctx, or nil if the request did not pass through m's middleware.
func (m *Manager) FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(m.key).(*Session)
	return s
}

// requestState is everything the middleware keeps for one request, in one
// allocation: the session, the context that carries it, and the response
// writer that commits it.
type requestState struct {
	ctx     sessionContext
	w       responseWriter
	session Session
}

// sessionContext is the request's context plus its session.
type sessionContext struct {
	context.Context
	st *requestState
}

func (c *sessionContext) Value(key any) any {
	if key == anyManager || key == c.st.session.m.key {
		return &c.st.session
	}
	return c.Context.Value(key)
}

// Handler returns the middleware wrapping next. A request whose handler
// never uses its session costs no store call, no decoding and no cookie.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := m.start(w, r)
		next.ServeHTTP(&st.w, st.session.req)
		st.finish()
	})
}

// Start does what [Manager.Handler] does around a handler, for framework
// adapters that cannot wrap an [http.Handler] (packages ginsessions and
// echosessions use it). It returns the ResponseWriter the handler must
// write through (it commits the session just before the headers go out),
// the request whose context carries the session, and finish, which the
// adapter calls once after the handler has returned: it commits the
// session, as a 200, if nothing was written. The adapter must send every
// write, including the final status, through the returned writer, and
// call finish before the framework writes anything of its own.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, func()) {
	st := m.start(w, r)
	return &st.w, st.session.req, st.finish
}

// start sets up the session of one request.
func (m *Manager) start(w http.ResponseWriter, r *http.Request) *requestState {
	st := &requestState{}
	st.ctx = sessionContext{Context: r.Context(), st: st}
	r = r.WithContext(&st.ctx)
	st.session.m, st.session.ctx, st.session.req = m, st.ctx.Context, r
	st.w = responseWriter{rw: w, st: st}
	return st
}

// finish commits the session if the handler wrote nothing.
func (st *requestState) finish() {
	if !st.w.wroteHeader && st.session.loaded {
		st.w.commit(http.StatusOK)
	}
}

// responseWriter commits the session just before the headers go out.
type responseWriter struct {
	rw          http.ResponseWriter
	st          *requestState
	wroteHeader bool
	failed      bool
}

// commit saves the session; on failure the error handler answers instead.
func (w *responseWriter) commit(status int) bool {
	w.wroteHeader = true
	s := &w.st.session
	if err := s.commit(w.rw.Header(), status); err != nil {
		w.failed = true
		s.m.fail(w.rw, s.req, s, err)
		return false
	}
	return true
}

func (w *responseWriter) Header() http.Header { return w.rw.Header() }

func (w *responseWriter) WriteHeader(code int) {
	if w.failed {
		return
	}
	if !w.wroteHeader && (code < 200 && code != http.StatusSwitchingProtocols) {
		w.rw.WriteHeader(code) // informational: the final headers are still to come
		return
	}
	if !w.wroteHeader && !w.commit(code) {
		return
	}
	w.rw.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errResponseReplaced
	}
	return w.rw.Write(b)
}

// FlushError commits the session if the headers are not out yet, then
// flushes. [http.ResponseController] calls it.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return errResponseReplaced
	}
	return http.NewResponseController(w.rw).Flush()
}

// Flush implements [http.Flusher].
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Hijack saves the session, then hands over the connection. Headers set
// afterwards, including the session cookie, are the hijacker's to write.
// When the underlying writer cannot hijack (HTTP/2, a recorder), Hijack
// returns an error wrapping [http.ErrNotSupported] and leaves the session
// uncommitted, so the response the caller then sends decides about it as
// usual. After a hijack, changes to the session return [ErrCommitted].
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !canHijack(w.rw) {
		return nil, nil, fmt.Errorf("sessions: hijack: %w", http.ErrNotSupported)
	}
	if !w.wroteHeader && !w.commit(http.StatusSwitchingProtocols) {
		return nil, nil, errResponseReplaced
	}
	w.wroteHeader = true
	return http.NewResponseController(w.rw).Hijack()
}

// canHijack reports whether rw, or a writer it wraps, is an
// [http.Hijacker] that can be asked, as [http.ResponseController] finds
// it. Another Manager's writer is looked through, since it always offers
// Hijack.
func canHijack(rw http.ResponseWriter) bool {
	for {
		switch t := rw.(type) {
		case *responseWriter:
			rw = t.rw
		case http.Hijacker:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			rw = t.Unwrap()
		default:
			return false
		}
	}
}

// Unwrap returns the wrapped ResponseWriter, for [http.ResponseController].
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.rw }

// fail logs err and lets the error handler answer.
func (m *Manager) fail(w http.ResponseWriter, r *http.Request, s *Session, err error) {
	level := slog.LevelError
	if errors.Is(err, ErrSessionGone) {
		level = slog.LevelWarn // another request ended it: not a fault
	}
	session := ""
	if len(s.id) >= 8 {
		session = s.id[:8]
	}
	m.cfg.Logger.Log(r.Context(), level, "sessions: session not saved", "session", session, "err", err)
	m.cfg.ErrorHandler(w, r, err)
}

// now returns the current time in whole milliseconds, as stores see it.
// It equals time.Now().Truncate(time.Millisecond) (no monotonic reading,
// the local zone) without Truncate's general division; it runs several
// times per request.
func (m *Manager) now() time.Time { return time.UnixMilli(time.Now().UnixMilli()) }

// deadline returns the absolute deadline of rec.
func (m *Manager) deadline(rec *record) time.Time {
	lifetime := m.cfg.Lifetime.Milliseconds()
	if rec.lifetime > 0 {
		lifetime = min(rec.lifetime, m.cfg.RememberLifetime.Milliseconds())
	}
	abs := rec.start + lifetime
	if rec.deadline != 0 && rec.deadline < abs {
		abs = rec.deadline
	}
	return time.UnixMilli(abs)
}

// touchInterval returns how far a read must be able to push the idle
// deadline before it is written.
func (m *Manager) touchInterval(idle time.Duration) time.Duration {
	interval := m.cfg.TouchInterval
	if interval == 0 {
		interval = idle / 10
	}
	return min(interval, idle/2)
}

// newToken returns a fresh token as the cookie carries it (signed when
// Options.Keys are set) and its store ID.
func (m *Manager) newToken() (value, id string) {
	tok, id, raw := newToken()
	if m.keys != nil {
		return m.keys.sign(raw), id
	}
	return tok, id
}

// live reports whether rec, stored with expiry, is live at now under the
// current options: before its absolute deadline, and active within the
// idle timeout in force. The store has already checked expiry, which was
// computed with the options of the last write; this also ends sessions
// that a Lifetime or IdleTimeout lowered since then no longer allows. The
// last activity was at least rec.active (the last write) and, for a
// format 2 record, expiry minus the idle timeout it was computed with
// (touches move the expiry without rewriting the record).
func (m *Manager) live(rec *record, expiry, now time.Time) bool {
	if !m.deadline(rec).After(now) {
		return false
	}
	idle := m.idle(rec)
	if idle == 0 || rec.active == 0 {
		return true
	}
	last := rec.active
	if rec.idleUsed > 0 {
		last = max(last, expiry.UnixMilli()-rec.idleUsed)
	}
	return last+idle.Milliseconds() > now.UnixMilli()
}

// idle returns the idle timeout in force for rec: the shorter of the
// configured and the per-session one.
func (m *Manager) idle(rec *record) time.Duration {
	idle := m.cfg.IdleTimeout
	if rec.lifetime > 0 {
		idle = 0 // remembered: only its own idle timeout applies
	}
	if d := time.Duration(rec.idle) * time.Millisecond; d > 0 && (idle == 0 || d < idle) {
		idle = d
	}
	return idle
}

// expiry returns the expiry to store for rec when it is active at now.
func (m *Manager) expiry(rec *record, now time.Time) time.Time {
	exp := m.deadline(rec)
	if idle := m.idle(rec); idle > 0 {
		if t := now.Add(idle); t.Before(exp) {
			exp = t
		}
	}
	return exp
}

// browser reports whether rec's cookie is a browser-session cookie.
func (m *Manager) browser(rec *record) bool {
	switch rec.browser {
	case browserOn:
		return true
	case browserOff:
		return false
	}
	return m.cfg.BrowserSessionCookie
}

// warnPlainHTTP logs, once per Manager, that a Secure cookie went out on a
// request that arrived over plain HTTP from a host other than the loopback
// one: the browser will not send it back, so every request starts a new
// session.
func (m *Manager) warnPlainHTTP(r *http.Request) {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") || m.warnedPlainHTTP.Load() {
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return // browsers accept Secure cookies from http://localhost
	}
	if m.warnedPlainHTTP.CompareAndSwap(false, true) {
		m.cfg.Logger.WarnContext(r.Context(), "sessions: a Secure session cookie was sent over plain HTTP; the browser will not return it, so every request starts a new session. Serve HTTPS, or set Options.InsecureCookie for local development only", "host", r.Host)
	}
}

// setCookie adds the session cookie to h, or a removal cookie if token is
// empty. Max-Age mirrors the server-side expiry, rounded up so that a live
// session never gets a zero (that is, absent) Max-Age.
func (m *Manager) setCookie(h http.Header, token string, expiry time.Time, browser bool, now time.Time) {
	c := http.Cookie{
		Name:        m.cfg.CookieName,
		Value:       token,
		Path:        m.cfg.Path,
		Domain:      m.cfg.Domain,
		Secure:      m.cfg.secure,
		HttpOnly:    true,
		SameSite:    m.cfg.SameSite,
		Partitioned: m.cfg.Partitioned,
	}
	switch {
	case token == "":
		c.MaxAge = -1 // "Max-Age=0"
		c.Expires = time.Unix(0, 0)
	case !browser:
		c.MaxAge = int((expiry.Sub(now) + time.Second - 1) / time.Second)
		c.MaxAge = max(c.MaxAge, 1)
	}
	h.Add("Set-Cookie", c.String())
	privateCacheControl(h)
}

// privateCacheControl makes a response that carries a session cookie
// uncacheable by shared caches, whatever the application set: a shared
// cache that kept it would hand one visitor's session (or, for a removal,
// a logout) to every other. It keeps the application's directives but
// "public" and "s-maxage", and adds "private" unless "private" or
// "no-store" is there. A response without Cache-Control gets "private,
// no-cache=\"Set-Cookie\"".
func privateCacheControl(h http.Header) {
	vals := h.Values("Cache-Control")
	if len(vals) == 0 {
		h.Set("Cache-Control", `private, no-cache="Set-Cookie"`)
		return
	}
	var keep []string
	private := false
	for _, v := range vals {
		for _, d := range splitDirectives(v) {
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "public", "s-maxage":
				continue
			case "private", "no-store":
				private = true
			}
			keep = append(keep, d)
		}
	}
	if !private {
		keep = append(keep, "private")
	}
	h.Set("Cache-Control", strings.Join(keep, ", "))
}

// splitDirectives splits a Cache-Control value at the commas outside
// quoted strings and trims the directives; empty ones are dropped.
func splitDirectives(v string) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) {
			c := v[i]
			switch {
			case escaped:
				escaped = false
				continue
			case quoted && c == '\\':
				escaped = true
				continue
			case c == '"':
				quoted = !quoted
				continue
			case c != ',' || quoted:
				continue
			}
		}
		if d := strings.TrimSpace(v[start:i]); d != "" {
			out = append(out, d)
		}
		start = i + 1
	}
	return out
}

// ListOwner returns the IDs of the live sessions tagged with owner (see
// [Session.SetOwner]). It returns [ErrNotSupported] if the store does not
// implement [OwnerIndex].
func (m *Manager) ListOwner(ctx context.Context, owner string) ([]string, error) {
	idx, ok := m.store.(OwnerIndex)
	if !ok || m.clientSide {
		return nil, ErrNotSupported
	}
	sctx := m.begin(ctx, OpListOwner, 1)
	ids, err := idx.ListOwner(sctx, owner, m.now())
	sctx.finish(OutcomeOK, err)
	if err != nil {
		return nil, fmt.Errorf("%w: list owner: %w", ErrStore, err)
	}
	return ids, nil
}

// destroyOwnerRounds bounds the delete-and-check rounds of DestroyOwner.
const destroyOwnerRounds = 4

// DestroyOwner ends every session tagged with owner ("log out
// everywhere") and returns how many live sessions it ended. It returns
// [ErrNotSupported] if the store does not implement [OwnerIndex]. Called
// with a request's context, it also ends that request's session if it
// belongs to owner: the response removes its cookie, and a later write
// starts a new session.
//
// Once it returns nil, no session of owner that existed when it was called
// is live, nor a successor that a concurrent [Session.Renew] moved one to:
// a renewal retires its old record only after creating the new one, so
// DestroyOwner deletes, then lists the owner's sessions again and deletes
// again until none is left (or returns [ErrConflict] after a few rounds,
// when logins keep racing it). Sessions that log in afterwards are not
// affected. The deletion is not cancelled when ctx is (a client that goes
// away cannot abort a "log out everywhere"); it keeps ctx's values and is
// bounded by [Options.StoreTimeout] per store call.
func (m *Manager) DestroyOwner(ctx context.Context, owner string) (int, error) {
	idx, ok := m.store.(OwnerIndex)
	if !ok || m.clientSide {
		return 0, ErrNotSupported
	}
	ctx = context.WithoutCancel(ctx)
	mine := m.owns(ctx, owner)
	total := 0
	for round := 1; round <= destroyOwnerRounds; round++ {
		sctx := m.begin(ctx, OpDeleteOwner, round)
		n, err := idx.DeleteOwner(sctx, owner, m.now())
		sctx.finish(OutcomeOK, err)
		total += n
		if err != nil {
			return total, fmt.Errorf("%w: delete owner: %w", ErrStore, err)
		}
		sctx = m.begin(ctx, OpListOwner, round)
		ids, err := idx.ListOwner(sctx, owner, m.now())
		sctx.finish(OutcomeOK, err)
		if err != nil {
			return total, fmt.Errorf("%w: list owner: %w", ErrStore, err)
		}
		if len(ids) == 0 {
			if mine {
				m.ended(ctx)
			}
			return total, nil
		}
	}
	return total, ErrConflict
}

// owns reports whether the session of the request with context ctx, if
// it belongs to this Manager, is owned by owner (loading it if needed).
func (m *Manager) owns(ctx context.Context, owner string) bool {
	s := m.FromContext(ctx)
	if s == nil || owner == "" || s.lock() != nil {
		return false
	}
	defer s.mu.Unlock()
	return s.exists && s.rec.owner == owner
}

// ended tells the session of the request with context ctx that it was
// ended by DestroyOwner: its response removes the cookie, and later writes
// go to a new session.
func (m *Manager) ended(ctx context.Context) {
	s := m.FromContext(ctx)
	if s.lock() != nil {
		return
	}
	defer s.mu.Unlock()
	if s.exists && !s.committed {
		s.gone = true // nothing left to delete
		_ = s.end()
		s.failure = nil
	}
}

// DestroyID ends the session with the store ID id, as listed by
// [Manager.ListOwner] or returned by [Session.ID]: for "log out that
// device". Like [Manager.DestroyOwner], it is not cancelled by ctx and is
// bounded by [Options.StoreTimeout].
func (m *Manager) DestroyID(ctx context.Context, id string) error {
	if m.clientSide {
		return m.revokeID(ctx, id)
	}
	sctx := m.begin(context.WithoutCancel(ctx), OpDelete, 1)
	err := m.store.Delete(sctx, id)
	sctx.finish(OutcomeOK, err)
	if err != nil {
		return fmt.Errorf("%w: delete: %w", ErrStore, err)
	}
	return nil
}

// DeleteExpired removes the expired records once, now, and returns how
// many it removed: the one-shot form of [Manager.Sweep], for a cron job or
// a command (Django's clearsessions). It runs until the store is done or
// ctx ends. It returns [ErrNotSupported] if the store does not implement
// [ExpiredDeleter].
func (m *Manager) DeleteExpired(ctx context.Context) (int, error) {
	d, ok := m.store.(ExpiredDeleter)
	if !ok {
		return 0, ErrNotSupported
	}
	return m.deleteExpired(ctx, d)
}

func (m *Manager) deleteExpired(ctx context.Context, d ExpiredDeleter) (int, error) {
	var end func(StoreResult)
	if o := m.cfg.Observer; o != nil {
		ctx, end = o.StoreCall(ctx, StoreCall{Op: OpDeleteExpired, Attempt: 1})
	}
	n, err := d.DeleteExpired(ctx, m.now())
	if end != nil {
		end(StoreResult{Outcome: pick(err == nil, OutcomeOK, OutcomeError), Err: err})
	}
	if err != nil {
		return n, fmt.Errorf("%w: delete expired: %w", ErrStore, err)
	}
	return n, nil
}

// Sweep removes expired records now and then every interval, until ctx is
// done; then it returns nil. Each sweep may take the interval (at least the
// store timeout); one that removed records until that deadline ended it
// leaves the rest to the next, which starts at once, and logs at debug
// level. Failures are logged at error level and retried at the next
// tick. It returns [ErrNotSupported] at once if the store does not
// implement [ExpiredDeleter] (stores such as Redis expire records
// themselves). Run it in its own goroutine: New starts none.
func (m *Manager) Sweep(ctx context.Context, every time.Duration) error {
	d, ok := m.store.(ExpiredDeleter)
	if !ok {
		return ErrNotSupported
	}
	if every <= 0 {
		return fmt.Errorf("%w: non-positive sweep interval %v", ErrInvalidOptions, every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, max(every, m.cfg.StoreTimeout))
		n, err := m.deleteExpired(sctx, d)
		// A sweep that made progress until its own deadline ended it is
		// working through a backlog (stores that pace their deletes take
		// long on purpose): the next one goes on. No progress at all
		// before the deadline is a failure.
		sliceEnded := errors.Is(sctx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && n > 0 && sliceEnded && errors.Is(err, context.DeadlineExceeded):
			m.cfg.Logger.DebugContext(ctx, "sessions: swept expired sessions; more are left for the next sweep", "count", n)
		case err != nil:
			m.cfg.Logger.ErrorContext(ctx, "sessions: sweep failed", "err", err, "count", n)
		case n > 0:
			m.cfg.Logger.DebugContext(ctx, "sessions: swept expired sessions", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
