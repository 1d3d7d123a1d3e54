package sessions

import (
	"testing"
	"time"
)

// TestNowIsTruncatedMillisecond checks that Manager.now's shortcut is
// time.Now().Truncate(time.Millisecond) exactly (same instant, no
// monotonic reading, the local zone).
func TestNowIsTruncatedMillisecond(t *testing.T) {
	m := &Manager{}
	for range 100 {
		before := time.Now().Truncate(time.Millisecond)
		got := m.now()
		after := time.Now().Truncate(time.Millisecond)
		if got.Before(before) || got.After(after) {
			t.Fatalf("now() = %v, not within [%v, %v]", got, before, after)
		}
		if want := got.Truncate(time.Millisecond); got != want || got.Location() != time.Local {
			t.Fatalf("now() = %#v, want the representation of %#v", got, want)
		}
		if got.String() != got.Round(0).String() {
			t.Fatalf("now() = %v carries a monotonic reading", got)
		}
	}
}
