package mysqlstore_test

import (
	"database/sql"
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/mysqlstore"
	"github.com/sessionkit/sessions/sessiontest"
)

var (
	_ sessions.Store          = (*mysqlstore.Store)(nil)
	_ sessions.ExpiredDeleter = (*mysqlstore.Store)(nil)
	_ sessions.OwnerIndex     = (*mysqlstore.Store)(nil)
)

// TestConformance runs the sessiontest suite under every connection
// variant (the store promises to need no DSN parameter or sql_mode), each
// case on a table of its own. Expiries are exact to the millisecond, so
// Precision stays zero.
func TestConformance(t *testing.T) {
	t.Parallel()
	testDB(t) // skip the whole suite at once when MySQL is unreachable
	forEachVariant(t, func(t *testing.T, db *sql.DB) {
		sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
			s, _ := newStore(t, db, nil)
			return s
		}, nil)
	})
}
