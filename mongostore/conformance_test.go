package mongostore_test

import (
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/mongostore"
	"github.com/sessionkit/sessions/sessiontest"
)

var (
	_ sessions.Store          = (*mongostore.Store)(nil)
	_ sessions.ExpiredDeleter = (*mongostore.Store)(nil)
	_ sessions.OwnerIndex     = (*mongostore.Store)(nil)
)

// TestConformance runs the sessiontest suite, each case on a collection of
// its own. Expiries are BSON dates, exact to the millisecond, so Precision
// stays zero.
func TestConformance(t *testing.T) {
	t.Parallel()
	testClient(t) // skip the whole suite at once when the server is unreachable
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		s, _ := newStore(t, nil)
		return s
	}, nil)
}
