package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessionkit/sessions"
)

// TestReadIncrAllocations bounds the allocations of the two requests most
// sessions serve, a read of an int and an increment of it on the memory
// store, over those of a bare handler: the int neither goes through
// encoding/json (decodeValue, encodeValue) nor gets a context allocated
// for the save (Session.call1).
func TestReadIncrAllocations(t *testing.T) {
	m := mustNew(t, mem(), nil)
	n := sessions.Key[int]("n")
	read := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, _, err := n.Get(sessions.FromContext(r.Context())); err != nil || v == 0 {
			t.Error("read failed")
		}
	}))
	incr := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := n.Update(sessions.FromContext(r.Context()), func(v int) int { return v + 1 }); err != nil {
			t.Error(err)
		}
	}))
	seed := httptest.NewRecorder()
	incr.ServeHTTP(seed, httptest.NewRequest("GET", "/", nil))
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(seed.Result().Cookies()[0])
	w := httptest.NewRecorder()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	base := testing.AllocsPerRun(200, func() { bare.ServeHTTP(w, r) })
	for _, c := range []struct {
		name string
		h    http.Handler
		max  float64
	}{{"read", read, 9}, {"incr", incr, 11}} {
		got := testing.AllocsPerRun(200, func() { clear(w.Header()); c.h.ServeHTTP(w, r) }) - base
		t.Logf("%s: %v allocations over a bare handler", c.name, got)
		if got > c.max {
			t.Errorf("%s allocates %v times more than a bare handler, want at most %v", c.name, got, c.max)
		}
	}
}
