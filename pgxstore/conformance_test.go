package pgxstore_test

import (
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/pgxstore"
	"github.com/sessionkit/sessions/sessiontest"
)

var (
	_ sessions.Store          = (*pgxstore.Store)(nil)
	_ sessions.ExpiredDeleter = (*pgxstore.Store)(nil)
	_ sessions.OwnerIndex     = (*pgxstore.Store)(nil)
)

// TestConformance runs the sessiontest suite, each case on a table in a
// schema of its own. Expiries are exact to the millisecond, so Precision
// stays zero.
func TestConformance(t *testing.T) {
	t.Parallel()
	testPool(t) // skip the whole suite at once when PostgreSQL is unreachable
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		s, _, _ := newStore(t, nil)
		return s
	}, nil)
}

// partOpts is the partitioned layout the tests use: hour-wide partitions,
// created one hour ahead, so that the suite's writes two hours ahead (and
// the retirement's expiry at the epoch) also take the paths of a missing
// partition.
var partOpts = pgxstore.Options{Partition: time.Hour, PartitionAhead: time.Hour}

// TestConformancePartitioned runs the suite on the partitioned layout.
func TestConformancePartitioned(t *testing.T) {
	t.Parallel()
	testPool(t)
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		o := partOpts
		s, _, _ := newStore(t, &o)
		return s
	}, nil)
}
