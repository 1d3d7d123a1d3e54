package sessions

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// A Manager is the sessions middleware: it finds each request's session
// through its cookie, gives it to the handler through the request context,
// and saves it and sets the cookie just before the response headers are
// written. Create one with [New]. A Manager is immutable and safe for
// concurrent use; several Managers with different cookie names can serve
// one request, each with its own session.
type Manager struct {
	store Store
	cfg   config
	key   *contextKey
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
	cfg, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return &Manager{store: store, cfg: cfg, key: &contextKey{cfg.CookieName}}, nil
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
		st := &requestState{}
		st.ctx = sessionContext{Context: r.Context(), st: st}
		r = r.WithContext(&st.ctx)
		st.session.m, st.session.ctx, st.session.req = m, st.ctx.Context, r
		st.w = responseWriter{rw: w, st: st}
		next.ServeHTTP(&st.w, r)
		if !st.w.wroteHeader && st.session.loaded {
			st.w.commit(http.StatusOK)
		}
	})
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
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.wroteHeader && w.st.session.loaded && !w.commit(http.StatusSwitchingProtocols) {
		return nil, nil, errResponseReplaced
	}
	w.wroteHeader = true
	return http.NewResponseController(w.rw).Hijack()
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

func (m *Manager) now() time.Time { return time.Now().Truncate(time.Millisecond) }

// deadline returns the absolute deadline of rec.
func (m *Manager) deadline(rec *record) time.Time {
	abs := rec.start + m.cfg.Lifetime.Milliseconds()
	if rec.deadline != 0 && rec.deadline < abs {
		abs = rec.deadline
	}
	return time.UnixMilli(abs)
}

// idle returns the idle timeout in force for rec: the shorter of the
// configured and the per-session one.
func (m *Manager) idle(rec *record) time.Duration {
	idle := m.cfg.IdleTimeout
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
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", `no-cache="Set-Cookie"`)
	}
}

// ListOwner returns the IDs of the live sessions tagged with owner (see
// [Session.SetOwner]). It returns [ErrNotSupported] if the store does not
// implement [OwnerIndex].
func (m *Manager) ListOwner(ctx context.Context, owner string) ([]string, error) {
	idx, ok := m.store.(OwnerIndex)
	if !ok {
		return nil, ErrNotSupported
	}
	sctx := m.storeContext(ctx)
	defer sctx.release()
	ids, err := idx.ListOwner(sctx, owner, m.now())
	if err != nil {
		return nil, fmt.Errorf("%w: list owner: %w", ErrStore, err)
	}
	return ids, nil
}

// DestroyOwner ends every session tagged with owner ("log out
// everywhere") and returns how many live sessions it ended. It returns
// [ErrNotSupported] if the store does not implement [OwnerIndex].
func (m *Manager) DestroyOwner(ctx context.Context, owner string) (int, error) {
	idx, ok := m.store.(OwnerIndex)
	if !ok {
		return 0, ErrNotSupported
	}
	sctx := m.storeContext(ctx)
	defer sctx.release()
	n, err := idx.DeleteOwner(sctx, owner, m.now())
	if err != nil {
		return n, fmt.Errorf("%w: delete owner: %w", ErrStore, err)
	}
	return n, nil
}

// DestroyID ends the session with the store ID id, as listed by
// [Manager.ListOwner] or returned by [Session.ID]: for "log out that
// device".
func (m *Manager) DestroyID(ctx context.Context, id string) error {
	sctx := m.storeContext(ctx)
	defer sctx.release()
	if err := m.store.Delete(sctx, id); err != nil {
		return fmt.Errorf("%w: delete: %w", ErrStore, err)
	}
	return nil
}

// Sweep removes expired records now and then every interval, until ctx is
// done; then it returns nil. Failures are logged and retried at the next
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
		n, err := d.DeleteExpired(sctx, m.now())
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			m.cfg.Logger.ErrorContext(ctx, "sessions: sweep failed", "err", err)
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
