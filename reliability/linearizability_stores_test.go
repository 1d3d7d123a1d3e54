package reliability

import (
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// linMemstore returns a fresh memstore.
func linMemstore(tb testing.TB) sessions.Store {
	tb.Helper()
	st, err := memstore.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func TestLinearizabilityMemstore(t *testing.T) {
	linExpect(t, linMemstore(t), linDefaultConfig())
}
