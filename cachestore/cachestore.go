// Package cachestore layers two [sessions.Store] implementations: a fast
// front (usually a [github.com/sessionkit/sessions/memstore] in the same
// process) that caches records of a slower, shared back (Redis, SQL). The
// back is the source of truth: it decides versions, conflicts and expiry.
//
// # Reads and writes
//
// Load asks the front first. On a miss, or when the front fails (logged,
// treated as a miss), it loads from the back and fills the front with the
// record, cached until min(record expiry, now+[Options.MaxAge]). A front
// failure never fails a Load, and a failing fill is only logged.
//
// Create, Update, Touch and Delete go to the back first and then drop the
// front's entry for the id, whatever the back answered (written, changed,
// gone): the next Load refills it. When that drop fails:
//
//   - Delete and Update fail with an error (the back has already applied
//     them), because a stale front entry could otherwise keep serving a
//     logged-out or superseded session from this process;
//   - Create and Touch only log it: a new id has no cached entry unless the
//     id was reused, and a stale entry after Touch reports an earlier expiry
//     but the same data and version.
//
// Within one process the layering is consistent: a fill that raced with a
// write or delete of the same id is discarded, so this Store never serves
// data older than its own last write.
//
// # Staleness
//
// Other processes write the back without telling this front. A session
// changed, renewed, touched or deleted elsewhere (another instance's
// logout, for example) is therefore still served by this process from its
// front for at most MaxAge after the change: MaxAge is the bound on how
// long a logout elsewhere can go unnoticed here, and the reason its default
// is short (one second). A stale version is harmless to data (an Update
// based on it fails at the back as "changed", and the Manager re-applies its
// changes on the fresh record); a stale existence is the hazard, bounded by
// MaxAge, and only for reads: no write can bring a session back. A
// renewal, in particular, retires the old record with an Update that the
// back checks, so a session logged out on another instance is never
// renewed back to life here, however stale the front (the renewal fails
// with [sessions.ErrSessionGone]).
//
// # Capabilities
//
// [New] returns a store that implements [sessions.OwnerIndex] and
// [sessions.ExpiredDeleter] exactly when the back does, so the Manager's
// capability detection (a type assertion) stays honest and "log out
// everywhere" works through the cache with no extra step. ListOwner and
// DeleteExpired go to the back. DeleteOwner lists the owner's sessions at the back, deletes them
// there, then drops each listed id from this front (failing if a drop
// fails); other processes' fronts keep serving them for at most MaxAge.
package cachestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/sessionkit/sessions"
)

// DefaultMaxAge is the default [Options.MaxAge].
const DefaultMaxAge = time.Second

// Errors returned by [New].
var (
	ErrNilStore       = errors.New("cachestore: nil front or back store")
	ErrNegativeMaxAge = errors.New("cachestore: negative MaxAge")
)

// Options configures a [Store]. The zero value (or a nil *Options) gives the
// documented defaults.
type Options struct {
	// MaxAge is the longest the front may answer for a record without the
	// back being consulted: front entries expire at min(record expiry,
	// fill time + MaxAge). It bounds how long a change made through another
	// process (a logout included) can go unseen here. The default is one
	// second; negative is an error.
	MaxAge time.Duration

	// Logger receives front failures that do not fail the operation. The
	// default is [slog.Default] at the time of logging. Messages carry the
	// first 8 characters of the (already hashed) id, never the whole id.
	Logger *slog.Logger
}

// Store is a two-tier [sessions.Store]. Create it with [New]; the zero value
// is not usable. A Store is safe for concurrent use; it starts no goroutines.
type Store struct {
	front, back sessions.Store
	maxAge      time.Duration
	logger      *slog.Logger
	seed        maphash.Seed
	stripes     [stripeCount]stripe
}

// stripeCount is the number of invalidation stripes.
const stripeCount = 256

// stripe orders fills against invalidations of the ids that hash to it: gen
// counts invalidations, and a fill whose load started before one is dropped.
type stripe struct {
	mu  sync.Mutex
	gen uint64
}

var _ sessions.Store = (*Store)(nil)

// New returns a [*Store] with front caching back, as a [sessions.Store]
// that has exactly the back store's optional capabilities (see
// Capabilities in the package doc). opts may be nil. The front
// should be dedicated to this Store: it holds encoded entries (the back's
// version and expiry, then the data) under the same ids, without owners.
func New(front, back sessions.Store, opts *Options) (sessions.Store, error) {
	if front == nil || back == nil {
		return nil, ErrNilStore
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MaxAge < 0:
		return nil, fmt.Errorf("%w: %v", ErrNegativeMaxAge, o.MaxAge)
	case o.MaxAge == 0:
		o.MaxAge = DefaultMaxAge
	}
	s := &Store{front: front, back: back, maxAge: o.MaxAge, logger: o.Logger, seed: maphash.MakeSeed()}
	return s.withBackCapabilities(), nil
}

func (s *Store) log() *slog.Logger {
	if s.logger != nil {
		return s.logger
	}
	return slog.Default()
}

// short returns a loggable prefix of an id.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func (s *Store) stripe(id string) *stripe {
	return &s.stripes[maphash.String(s.seed, id)%stripeCount]
}

// generation returns the stripe's invalidation count.
func (st *stripe) generation() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.gen
}

// Front entry layout: format byte 0x01, the back's version (int64), the
// record's expiry as Unix seconds (int64) and nanoseconds (uint32), all
// big-endian, then the data.
const (
	entryFormat = 0x01
	entryHeader = 1 + 8 + 8 + 4
)

func encodeEntry(version int64, expiry time.Time, data []byte) []byte {
	b := make([]byte, entryHeader+len(data))
	b[0] = entryFormat
	binary.BigEndian.PutUint64(b[1:], uint64(version))
	binary.BigEndian.PutUint64(b[9:], uint64(expiry.Unix()))
	binary.BigEndian.PutUint32(b[17:], uint32(expiry.Nanosecond()))
	copy(b[entryHeader:], data)
	return b
}

var errBadEntry = errors.New("cachestore: malformed front entry")

func decodeEntry(b []byte) (data []byte, version int64, expiry time.Time, err error) {
	if len(b) < entryHeader || b[0] != entryFormat {
		return nil, 0, time.Time{}, errBadEntry
	}
	version = int64(binary.BigEndian.Uint64(b[1:]))
	sec := int64(binary.BigEndian.Uint64(b[9:]))
	nsec := int64(binary.BigEndian.Uint32(b[17:]))
	if nsec >= 1e9 {
		return nil, 0, time.Time{}, errBadEntry
	}
	return b[entryHeader:], version, time.Unix(sec, nsec), nil
}

// Load implements [sessions.Store]: front first, then the back, filling the
// front. Only a back failure is an error.
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	b, _, _, found, err := s.front.Load(ctx, id, now)
	switch {
	case err != nil:
		s.log().WarnContext(ctx, "cachestore: front load failed; using the back", "id", short(id), "err", err)
	case found:
		data, version, expiry, derr := decodeEntry(b)
		if derr == nil {
			return data, version, expiry, true, nil
		}
		s.log().WarnContext(ctx, "cachestore: front entry unreadable; using the back", "id", short(id), "err", derr)
	}

	st := s.stripe(id)
	gen := st.generation()
	data, version, expiry, found, err := s.back.Load(ctx, id, now)
	if err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("cachestore: load: %w", err)
	}
	if !found {
		return nil, 0, time.Time{}, false, nil
	}
	s.fill(ctx, st, gen, id, data, version, expiry, now)
	return data, version, expiry, true, nil
}

// fill caches a record loaded from the back, unless an invalidation of its
// stripe happened since the load started (gen).
func (s *Store) fill(ctx context.Context, st *stripe, gen uint64, id string, data []byte, version int64, expiry, now time.Time) {
	until := now.Add(s.maxAge)
	if expiry.Before(until) {
		until = expiry
	}
	if !until.After(now) {
		return
	}
	entry := encodeEntry(version, expiry, data)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gen != gen {
		return
	}
	if _, err := s.front.Create(ctx, id, entry, until, "", now); err != nil {
		s.log().WarnContext(ctx, "cachestore: front fill failed", "id", short(id), "err", err)
	}
}

// invalidate drops the front's entry for id and discards fills in flight.
func (s *Store) invalidate(ctx context.Context, id string) error {
	st := s.stripe(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.gen++
	return s.front.Delete(ctx, id)
}

// Create implements [sessions.Store]: the back decides; then the front's
// entry for the id, if any, is dropped (a failure is logged).
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	created, err := s.back.Create(ctx, id, data, expiry, owner, now)
	if err != nil {
		return false, fmt.Errorf("cachestore: create: %w", err)
	}
	if created {
		if err := s.invalidate(ctx, id); err != nil {
			s.log().WarnContext(ctx, "cachestore: front delete after create failed", "id", short(id), "err", err)
		}
	}
	return created, nil
}

// Update implements [sessions.Store]: the back decides; then the front's
// entry is dropped, and if that fails Update returns an error even though
// the back was written.
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	updated, found, err := s.back.Update(ctx, id, version, data, expiry, owner, now)
	if err != nil {
		// The outcome is unknown: drop the entry anyway, best effort.
		if ierr := s.invalidate(ctx, id); ierr != nil {
			s.log().WarnContext(ctx, "cachestore: front delete after failed update failed", "id", short(id), "err", ierr)
		}
		return false, false, fmt.Errorf("cachestore: update: %w", err)
	}
	if err := s.invalidate(ctx, id); err != nil {
		return false, false, fmt.Errorf("cachestore: update: front delete (back updated=%v found=%v): %w", updated, found, err)
	}
	return updated, found, nil
}

// Touch implements [sessions.Store]: the back decides; then the front's
// entry is dropped (a failure is logged).
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	found, err := s.back.Touch(ctx, id, expiry, now)
	if err != nil {
		return false, fmt.Errorf("cachestore: touch: %w", err)
	}
	if err := s.invalidate(ctx, id); err != nil {
		s.log().WarnContext(ctx, "cachestore: front delete after touch failed", "id", short(id), "err", err)
	}
	return found, nil
}

// Delete implements [sessions.Store]: the back first, then the front; a
// failure of either fails the call.
func (s *Store) Delete(ctx context.Context, id string) error {
	berr := s.back.Delete(ctx, id)
	ferr := s.invalidate(ctx, id)
	switch {
	case berr != nil:
		return fmt.Errorf("cachestore: delete: %w", berr)
	case ferr != nil:
		return fmt.Errorf("cachestore: delete: front: %w", ferr)
	}
	return nil
}

// WithBackCapabilities returns the store [New] returns.
//
// Deprecated: New's result already has the back store's capabilities.
func (s *Store) WithBackCapabilities() sessions.Store { return s.withBackCapabilities() }

// withBackCapabilities returns s as a [sessions.Store] that also implements
// [sessions.OwnerIndex] if the back does, and [sessions.ExpiredDeleter] if
// the back does.
func (s *Store) withBackCapabilities() sessions.Store {
	_, owners := s.back.(sessions.OwnerIndex)
	_, sweeps := s.back.(sessions.ExpiredDeleter)
	switch {
	case owners && sweeps:
		return ownerSweepStore{s}
	case owners:
		return ownerStore{s}
	case sweeps:
		return sweepStore{s}
	}
	return s
}

func (s *Store) listOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	ids, err := s.back.(sessions.OwnerIndex).ListOwner(ctx, owner, now)
	if err != nil {
		return nil, fmt.Errorf("cachestore: list owner: %w", err)
	}
	return ids, nil
}

func (s *Store) deleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	idx := s.back.(sessions.OwnerIndex)
	ids, err := idx.ListOwner(ctx, owner, now)
	if err != nil {
		return 0, fmt.Errorf("cachestore: delete owner: %w", err)
	}
	n, err := idx.DeleteOwner(ctx, owner, now)
	if err != nil {
		return n, fmt.Errorf("cachestore: delete owner: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := s.invalidate(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("cachestore: delete owner: front: %w", err)
	}
	return n, nil
}

func (s *Store) deleteExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := s.back.(sessions.ExpiredDeleter).DeleteExpired(ctx, now)
	if err != nil {
		return n, fmt.Errorf("cachestore: delete expired: %w", err)
	}
	return n, nil
}

// ownerStore adds the back's OwnerIndex.
type ownerStore struct{ *Store }

func (o ownerStore) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	return o.listOwner(ctx, owner, now)
}

func (o ownerStore) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	return o.deleteOwner(ctx, owner, now)
}

// sweepStore adds the back's ExpiredDeleter.
type sweepStore struct{ *Store }

func (o sweepStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	return o.deleteExpired(ctx, now)
}

// ownerSweepStore adds both.
type ownerSweepStore struct{ *Store }

func (o ownerSweepStore) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	return o.listOwner(ctx, owner, now)
}

func (o ownerSweepStore) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	return o.deleteOwner(ctx, owner, now)
}

func (o ownerSweepStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	return o.deleteExpired(ctx, now)
}

var (
	_ sessions.OwnerIndex     = ownerStore{}
	_ sessions.ExpiredDeleter = sweepStore{}
	_ sessions.OwnerIndex     = ownerSweepStore{}
	_ sessions.ExpiredDeleter = ownerSweepStore{}
)
