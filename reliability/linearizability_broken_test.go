package reliability

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// The checker must catch broken stores: each test below records histories
// on a deliberately broken memstore until the checker rejects one (it must
// within linBrokenRounds), so that a pass of the real stores means
// something.

const (
	linBrokenRounds = 10
	// linBrokenOps is the size of their histories: proving a history not
	// linearizable means exhausting its orders, which grows fast with its
	// length.
	linBrokenOps = 200
)

// linNoVersionStore is a memstore whose Update has no version check: it
// overwrites whatever version the record has (a lost update).
type linNoVersionStore struct{ *memstore.Store }

func (s linNoVersionStore) Update(ctx context.Context, id string, _ int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	for {
		_, v, _, found, err := s.Store.Load(ctx, id, now)
		if err != nil || !found {
			return false, found, err
		}
		updated, found, err := s.Store.Update(ctx, id, v, data, expiry, owner, now)
		if err != nil || updated || !found {
			return updated, found, err
		}
	}
}

// linResurrectStore is a memstore whose Touch brings back a record that was
// deleted or retired: it re-creates it from the last data written.
type linResurrectStore struct {
	*memstore.Store
	mu   sync.Mutex
	last map[string]linLast
}

type linLast struct {
	data  []byte
	owner string
}

func (s *linResurrectStore) remember(id string, data []byte, expiry time.Time, owner string) {
	if expiry.UnixMilli() <= 1 {
		return // a renewal retiring the record
	}
	s.mu.Lock()
	s.last[id] = linLast{data: append([]byte(nil), data...), owner: owner}
	s.mu.Unlock()
}

func (s *linResurrectStore) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	ok, err := s.Store.Create(ctx, id, data, expiry, owner, now)
	if ok {
		s.remember(id, data, expiry, owner)
	}
	return ok, err
}

func (s *linResurrectStore) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	updated, found, err := s.Store.Update(ctx, id, version, data, expiry, owner, now)
	if updated {
		s.remember(id, data, expiry, owner)
	}
	return updated, found, err
}

func (s *linResurrectStore) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	found, err := s.Store.Touch(ctx, id, expiry, now)
	if err != nil || found {
		return found, err
	}
	s.mu.Lock()
	l, ok := s.last[id]
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	// The bug: "not found" taken for "evicted", and the record put back.
	_ = s.Store.Delete(ctx, id)
	return s.Store.Create(ctx, id, l.data, expiry, l.owner, now)
}

func linExpectCaught(t *testing.T, newStore func(tb testing.TB) sessions.Store, cfg linConfig) {
	t.Helper()
	linExpectCaughtOn(t, newStore, nil, cfg)
}

// linExpectCaughtOn is linExpectCaught; with cfg.window set, it runs two
// instances on newStoreOn(shared back).
func linExpectCaughtOn(t *testing.T, newStore func(tb testing.TB) sessions.Store, newStoreOn func(tb testing.TB, back sessions.Store) sessions.Store, cfg linConfig) {
	t.Helper()
	cfg.ops = min(cfg.ops, linBrokenOps)
	for round := 1; round <= linBrokenRounds; round++ {
		n := 1
		if cfg.window > 0 {
			n = 2
		}
		var shared sessions.Store
		if cfg.window > 0 {
			shared = linBaseMemstore(t)
		}
		urls := linServers(t, n, cfg.touch, func(int) sessions.Store {
			if shared != nil {
				return newStoreOn(t, shared)
			}
			return newStore(t)
		})
		h := linRun(t, cfg, urls)
		res, path := linCheck(t, h, cfg.window, t.TempDir())
		if res == porcupine.Illegal {
			if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
				t.Errorf("no visualization written: %v", err)
			}
			t.Logf("caught in round %d of %d: the history of %d operations is not linearizable", round, linBrokenRounds, len(h))
			return
		}
	}
	t.Fatalf("the broken store passed %d histories", linBrokenRounds)
}

func linBaseMemstore(tb testing.TB) *memstore.Store {
	tb.Helper()
	st, err := memstore.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func TestLinearizabilityCatchesNoVersionCheck(t *testing.T) {
	linExpectCaught(t, func(tb testing.TB) sessions.Store {
		return linNoVersionStore{linBaseMemstore(tb)}
	}, linDefaultConfig())
}

func TestLinearizabilityCatchesResurrectingTouch(t *testing.T) {
	linExpectCaught(t, func(tb testing.TB) sessions.Store {
		return &linResurrectStore{Store: linBaseMemstore(tb), last: map[string]linLast{}}
	}, linDefaultConfig())
}

// A cache whose staleness exceeds the window the model allows must be
// caught too: two instances with cachestore fronts of MaxAge 2s, checked
// against the window of linCacheMaxAge.
func TestLinearizabilityCatchesStaleCache(t *testing.T) {
	cfg := linDefaultConfig()
	// Pauses between a client's operations, longer than the window, so
	// that reads come after the other instance's writes by more than it.
	cfg.window, cfg.touch, cfg.pause = linCacheMaxAge, false, 3*linCacheMaxAge
	linExpectCaughtOn(t, nil, func(tb testing.TB, back sessions.Store) sessions.Store {
		return linCached(tb, back, 2*time.Second)
	}, cfg)
}

// The control of TestLinearizabilityCatchesStaleCache: the same traffic on
// fronts whose MaxAge is the window passes.
func TestLinearizabilityStaleCacheControl(t *testing.T) {
	cfg := linDefaultConfig()
	cfg.ops = min(cfg.ops, linBrokenOps)
	cfg.window, cfg.touch, cfg.pause = linCacheMaxAge, false, 3*linCacheMaxAge
	back := linBaseMemstore(t)
	urls := linServers(t, 2, cfg.touch, func(int) sessions.Store { return linCached(t, back, linCacheMaxAge) })
	h := linRun(t, cfg, urls)
	if res, _ := linCheck(t, h, cfg.window, ""); res != porcupine.Ok {
		t.Fatalf("history not linearizable within the cache's staleness of %v (%s)", cfg.window, res)
	}
}
