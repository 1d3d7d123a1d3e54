package sessions

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A save that lost a race with another request re-applies this request's
// changes on fresh data and tries again, for at least minSaveAttempts
// attempts and until conflictBudget has passed since its first lost race;
// then it gives up with [ErrConflict]. A bound in time rather than in
// attempts: on a loaded machine with dozens of requests writing one
// session, a fixed count of short back-offs ran out while the writes ahead
// were still being served (one request in 40 concurrent ones answered 409).
const (
	minSaveAttempts = 10
	conflictBudget  = 5 * time.Second
)

// A Session is the session of one request, as seen by one [Manager]. Get it
// with [FromContext] or [Manager.FromContext] and read or change it with
// [Get], [Pop], [Update], [Key] and the methods below.
//
// Nothing is loaded until the first accessor is called, and changes are
// saved once, just before the response headers are written. A Session is
// safe for concurrent use by the goroutines of its request; it must not be
// used after its request's handler has returned.
//
// Every accessor of a nil *Session returns [ErrNoSession].
type Session struct {
	mu  sync.Mutex
	m   *Manager
	ctx context.Context // the request's own context, for store calls
	req *http.Request

	loaded    bool
	committed bool
	applying  atomic.Bool // a Modify function runs under mu

	// The rest exists once the session is loaded, so that a request that
	// never touches its session allocates only what the middleware needs.
	*loadedState
}

// loadedState is the state of a Session that a handler has used.
type loadedState struct {
	err       error // sticky load failure: fail closed
	hadCookie bool  // the request carried a cookie with our name

	token   string // "" until the session has a record
	id      string
	exists  bool
	version int64
	expiry  time.Time // as stored
	size    int       // encoded size of the record as loaded or last saved
	rec     record
	ops     []op // changes since the last save, re-applied on conflict
	opsBuf  [2]op

	call0     callContext // the first store call's context, without an allocation
	call0Used bool
	call1     callContext // the second's (a load, then its save)
	call1Used bool

	failure error // the first failure of the request: fail closed at commit

	conflictSince time.Time // the request's first lost race (see exhausted)

	dirty     bool
	renew     renewKind
	destroyed bool // the request's session was destroyed: send a removal cookie
	gone      bool // another request ended the session: send nothing
	cookie    bool // send the session cookie
	reseal    bool // client-side: opened with an older key, seal again
}

type renewKind uint8

const (
	renewNone renewKind = iota
	renewPlain
	renewLogin
)

type opKind uint8

const (
	opSet opKind = iota
	opDelete
	opClear
	opOwner
	opStart
	opIdle
	opDeadline
	opBrowser
	opLifetime
	opCAS  // set key to val if it still holds base (n != 0: present); see Update
	opFunc // set key to what fn computes from its current value; see Modify
)

// op is one recorded change. Saving re-applies the changes recorded since
// the last save onto fresh data when another request changed the session
// meanwhile, so concurrent requests never lose each other's writes.
type op struct {
	kind opKind
	key  string
	val  json.RawMessage
	n    int64
	base json.RawMessage                                                   // opCAS: the value val was computed from
	fn   func(cur json.RawMessage, ok bool) (json.RawMessage, bool, error) // opFunc
}

// errStale reports that an opCAS met a value other than its base: the
// caller computes the value again from the current one.
var errStale = errors.New("sessions: value changed while it was being computed")

func (r *record) apply(o op) error {
	switch o.kind {
	case opSet:
		r.setValue(o.key, o.val)
	case opDelete:
		r.deleteValue(o.key)
	case opClear:
		r.values, r.valBound = r.values[:0], 0
	case opOwner:
		r.owner = o.key
	case opStart:
		r.start = o.n
	case opIdle:
		r.idle = o.n
	case opDeadline:
		r.deadline = o.n
	case opBrowser:
		r.browser = browserMode(o.n)
	case opLifetime:
		r.lifetime = o.n
	case opFunc:
		cur, ok := r.values.get(o.key)
		v, keep, err := o.fn(cur, ok)
		switch {
		case err != nil:
			return err
		case keep:
			r.setValue(o.key, v)
		default:
			r.deleteValue(o.key)
		}
	case opCAS:
		cur, ok := r.values.get(o.key)
		if ok != (o.n != 0) || !bytes.Equal(cur, o.base) {
			return errStale
		}
		r.setValue(o.key, o.val)
	}
	return nil
}

// changes reports whether applying o to r would change it.
func (r *record) changes(o op) bool {
	switch o.kind {
	case opSet:
		v, ok := r.values.get(o.key)
		return !ok || !bytes.Equal(v, o.val)
	case opCAS:
		v, ok := r.values.get(o.key)
		if ok != (o.n != 0) || !bytes.Equal(v, o.base) {
			return true // stale: apply reports it
		}
		return !ok || !bytes.Equal(v, o.val)
	case opDelete:
		_, ok := r.values.get(o.key)
		return ok
	case opClear:
		return len(r.values) > 0
	case opOwner:
		return r.owner != o.key
	case opStart:
		return r.start != o.n
	case opIdle:
		return r.idle != o.n
	case opDeadline:
		return r.deadline != o.n
	case opBrowser:
		return r.browser != browserMode(o.n)
	case opLifetime:
		return r.lifetime != o.n
	}
	return true
}

// empty reports whether r holds nothing worth storing.
func (r *record) empty() bool {
	return len(r.values) == 0 && r.owner == "" && r.idle == 0 && r.deadline == 0 && r.browser == browserDefault && r.lifetime == 0
}

// FromContext returns the session of the innermost [Manager] whose
// middleware handled the request with context ctx, or nil if there is none.
// A nil *Session is safe to use: its accessors return [ErrNoSession].
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(anyManager).(*Session)
	return s
}

// lock locks s and makes sure it is loaded. On success the caller holds
// s.mu and unlocks it; on failure s.mu is not held.
func (s *Session) lock() error {
	if s == nil {
		return ErrNoSession
	}
	if !s.mu.TryLock() {
		if s.applying.Load() {
			return errApplying
		}
		s.mu.Lock()
	}
	if !s.loaded {
		s.load()
	}
	if s.err != nil {
		s.mu.Unlock()
		return s.err
	}
	return nil
}

// load finds the request's session: the first cookie with the configured
// name that names a live record. A store failure is kept and returned by
// every accessor, never taken for "no session".
func (s *Session) load() {
	s.loaded = true
	s.loadedState = new(loadedState)
	if s.m.clientSide {
		if s.loadSealed(s.m.now()); !s.exists {
			s.rec = record{}
		}
		return
	}
	var buf [maxCandidates]candidate
	toks, hadCookie := candidates(buf[:0], s.req, s.m.cfg.CookieName, s.m.keys)
	s.hadCookie = hadCookie
	if len(toks) == 0 {
		s.rec = record{}
		return
	}
	now := s.m.now()
	for _, c := range toks {
		tok, id := c.token, tokenID(c.raw)
		ctx := s.begin(OpLoad, 1)
		data, version, expiry, found, err := s.m.store.Load(ctx, id, now)
		ctx.finish(pick(found, OutcomeFound, OutcomeNotFound), err)
		if err != nil {
			s.err = fmt.Errorf("%w: load: %w", ErrStore, err)
			s.m.cfg.Logger.ErrorContext(s.ctx, "sessions: load failed", "session", id[:8], "err", err)
			return
		}
		if !found {
			continue
		}
		rec, err := decodeRecord(data)
		if err != nil {
			s.m.cfg.Logger.WarnContext(s.ctx, "sessions: corrupt session record ignored", "session", id[:8], "err", err)
			continue
		}
		if !s.m.live(&rec, expiry, now) {
			continue // ended by the current Lifetime or IdleTimeout (they may have been lowered)
		}
		s.token, s.id, s.exists, s.version, s.expiry, s.rec = tok, id, true, version, expiry, rec
		s.size = len(data)
		if c.old {
			// Signed with an older key: this response signs it again.
			s.token, s.cookie = s.m.keys.sign(c.raw), true
		}
		return
	}
	s.rec = record{}
}

// begin returns the context of one store call. Without an observer, the
// first two calls of the request (a load and its save) use contexts kept
// in the session; each is used once, so a store that holds on to a context after returning
// still sees the right one.
func (s *Session) begin(op StoreOp, attempt int) *callContext {
	if s.m.cfg.Observer != nil {
		return s.m.begin(s.ctx, op, attempt)
	}
	c := &s.call0
	switch {
	case !s.call0Used:
		s.call0Used = true
	case !s.call1Used:
		s.call1Used, c = true, &s.call1
	default:
		return s.m.begin(s.ctx, op, attempt)
	}
	c.parent, c.deadline = s.ctx, time.Now().Add(s.m.cfg.StoreTimeout)
	return c
}

// beginDetached returns the context of a store call that must complete
// even if the request's client goes away: it keeps the request's values
// but not its cancellation, and is bounded by StoreTimeout.
func (s *Session) beginDetached(op StoreOp, attempt int) *callContext {
	return s.m.begin(context.WithoutCancel(s.ctx), op, attempt)
}

// change records and applies o, after checking that the session can still
// change and stays within MaxDataSize.
func (s *Session) change(o op) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.noteLocked(s.changeLocked(o))
}

// noteLocked records err as the request's failure if it is the first
// failure to load or save the session (a store failure, ErrSessionGone,
// ErrConflict), and returns it. A change refused for its own sake (a
// TooLargeError, an invalid argument) leaves the session consistent and is
// the caller's to handle. The caller holds s.mu.
func (s *Session) noteLocked(err error) error {
	if err != nil && s.failure == nil && (errors.Is(err, ErrStore) || errors.Is(err, ErrSessionGone) ||
		errors.Is(err, ErrConflict) || errors.Is(err, ErrIDCollision)) {
		s.failure = err
	}
	return err
}

// note is noteLocked for a caller that does not hold s.mu; with any set,
// it records any error.
func (s *Session) note(err error, any bool) error {
	if err == nil || s == nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		return err
	}
	if any && s.failure == nil && !errors.Is(err, errApplying) {
		s.failure = err
	}
	return s.noteLocked(err)
}

// Err returns the first failure of the session in this request: a store
// failure on load or save, [ErrSessionGone], [ErrConflict], a value that
// [Value] could not decode, or nil. Unless the handler answers
// with a status that [Options.ShouldSave] rejects (a 5xx by default), such
// a failure makes the Manager answer through [Options.ErrorHandler] instead
// of the handler's response, so that an ignored error never turns into a
// success that silently lost a write; [Session.Destroy] clears it. A
// handler that wants to answer the failure itself checks Err once and
// answers with an error status.
func (s *Session) Err() error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	return s.failure
}

func (s *Session) changeLocked(o op) error {
	if err := s.writable(); err != nil {
		return err
	}
	if !s.rec.changes(o) {
		return nil
	}
	if err := s.applyChecked(&s.rec, o); err != nil {
		return err
	}
	if s.ops == nil {
		s.ops = s.opsBuf[:0]
	}
	s.ops = append(s.ops, o)
	s.dirty = true
	return nil
}

// writable reports why the session can no longer change, if it cannot.
func (s *Session) writable() error {
	switch {
	case s.committed:
		s.m.cfg.Logger.WarnContext(s.ctx, "sessions: change after the response headers were written was not saved")
		return ErrCommitted
	case s.gone:
		return ErrSessionGone
	}
	return nil
}

// applyChecked applies o to r unless the result would exceed MaxDataSize
// and be larger than r was: a change that does not grow the record never
// fails for size, so that a session written under a larger limit can
// still shrink.
func (s *Session) applyChecked(r *record, o op) error {
	if o.kind == opDelete || o.kind == opClear {
		return r.apply(o) // never grows the record
	}
	var (
		prev          = *r
		prevVal, had  = r.values.get(o.key)
		limit         = s.m.cfg.MaxDataSize
		restoreValues = o.kind == opSet || o.kind == opCAS || o.kind == opFunc
	)
	if o.kind == opFunc {
		s.applying.Store(true)
		defer s.applying.Store(false)
	}
	if err := r.apply(o); err != nil {
		return err
	}
	if r.sizeBound() <= limit {
		return nil // the common case: far below the limit, no need to iterate
	}
	size := r.size()
	if size <= limit {
		return nil
	}
	newVal, newHad := r.values.get(o.key)
	values := r.values
	*r = prev
	r.values = values
	if restoreValues {
		if had {
			r.setValue(o.key, prevVal)
		} else {
			r.deleteValue(o.key)
		}
	}
	if size <= r.size() {
		if o.kind == opFunc { // fn need not be deterministic: keep its result
			if newHad {
				r.setValue(o.key, newVal)
			} else {
				r.deleteValue(o.key)
			}
			return nil
		}
		return r.apply(o) // not larger than before: allowed
	}
	return &TooLargeError{Size: size, Limit: limit}
}

func (s *Session) value(key string) (json.RawMessage, bool, error) {
	if err := s.lock(); err != nil {
		return nil, false, err
	}
	defer s.mu.Unlock()
	v, ok := s.rec.values.get(key)
	return v, ok, nil
}

// Get returns the value stored under key, decoded from JSON into a T, and
// whether it was present. Only this value is decoded.
func Get[T any](s *Session, key string) (T, bool, error) {
	var v T
	raw, ok, err := s.value(key)
	if err != nil || !ok {
		return v, false, err
	}
	if err := decodeValue(raw, &v); err != nil {
		var zero T
		return zero, false, fmt.Errorf("sessions: decode %q: %w", key, err)
	}
	return v, true, nil
}

// Pop returns and removes the value stored under key, as [Get] does and then
// [Session.Delete]: the way to read a flash message once.
func Pop[T any](s *Session, key string) (T, bool, error) {
	var v T
	if err := s.lock(); err != nil {
		return v, false, err
	}
	defer s.mu.Unlock()
	raw, ok := s.rec.values.get(key)
	if !ok {
		return v, false, nil
	}
	if err := decodeValue(raw, &v); err != nil {
		var zero T
		return zero, false, fmt.Errorf("sessions: decode %q: %w", key, err)
	}
	if err := s.changeLocked(op{kind: opDelete, key: key}); err != nil {
		var zero T
		return zero, false, err
	}
	return v, true, nil
}

// Update replaces the value under key with fn applied to it (fn receives
// the zero T when the key is absent) and saves the session at once, before
// returning the value it stored. If another request changed the session
// meanwhile, fn is applied again to the fresh value, so concurrent updates
// are never lost: use it for counters and other read-modify-write changes.
//
// fn runs without any lock held, so it may read the session (and even
// change it, though it should not); it may run several times and must not
// have side effects. Update either saves its change before it returns or
// returns an error and leaves the value as it was. Because the session is
// saved before Update returns, its change stands even if the handler then
// answers with a status that [Options.ShouldSave] rejects.
func Update[T any](s *Session, key string, fn func(T) T) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		raw, ok, err := s.value(key)
		if err != nil {
			return zero, err
		}
		var cur T
		if ok {
			if err := decodeValue(raw, &cur); err != nil {
				return zero, fmt.Errorf("sessions: decode %q: %w", key, err)
			}
		}
		result := fn(cur)
		val, err := encodeValue(&result)
		if err != nil {
			return zero, fmt.Errorf("sessions: encode %q: %w", key, err)
		}
		o := op{kind: opCAS, key: key, val: val, base: raw}
		if ok {
			o.n = 1
		}
		switch err := s.transact(o, attempt); {
		case err == nil:
			return result, nil
		case !errors.Is(err, errStale):
			return zero, err
		case s.exhausted(attempt):
			return zero, s.note(ErrConflict, false)
		}
	}
}

// Value returns the value under key decoded into a T, or the zero T when
// the key is absent. It is [Get] without the boilerplate, and hides no
// error: a failure (the store failed, or the value does not decode into a
// T) is recorded as the request's failure (see [Session.Err]), so that the
// response fails closed unless the handler answers with an error status
// itself.
func Value[T any](s *Session, key string) T {
	v, _, err := Get[T](s, key)
	if err != nil {
		s.note(err, true)
	}
	return v
}

// Modify changes the value under key with fn (fn receives the zero T when
// the key is absent), as a change saved with the others when the response
// is committed: unlike [Update] it costs no store write of its own. It is
// conflict-safe: if another request saved the session first, fn is applied
// again to the fresh value, so concurrent modifications (appending to a
// list, say) are never lost. Reads in this request see fn's result at once.
//
// fn runs with the session locked, possibly several times, and must
// neither have side effects nor use the session: a session accessor called
// from fn returns an error.
func Modify[T any](s *Session, key string, fn func(T) T) error {
	return s.change(op{kind: opFunc, key: key, fn: func(cur json.RawMessage, ok bool) (json.RawMessage, bool, error) {
		var v T
		if ok {
			if err := json.Unmarshal(cur, &v); err != nil {
				return nil, false, fmt.Errorf("sessions: decode %q: %w", key, err)
			}
		}
		raw, err := json.Marshal(fn(v))
		if err != nil {
			return nil, false, fmt.Errorf("sessions: encode %q: %w", key, err)
		}
		return raw, true, nil
	}})
}

// AddFlash appends v to the list of flash messages under key, with
// [Modify]: concurrent requests adding messages never lose each other's.
func AddFlash[T any](s *Session, key string, v T) error {
	return Modify(s, key, func(l []T) []T { return append(l, v) })
}

// Flashes returns the flash messages under key and removes them: the
// messages a page shows once. Only the messages returned are removed, so a
// message added meanwhile by a concurrent request stays for the next page.
func Flashes[T any](s *Session, key string) ([]T, error) {
	l, ok, err := Get[[]T](s, key)
	if err != nil || !ok {
		return nil, err
	}
	n := len(l)
	err = s.change(op{kind: opFunc, key: key, fn: func(cur json.RawMessage, ok bool) (json.RawMessage, bool, error) {
		var rest []json.RawMessage
		if ok {
			if err := json.Unmarshal(cur, &rest); err != nil {
				return nil, false, fmt.Errorf("sessions: decode %q: %w", key, err)
			}
		}
		if len(rest) <= n {
			return nil, false, nil
		}
		raw, err := json.Marshal(rest[n:])
		return raw, err == nil, err
	}})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// transact applies the compare-and-set o and saves the session now. It
// returns errStale, with o neither applied nor recorded, when the value o
// was computed from has changed, in this request or in the store; on any
// other failure it takes o back, so that it is never saved later.
func (s *Session) transact(o op, attempt int) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	n := len(s.ops)
	if err := s.changeLocked(o); err != nil || !s.dirty {
		return s.noteLocked(err)
	}
	err := s.noteLocked(s.saveFrom(s.m.now(), attempt))
	if err != nil && len(s.ops) > n && s.ops[n].kind == opCAS {
		// Not saved: take the change back. The value under the key is
		// still o's result, applied on o's base.
		if o.n != 0 {
			s.rec.setValue(o.key, o.base)
		} else {
			s.rec.deleteValue(o.key)
		}
		s.ops = append(s.ops[:n], s.ops[n+1:]...)
		s.dirty = len(s.ops) > 0
	}
	return err
}

// Set stores value, encoded as JSON, under key. Setting a key to a value
// equal to the stored one is not a change.
func (s *Session) Set(key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("sessions: encode %q: %w", key, err)
	}
	return s.change(op{kind: opSet, key: key, val: raw})
}

// Delete removes key. Deleting an absent key is not a change.
func (s *Session) Delete(key string) error {
	return s.change(op{kind: opDelete, key: key})
}

// Clear removes every value. The session keeps its ID, its owner and its
// expiry settings; use [Session.Destroy] to end it.
func (s *Session) Clear() error {
	return s.change(op{kind: opClear})
}

// Keys returns the keys of the session's values, sorted byte-wise.
func (s *Session) Keys() ([]string, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	keys := make([]string, len(s.rec.values))
	for i, e := range s.rec.values {
		keys[i] = e.k // already in order
	}
	return keys, nil
}

// ID returns the session's store ID (the hex SHA-256 of its token, never
// the token itself), or "" when the session has no record yet. It is the ID
// that [Manager.ListOwner] lists.
func (s *Session) ID() (string, error) {
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	return s.id, nil
}

// Owner returns the session's owner, "" for none.
func (s *Session) Owner() (string, error) {
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	return s.rec.owner, nil
}

// SetOwner tags the session with an owner, usually a user ID, so that
// [Manager.ListOwner] and [Manager.DestroyOwner] find it. "" removes the
// tag. At login, prefer [Session.RenewAfterLogin], which also renews the ID.
func (s *Session) SetOwner(owner string) error {
	return s.change(op{kind: opOwner, key: owner})
}

// SetIdleTimeout gives this session its own idle timeout, stored with it
// until changed; 0 removes it. It combines with [Options.IdleTimeout]: the
// earlier deadline wins.
func (s *Session) SetIdleTimeout(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("sessions: negative idle timeout %v", d)
	}
	if d > 0 && d < time.Millisecond {
		d = time.Millisecond
	}
	return s.changeExpiry(op{kind: opIdle, n: d.Milliseconds()})
}

// SetDeadline gives this session its own absolute deadline, stored with it
// until changed; the zero Time removes it. It combines with
// [Options.Lifetime]: the earlier deadline wins. A deadline that has
// already passed ends the session now, as [Session.Destroy] does.
func (s *Session) SetDeadline(t time.Time) error {
	if s == nil {
		return ErrNoSession
	}
	if !t.IsZero() && !t.After(s.m.now()) {
		return s.Destroy()
	}
	var ms int64
	if !t.IsZero() {
		ms = t.UnixMilli()
	}
	return s.changeExpiry(op{kind: opDeadline, n: ms})
}

// SetBrowserSession chooses this session's cookie kind, stored with the
// session until changed: a browser-session cookie (no Max-Age or Expires)
// when on is true, a persistent one when it is false, whatever
// [Options.BrowserSessionCookie] says. The server enforces the session's
// deadlines either way.
func (s *Session) SetBrowserSession(on bool) error {
	mode := browserOff
	if on {
		mode = browserOn
	}
	return s.changeExpiry(op{kind: opBrowser, n: int64(mode)})
}

// Remember turns "remember me" on or off for this session, stored with it:
// on, the session gets a persistent cookie and an absolute lifetime of
// [Options.RememberLifetime] from its start, and [Options.IdleTimeout] no
// longer ends it (a per-session [Session.SetIdleTimeout] still does); off,
// it is back to the Manager's defaults. The usual pattern: set
// [Options.BrowserSessionCookie], and at login call
// [Session.RenewAfterLogin], then Remember(true) if the user ticked the
// box.
func (s *Session) Remember(on bool) error {
	if s == nil {
		return ErrNoSession
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	lifetime, mode := int64(0), browserDefault
	if on {
		lifetime, mode = s.m.cfg.RememberLifetime.Milliseconds(), browserOff
	}
	if err := s.noteLocked(s.changeLocked(op{kind: opLifetime, n: lifetime})); err != nil {
		return err
	}
	if err := s.noteLocked(s.changeLocked(op{kind: opBrowser, n: int64(mode)})); err != nil {
		return err
	}
	s.cookie = true
	return nil
}

// changeExpiry applies a change of the session's expiry settings and makes
// the response re-send the cookie, whether or not the effective deadline
// moved.
func (s *Session) changeExpiry(o op) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.noteLocked(s.changeLocked(o)); err != nil {
		return err
	}
	s.cookie = true
	return nil
}

// Expiry returns when the session ends if it sees no further activity:
// the earlier of its absolute deadline and its idle deadline, as this
// request would store it. It returns the zero Time for a session with no
// record and nothing to save.
func (s *Session) Expiry() (time.Time, error) {
	if err := s.lock(); err != nil {
		return time.Time{}, err
	}
	defer s.mu.Unlock()
	if !s.exists && s.rec.empty() {
		return time.Time{}, nil
	}
	now := s.m.now()
	rec := s.rec
	if rec.start == 0 {
		rec.start = now.UnixMilli()
	}
	return s.m.expiry(&rec, now), nil
}

// Status describes what a request has done with its session so far: a
// combination of the flags below.
type Status uint8

// The flags of a [Status].
const (
	// StatusNew: the session has no record yet (no cookie named one, or it
	// was destroyed); ID returns "".
	StatusNew Status = 1 << iota
	// StatusModified: there are changes to save at commit.
	StatusModified
	// StatusRenewing: the session gets a new ID at commit.
	StatusRenewing
	// StatusDestroyed: the session was destroyed in this request.
	StatusDestroyed
	// StatusGone: another request ended the session ([ErrSessionGone]).
	StatusGone
)

// Status returns what this request has done with its session so far.
func (s *Session) Status() (Status, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	var st Status
	if !s.exists {
		st |= StatusNew
	}
	if s.dirty {
		st |= StatusModified
	}
	if s.renew != renewNone {
		st |= StatusRenewing
	}
	if s.destroyed {
		st |= StatusDestroyed
	}
	if s.gone {
		st |= StatusGone
	}
	return st, nil
}

// Renew gives the session a new ID and keeps its data, so that an ID
// captured before (session fixation) stops working. The old ID stops
// working when the response is committed: the new record is created
// first, then the old one is retired only if it is still live and
// unchanged, so a failure loses nothing, a concurrent write is carried
// over, and a session ended meanwhile by another request stays ended
// ([ErrSessionGone]). The absolute deadline is kept; at login use
// [Session.RenewAfterLogin].
func (s *Session) Renew() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return s.noteLocked(err)
	}
	if s.renew == renewNone {
		s.renew = renewPlain
	}
	return nil
}

// RenewAfterLogin renews the session's ID as [Session.Renew] does, sets its
// owner (usually the user ID; "" for none) and starts a fresh absolute
// lifetime, as re-authentication should (NIST SP 800-63B). Call it right
// after the user has proved who they are.
//
// A user can always log in: if the session is larger than
// [Options.MaxDataSize] (the limit was lowered since it was written) and
// setting the owner would make it larger still, its values are cleared
// first, with a warning in the log.
func (s *Session) RenewAfterLogin(owner string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	login := func() error {
		if err := s.changeLocked(op{kind: opOwner, key: owner}); err != nil {
			return err
		}
		return s.changeLocked(op{kind: opStart, n: s.m.now().UnixMilli()})
	}
	err := login()
	if tl := (*TooLargeError)(nil); errors.As(err, &tl) {
		s.m.cfg.Logger.WarnContext(s.ctx, "sessions: session over MaxDataSize cleared at login", "size", tl.Size, "limit", tl.Limit)
		if err = s.changeLocked(op{kind: opClear}); err == nil {
			err = login()
		}
	}
	if err != nil {
		return s.noteLocked(err)
	}
	s.renew = renewLogin
	return nil
}

// Destroy ends the session now: its record is deleted from the store before
// Destroy returns, and the response removes the cookie (whatever its
// status). Data written afterwards in the same request goes into a brand-new
// session with a new ID. A successful Destroy clears the request's failure
// ([Session.Err]). The deletion is not cancelled when the client goes
// away (it is bounded by [Options.StoreTimeout]), so a logout always
// completes. Destroy also works on a session that another request ended
// (after [ErrSessionGone]): the response then removes the cookie.
func (s *Session) Destroy() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.committed {
		return ErrCommitted
	}
	if err := s.end(); err != nil {
		return s.noteLocked(err)
	}
	s.failure = nil // the session and its pending changes are discarded on purpose
	return nil
}

// reset turns s into a new, empty session without a record.
func (s *Session) reset() {
	s.token, s.id, s.exists, s.version, s.expiry, s.size = "", "", false, 0, time.Time{}, 0
	s.rec = record{}
	s.ops = s.ops[:0]
	s.dirty, s.renew, s.cookie, s.gone = false, renewNone, false, false
}

// save writes the session's changes: a new record under a fresh ID if it
// has none, otherwise a versioned update that re-applies the recorded
// changes on fresh data when another request won the race.
func (s *Session) save(now time.Time) error { return s.saveFrom(now, 1) }

// saveFrom is save, counting attempts from first (an Update that lost a
// race carries its count over).
func (s *Session) saveFrom(now time.Time, first int) error {
	if s.m.clientSide {
		return s.saveSealed(now, false)
	}
	if !s.exists {
		if s.rec.empty() {
			s.ops, s.dirty = s.ops[:0], false
			return nil // never persist an empty session
		}
		return s.create(now)
	}
	for attempt := first; ; attempt++ {
		exp, data, done, err := s.prepare(now)
		if done || err != nil {
			return err
		}
		ctx := s.begin(OpUpdate, attempt)
		updated, found, err := s.m.store.Update(ctx, s.id, s.version, data, exp, s.rec.owner, now)
		ctx.finish(updateOutcome(updated, found), err)
		if err != nil {
			return fmt.Errorf("%w: update: %w", ErrStore, err)
		}
		if updated {
			s.version++
			if !exp.Equal(s.expiry) {
				s.cookie = true
			}
			s.expiry, s.size = exp, len(data)
			s.ops, s.dirty = s.ops[:0], false
			return nil
		}
		if !found {
			s.gone = true
			return fmt.Errorf("%w (update: no live record, attempt %d)", ErrSessionGone, attempt)
		}
		if err := s.retry(attempt, now); err != nil {
			return err
		}
		now = s.m.now() // the next attempt is a write of its own: expiries count from it
	}
}

// prepare computes the expiry of the session's next write and encodes
// the record for it. done is true when the session has expired instead:
// it was ended, and err is end's error.
func (s *Session) prepare(now time.Time) (exp time.Time, data []byte, done bool, err error) {
	if s.rec.start == 0 {
		s.rec.start = now.UnixMilli()
	}
	exp = s.m.expiry(&s.rec, now)
	if !exp.After(now) {
		return exp, nil, true, s.end()
	}
	data, err = s.encode(now)
	return exp, data, false, err
}

// maxStampLen bounds what encode's stamps (the time of the write and the
// idle timeout in force) add to a record: two varints.
const maxStampLen = 2 * binary.MaxVarintLen64

// encode stamps the record with the time of this write and the idle
// timeout its expiry is computed with, and encodes it. A record over
// MaxDataSize is refused unless it is no larger than the record as loaded
// (stamps aside): a session written under a larger limit can still shrink.
func (s *Session) encode(now time.Time) ([]byte, error) {
	s.rec.active = now.UnixMilli()
	s.rec.idleUsed = s.m.idle(&s.rec).Milliseconds()
	data := s.rec.encode()
	if n, limit := len(data), s.m.cfg.MaxDataSize; n > limit && (s.size == 0 || n > s.size+maxStampLen) {
		return nil, &TooLargeError{Size: n, Limit: limit}
	}
	return data, nil
}

// retry backs off after a save attempt lost a race, then reloads the record
// and re-applies this request's changes, or gives up with ErrConflict.
func (s *Session) retry(attempt int, now time.Time) error {
	if s.exhausted(attempt) {
		return ErrConflict
	}
	if err := s.sleep(attempt); err != nil {
		return err
	}
	return s.refresh(now)
}

// exhausted reports whether a save that lost its attempt-th race should
// give up (see conflictBudget). The clock starts at the request's first
// lost race.
func (s *Session) exhausted(attempt int) bool {
	now := time.Now()
	if s.conflictSince.IsZero() {
		s.conflictSince = now
	}
	return attempt >= minSaveAttempts && now.Sub(s.conflictSince) >= conflictBudget
}

// refresh reloads the record and re-applies this request's changes to it.
// An opCAS whose base has changed is dropped, and refresh then returns
// errStale with the fresh record and the other changes in place.
func (s *Session) refresh(now time.Time) error {
	ctx := s.begin(OpLoad, 1)
	data, version, expiry, found, err := s.m.store.Load(ctx, s.id, now)
	ctx.finish(pick(found, OutcomeFound, OutcomeNotFound), err)
	if err != nil {
		return fmt.Errorf("%w: load: %w", ErrStore, err)
	}
	var rec record
	if found {
		rec, err = decodeRecord(data)
	}
	switch {
	case !found:
		s.gone = true
		return fmt.Errorf("%w (reload: no live record)", ErrSessionGone)
	case err != nil:
		s.gone = true
		return fmt.Errorf("%w (reload: %w)", ErrSessionGone, err)
	case !s.m.live(&rec, expiry, now):
		s.gone = true
		return fmt.Errorf("%w (reload: the record's timeouts have passed, expiry %d, now %d)", ErrSessionGone, expiry.UnixMilli(), now.UnixMilli())
	}
	var stale error
	ops := s.ops[:0]
	for _, o := range s.ops {
		err := s.applyChecked(&rec, o)
		switch {
		case errors.Is(err, errStale):
			stale = err
			continue
		case err != nil:
			return err
		}
		ops = append(ops, o)
	}
	s.ops, s.dirty = ops, len(ops) > 0
	s.rec, s.version, s.expiry, s.size = rec, version, expiry, len(data)
	return stale
}

// sleep backs off before the next save attempt, with jitter so that
// colliding requests spread out.
func (s *Session) sleep(attempt int) error {
	d := rand.N(time.Duration(min(attempt, 10)) * time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.ctx.Done():
		return fmt.Errorf("%w: %w", ErrConflict, s.ctx.Err())
	}
}

// create stores the session under a fresh ID.
func (s *Session) create(now time.Time) error {
	exp, data, done, err := s.prepare(now)
	if done || err != nil {
		return err
	}
	tok, id, err := s.createRecord(data, exp, now)
	if err != nil {
		return err
	}
	s.token, s.id, s.exists, s.version, s.expiry, s.size = tok, id, true, 1, exp, len(data)
	s.ops, s.dirty, s.cookie = s.ops[:0], false, true
	return nil
}

// createRecord stores data as a new record under a fresh ID and returns
// the ID and its token.
func (s *Session) createRecord(data []byte, exp, now time.Time) (tok, id string, err error) {
	for attempt := 1; attempt <= 3; attempt++ {
		tok, id = s.m.newToken()
		ctx := s.begin(OpCreate, attempt)
		created, err := s.m.store.Create(ctx, id, data, exp, s.rec.owner, now)
		ctx.finish(pick(created, OutcomeCreated, OutcomeExists), err)
		if err != nil {
			return "", "", fmt.Errorf("%w: create: %w", ErrStore, err)
		}
		if created {
			return tok, id, nil
		}
	}
	return "", "", ErrIDCollision
}

// end deletes the session's record, if it has one, and turns s into a new,
// empty session whose response removes the cookie. A session that another
// request ended has no record left to delete.
func (s *Session) end() error {
	if s.exists && !s.gone {
		var err error
		if s.m.clientSide {
			err = s.m.revoke(s.ctx, s.id, s.until(), s.m.now())
		} else {
			err = s.deleteRecord(s.id)
		}
		if err != nil {
			return err
		}
	}
	s.reset()
	s.destroyed = true
	return nil
}

// retiredExpiry is the expiry with which a renewal retires the old record:
// long past on every clock, so that no instance sees it live.
var retiredExpiry = time.UnixMilli(1)

// commitRenew moves the session to a new ID. The data as loaded, with this
// request's changes applied, goes into a new record; then the old record
// is retired by a compare-and-set on the version it was loaded with. The
// new record stays only if that succeeds, that is, if the old record was
// still live and unchanged: if another request changed it meanwhile, the
// new record is deleted and the renewal starts over from the fresh data
// (the other request's write is carried over, never dropped); if another
// request ended or renewed it, the new record is deleted and the result is
// ErrSessionGone. Retiring and undoing run to completion even if the client
// goes away.
func (s *Session) commitRenew(now time.Time) error {
	if s.m.clientSide {
		return s.saveSealed(now, true)
	}
	if !s.exists {
		return s.save(now)
	}
	for attempt := 1; ; attempt++ {
		exp, data, done, err := s.prepare(now)
		if done || err != nil {
			return err
		}
		tok, id, err := s.createRecord(data, exp, now)
		if err != nil {
			return err
		}
		ctx := s.beginDetached(OpRetire, attempt)
		retired, found, err := s.m.store.Update(ctx, s.id, s.version, []byte{}, retiredExpiry, "", now)
		ctx.finish(updateOutcome(retired, found), err)
		if err == nil && retired {
			// Best effort: the old record is already dead to every reader.
			if err := s.deleteRecord(s.id); err != nil {
				s.m.cfg.Logger.WarnContext(s.ctx, "sessions: retired session not deleted; it is expired and goes with the next sweep", "session", s.id[:8], "err", err)
			}
			s.token, s.id, s.version, s.expiry, s.size = tok, id, 1, exp, len(data)
			s.ops, s.dirty, s.cookie = s.ops[:0], false, true
			return nil
		}
		// The old record was not retired: the new one must not stay.
		if derr := s.deleteRecord(id); derr != nil {
			s.m.cfg.Logger.ErrorContext(s.ctx, "sessions: unused renewal record not deleted; nobody holds its token and it expires", "session", id[:8], "err", derr)
		}
		switch {
		case err != nil:
			return fmt.Errorf("%w: retire: %w", ErrStore, err)
		case !found:
			s.gone = true
			return fmt.Errorf("%w (retire: no live record)", ErrSessionGone)
		}
		if err := s.retry(attempt, now); err != nil {
			return err
		}
		now = s.m.now() // the next attempt is a write of its own: expiries count from it
	}
}

// deleteRecord deletes the record with the id from the store, to
// completion even if the client goes away.
func (s *Session) deleteRecord(id string) error {
	ctx := s.beginDetached(OpDelete, 1)
	err := s.m.store.Delete(ctx, id)
	ctx.finish(OutcomeOK, err)
	if err != nil {
		return fmt.Errorf("%w: delete: %w", ErrStore, err)
	}
	return nil
}

// touch extends the idle deadline of a session the request only read, at
// most once per touch interval. A record whose expiry was computed with
// another idle timeout than the one in force (the configuration changed,
// or a record of format 1) is rewritten instead, so that the next load can
// tell when it was last active.
func (s *Session) touch(now time.Time) error {
	if s.m.clientSide {
		return s.touchSealed(now)
	}
	idle := s.m.idle(&s.rec)
	if idle.Milliseconds() != s.rec.idleUsed || s.rec.active == 0 {
		if idle == 0 && s.rec.idleUsed == 0 {
			return nil // format 1 without an idle timeout: nothing to extend
		}
		s.dirty = true
		if err := s.save(now); !errors.Is(err, ErrSessionGone) {
			return err
		}
		return nil // ended meanwhile: s.gone hands nothing back
	}
	if idle == 0 {
		return nil
	}
	exp := s.m.expiry(&s.rec, now)
	if exp.Sub(s.expiry) < s.m.touchInterval(idle) {
		return nil
	}
	ctx := s.begin(OpTouch, 1)
	found, err := s.m.store.Touch(ctx, s.id, exp, now)
	ctx.finish(pick(found, OutcomeFound, OutcomeNotFound), err)
	if err != nil {
		return fmt.Errorf("%w: touch: %w", ErrStore, err)
	}
	if !found {
		// Destroyed or renewed meanwhile: hand nothing back to the browser.
		s.gone = true
		return nil
	}
	s.expiry = exp
	s.cookie = true
	return nil
}

// touchSealed seals a client-side session again when a read can push its
// idle deadline forward by a touch interval, or when an older key opened
// it. A session sealed earlier in this request (by Update) is not sealed
// twice.
func (s *Session) touchSealed(now time.Time) error {
	idle := s.m.idle(&s.rec)
	if !s.reseal && (idle == 0 || s.m.expiry(&s.rec, now).Sub(s.expiry) < s.m.touchInterval(idle)) {
		return nil
	}
	return s.saveSealed(now, false)
}

// commit saves the session and sets the cookie on h. It runs once, just
// before the response headers are written (or the connection is hijacked).
func (s *Session) commit(h http.Header, status int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.committed {
		return nil
	}
	s.committed = true
	if !s.loaded {
		return nil
	}
	if s.err != nil {
		// The load failed: no cookie; fail closed unless the handler
		// answered with an error status itself.
		if s.m.cfg.ShouldSave(status) {
			return s.err
		}
		return nil
	}
	addVary(h)
	if s.failure != nil && s.m.cfg.ShouldSave(status) {
		return s.failure // a failure the handler answered with a success
	}
	if s.gone {
		return nil // ended by another request: hand nothing back
	}
	now := s.m.now()
	if !s.m.cfg.ShouldSave(status) {
		if s.destroyed && s.hadCookie {
			s.m.setCookie(h, "", time.Time{}, false, now)
		}
		return nil
	}
	if err := s.ctx.Err(); err != nil {
		// The client went away or a timeout (http.TimeoutHandler) ended
		// the request: this response never reaches the client, so saving
		// its changes would hand out nothing but orphans and changes the
		// client never saw confirmed. A Destroy has already taken effect.
		if s.dirty || s.renew != renewNone {
			s.m.cfg.Logger.WarnContext(s.ctx, "sessions: request ended before its response: changes not saved", "session", shortID(s.id), "err", err)
		}
		return nil
	}
	var err error
	switch {
	case s.renew != renewNone:
		err = s.commitRenew(now)
	case s.dirty:
		err = s.save(now)
	case s.exists:
		err = s.touch(now)
	}
	if err != nil {
		return err
	}
	switch {
	case s.gone:
	case s.exists && s.cookie:
		s.m.setCookie(h, s.token, s.expiry, s.m.browser(&s.rec), now)
		if s.m.cfg.secure {
			s.m.warnPlainHTTP(s.req)
		}
	case s.destroyed && !s.exists && s.hadCookie:
		s.m.setCookie(h, "", time.Time{}, false, now)
	}
	return nil
}

// shortID returns the prefix of a store ID that logs may show.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func addVary(h http.Header) {
	// "Vary" is already in canonical form: indexing the map directly skips
	// two canonicalizations (Values, Add) on every request that uses its
	// session.
	vals := h["Vary"]
	for _, v := range vals {
		if v == "Cookie" || v == "*" {
			return
		}
	}
	h["Vary"] = append(vals, "Cookie")
}

var errResponseReplaced = errors.New("sessions: response replaced by the error handler")

// errApplying is returned by an accessor called from a Modify function.
var errApplying = errors.New("sessions: session used from a Modify function")
