package dynamostore_test

import (
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/dynamostore"
	"github.com/sessionkit/sessions/sessiontest"
)

var (
	_ sessions.Store          = (*dynamostore.Store)(nil)
	_ sessions.ExpiredDeleter = (*dynamostore.Store)(nil)
	_ sessions.OwnerIndex     = (*dynamostore.Store)(nil)
)

// TestConformance runs the sessiontest suite, each case on a table of its
// own. Expiries are exact to the millisecond, so Precision stays zero; the
// server's TTL is garbage collection only, so Advance stays nil.
func TestConformance(t *testing.T) {
	t.Parallel()
	testClient(t) // skip the whole suite at once when the server is unreachable
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		s, _, _ := newStore(t, nil)
		return s
	}, nil)
}
