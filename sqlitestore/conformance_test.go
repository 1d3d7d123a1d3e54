package sqlitestore_test

import (
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/sessiontest"
)

// TestConformance runs the sessiontest suite; every case gets its own
// database file in its own temporary directory.
func TestConformance(t *testing.T) {
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		s, _ := newStore(t, nil)
		return s
	}, nil)
}
