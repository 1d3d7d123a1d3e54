package boltstore_test

import (
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/boltstore"
	"github.com/sessionkit/sessions/sessiontest"
)

var (
	_ sessions.Store          = (*boltstore.Store)(nil)
	_ sessions.ExpiredDeleter = (*boltstore.Store)(nil)
	_ sessions.OwnerIndex     = (*boltstore.Store)(nil)
)

// TestConformance runs the sessiontest suite, each case on a file of its
// own, with the default options (fsync on every commit). Expiries are
// exact to the millisecond, so Precision stays zero.
func TestConformance(t *testing.T) {
	t.Parallel()
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		return newStore(t, nil)
	}, nil)
}

// TestConformanceSmallBatchesNoSync runs the suite again with a batch of 7
// records, so that DeleteExpired needs many transactions, and without
// fsync (which changes when data reaches the disk, nothing else).
func TestConformanceSmallBatchesNoSync(t *testing.T) {
	t.Parallel()
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		return newStore(t, &boltstore.Options{SweepBatch: 7, UnsafeNoSync: true})
	}, nil)
}
