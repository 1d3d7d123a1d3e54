package memstore_test

import (
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/sessiontest"
)

func TestConformance(t *testing.T) {
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		return newStore(t, nil)
	}, nil)
}

// TestConformanceCapped runs the suite on a store with a size cap that the
// suite never reaches: the cap's bookkeeping must not change any behaviour.
func TestConformanceCapped(t *testing.T) {
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		return newStore(t, &memstore.Options{MaxEntries: 1 << 16})
	}, nil)
}
