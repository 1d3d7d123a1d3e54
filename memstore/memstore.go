// Package memstore is an in-memory [sessions.Store]: the reference
// implementation of the store contract, a test double, and a store for a
// single-process application that can lose its sessions on restart.
//
// A [Store] implements every clause of [sessions.Store] and both optional
// capabilities, [sessions.ExpiredDeleter] and [sessions.OwnerIndex]. It is
// checked with [github.com/sessionkit/sessions/sessiontest].
//
// # Memory
//
// A Store starts no goroutine. Expired records are removed three ways:
//
//   - by [Store.DeleteExpired], which the application runs periodically
//     (usually through the Manager's Sweep helper);
//   - opportunistically, by every Create, which examines the next three
//     records of a walk over the whole store and removes those expired at
//     the Create's now. A pass over N records thus takes at most N/3
//     Creates, so a store that nobody sweeps never holds more than twice
//     the largest number of records that have been live at once, however
//     long it runs;
//   - when a Create, Update or Touch finds the record it addresses expired.
//
// [Options.MaxEntries] optionally caps the number of records. A full store
// never evicts a live session: Create removes expired records to make room
// and otherwise fails with [ErrFull].
//
// Go maps do not shrink: after a peak, the memory of the index itself is
// kept until the Store is garbage collected.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sessionkit/sessions"
)

var (
	_ sessions.Store          = (*Store)(nil)
	_ sessions.ExpiredDeleter = (*Store)(nil)
	_ sessions.OwnerIndex     = (*Store)(nil)
)

// ErrFull is returned by [Store.Create] when the store holds
// [Options.MaxEntries] records that are all live.
var ErrFull = errors.New("memstore: store is full")

// errNegativeMax reports an invalid Options.MaxEntries.
var errNegativeMax = errors.New("memstore: Options.MaxEntries must not be negative")

const (
	// collectPerCreate is how many records each Create examines for
	// opportunistic removal of expired records. A pass over N records takes
	// N/k Creates and keeps only records live at pass start (at most L, the
	// peak live count) plus the N/k created meanwhile, so passes start with
	// at most L*k/(k-1) records and the store never exceeds L*(k+1)/(k-1):
	// twice the peak live count for k = 3.
	collectPerCreate = 3

	// sweepBatch is how many records DeleteExpired examines per lock hold.
	sweepBatch = 1024
)

// Options configures a [Store]. The zero value (or a nil *Options) gives a
// store without a size cap.
type Options struct {
	// MaxEntries caps the number of records the store holds, counting expired
	// records not removed yet. When the store is full, Create removes expired
	// records to make room; if every record is live, Create fails with
	// [ErrFull] (live sessions are never evicted). Zero means no cap;
	// negative values are invalid.
	MaxEntries int
}

// Store is an in-memory session store. It implements [sessions.Store],
// [sessions.ExpiredDeleter] and [sessions.OwnerIndex].
//
// The zero value is an empty store without a size cap, ready to use; [New]
// returns one configured by [Options]. A Store must not be copied after first
// use. All methods are safe for concurrent use by multiple goroutines.
//
// A Store copies the data passed to Create and Update before returning, and
// Load returns a fresh copy that the caller may modify: no slice is shared
// between the store and its callers.
//
// Expiries are compared with the now argument of each call, never with the
// system clock: a record is live while now is before its expiry.
type Store struct {
	mu      sync.RWMutex
	records map[string]*record
	// all holds every record, in no order; each record knows its index.
	// Removal swaps the last element into the hole, so all stays dense and
	// cleanup can walk it by position.
	all []*record
	// owners maps a non-empty owner to the set of ids it owns.
	owners map[string]map[string]struct{}
	// cursor is the position of the next record opportunistic cleanup
	// examines; it walks all downwards and wraps around.
	cursor int

	maxEntries int
	// floor, when floorKnown, is no later than the expiry of any record.
	// Tracked only with maxEntries, so a full store can tell cheaply that it
	// holds no expired record.
	floor      time.Time
	floorKnown bool
}

type record struct {
	id      string
	data    []byte
	version int64
	expiry  time.Time
	owner   string
	pos     int // index in Store.all
}

// New returns an empty Store configured by opts; nil opts means the zero
// Options. It fails only if opts is invalid.
func New(opts *Options) (*Store, error) {
	s := &Store{}
	if opts != nil {
		if opts.MaxEntries < 0 {
			return nil, fmt.Errorf("%w (got %d)", errNegativeMax, opts.MaxEntries)
		}
		s.maxEntries = opts.MaxEntries
	}
	return s, nil
}

// Len returns the number of records the store holds, including expired
// records that have not been removed yet.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.records)
}

// live reports whether r is live at now.
func live(r *record, now time.Time) bool { return now.Before(r.expiry) }

// Create stores a new record with version 1 unless a live record has the id;
// see [sessions.Store]. It fails with [ErrFull] when a size cap is set and
// every record is live.
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memstore: create: %w", err)
	}
	buf := clone(data)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records == nil {
		s.records = make(map[string]*record)
		s.owners = make(map[string]map[string]struct{})
	}
	s.collect(now, collectPerCreate)

	if r := s.records[id]; r != nil {
		if live(r, now) {
			return false, nil
		}
		// An expired record is absent: replace it in place.
		s.setOwner(r, owner)
		r.data, r.version, r.expiry = buf, 1, expiry
		s.lowerFloor(expiry)
		return true, nil
	}
	if s.maxEntries > 0 && len(s.records) >= s.maxEntries && !s.reclaim(now) {
		return false, ErrFull
	}
	r := &record{id: id, data: buf, version: 1, expiry: expiry, pos: len(s.all)}
	s.records[id] = r
	s.all = append(s.all, r)
	s.setOwner(r, owner)
	s.lowerFloor(expiry)
	return true, nil
}

// Load returns a copy of the live record with the id; see [sessions.Store].
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("memstore: load: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.records[id]
	if r == nil || !live(r, now) {
		return nil, 0, time.Time{}, false, nil
	}
	return clone(r.data), r.version, r.expiry, true, nil
}

// Update replaces the data, expiry and owner of the live record with the id
// if its version matches; see [sessions.Store].
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (updated, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, false, fmt.Errorf("memstore: update: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[id]
	if r == nil {
		return false, false, nil
	}
	if !live(r, now) {
		s.remove(r)
		return false, false, nil
	}
	if r.version != version {
		return false, true, nil
	}
	r.data = refill(r.data, data)
	r.version++
	r.expiry = expiry
	s.setOwner(r, owner)
	s.lowerFloor(expiry)
	return true, true, nil
}

// Touch moves the expiry of the live record with the id later, never
// earlier; see [sessions.Store].
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memstore: touch: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[id]
	if r == nil {
		return false, nil
	}
	if !live(r, now) {
		s.remove(r)
		return false, nil
	}
	if expiry.After(r.expiry) {
		r.expiry = expiry
	}
	return true, nil
}

// Delete removes the record with the id, if any; see [sessions.Store].
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.records[id]; r != nil {
		s.remove(r)
	}
	return nil
}

// DeleteExpired removes every record whose expiry is at or before now and
// returns how many it removed; see [sessions.ExpiredDeleter]. It holds the
// lock for at most a fixed number of records at a time, and checks ctx
// between batches: when ctx is done it returns the count so far and an error
// wrapping ctx.Err().
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: delete expired: %w", err)
	}
	deleted := 0
	// Walk positions downwards. Removal moves the last record into the
	// hole, and the last record has either been examined already or was
	// added after the walk began, so every record present throughout the
	// call is examined once, even when the lock is released between batches.
	s.mu.RLock()
	i := len(s.all) - 1
	s.mu.RUnlock()
	for i >= 0 {
		if err := ctx.Err(); err != nil {
			return deleted, fmt.Errorf("memstore: delete expired: %w", err)
		}
		s.mu.Lock()
		i = min(i, len(s.all)-1)
		for n := 0; n < sweepBatch && i >= 0; n, i = n+1, i-1 {
			if r := s.all[i]; !live(r, now) {
				s.remove(r)
				deleted++
			}
		}
		s.mu.Unlock()
	}
	return deleted, nil
}

// ListOwner returns the ids of the records owned by owner that are live at
// now; see [sessions.OwnerIndex]. The empty owner yields no ids.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list owner: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.owners[owner]
	if len(set) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		if live(s.records[id], now) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// DeleteOwner removes every record owned by owner and returns how many of
// them were live at now; see [sessions.OwnerIndex]. The empty owner owns
// nothing.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: delete owner: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	deleted := 0
	for id := range s.owners[owner] {
		r := s.records[id]
		if live(r, now) {
			deleted++
		}
		s.remove(r) // deletes id from the set being ranged over, which Go allows
	}
	return deleted, nil
}

// setOwner moves r into owner's set. The caller holds s.mu for writing.
func (s *Store) setOwner(r *record, owner string) {
	if r.owner == owner {
		return
	}
	s.unindex(r.id, r.owner)
	r.owner = owner
	s.index(r.id, owner)
}

func (s *Store) index(id, owner string) {
	if owner == "" {
		return
	}
	set := s.owners[owner]
	if set == nil {
		set = make(map[string]struct{}, 1)
		s.owners[owner] = set
	}
	set[id] = struct{}{}
}

func (s *Store) unindex(id, owner string) {
	if owner == "" {
		return
	}
	set := s.owners[owner]
	delete(set, id)
	if len(set) == 0 {
		delete(s.owners, owner)
	}
}

// remove deletes r from every index. The caller holds s.mu for writing.
func (s *Store) remove(r *record) {
	s.unindex(r.id, r.owner)
	delete(s.records, r.id)
	last := len(s.all) - 1
	moved := s.all[last]
	s.all[r.pos] = moved
	moved.pos = r.pos
	s.all[last] = nil
	s.all = s.all[:last]
}

// collect examines up to n records at the cursor and removes those expired
// at now. The caller holds s.mu for writing.
//
// The cursor walks all downwards and wraps to the end. Like DeleteExpired's
// walk, it examines within one pass every record present when the pass
// began, so a pass over N records takes at most N/n Creates.
func (s *Store) collect(now time.Time, n int) {
	for ; n > 0 && len(s.all) > 0; n-- {
		if s.cursor < 0 || s.cursor >= len(s.all) {
			s.cursor = len(s.all) - 1
		}
		if r := s.all[s.cursor]; !live(r, now) {
			s.remove(r)
		}
		s.cursor--
	}
}

// reclaim makes room in a full store by removing expired records. It
// reports whether it removed any. The caller holds s.mu for writing.
//
// It continues the cursor walk until it removes a record or has examined
// every record; in the second case it records the earliest expiry, so that
// later Creates fail at once until that expiry is reached.
func (s *Store) reclaim(now time.Time) bool {
	if s.floorKnown && now.Before(s.floor) {
		return false // no record can have expired yet
	}
	var earliest time.Time
	for n := len(s.all); n > 0; n-- {
		if s.cursor < 0 || s.cursor >= len(s.all) {
			s.cursor = len(s.all) - 1
		}
		r := s.all[s.cursor]
		s.cursor--
		if !live(r, now) {
			s.remove(r)
			s.floorKnown = false
			return true
		}
		if earliest.IsZero() || r.expiry.Before(earliest) {
			earliest = r.expiry
		}
	}
	s.floor, s.floorKnown = earliest, len(s.all) > 0
	return false
}

// lowerFloor keeps floor no later than expiry. The caller holds s.mu for
// writing.
func (s *Store) lowerFloor(expiry time.Time) {
	if s.floorKnown && expiry.Before(s.floor) {
		s.floor = expiry
	}
}

// clone returns a copy of b that is never nil.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// refill returns b with its contents replaced by a copy of data, reusing
// b's memory when it fits and is not much larger than needed.
func refill(b, data []byte) []byte {
	if len(data) <= cap(b) && cap(b) <= 2*len(data)+256 {
		b = b[:len(data)]
		copy(b, data)
		return b
	}
	return clone(data)
}
