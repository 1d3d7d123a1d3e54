package reliability

import (
	"testing"
	"time"

	"github.com/sessionkit/sessions"
)

// TestCheckOverruns shows the drills' bound on failed store calls can
// fail: a call that ran 1.5 s past its deadline while the process ran
// breaks it; the same call is accepted when the scheduler probe was
// stalled for most of that time (the machine's delay, reported apart).
func TestCheckOverruns(t *testing.T) {
	t0 := time.Now()
	deadline := t0.Add(storeTimeout)
	calls := []overrun{{start: t0, d: storeTimeout + 1500*time.Millisecond, op: sessions.OpLoad}}

	idle := &schedProbe{}
	ops := map[sessions.StoreOp]int{}
	longest, slow := checkOverruns(idle, calls, ops)
	if slow != 1 || ops[sessions.OpLoad] != 1 || longest != calls[0].d {
		t.Errorf("no stalls: slow %d (%v), longest %v; want the call counted as too slow", slow, ops, longest)
	}

	// Stalls covering 1.2 s of the 1.5 s overrun, and one before the
	// deadline that must not count.
	starved := &schedProbe{stalls: []stall{
		{from: t0.Add(100 * time.Millisecond), to: t0.Add(900 * time.Millisecond)},
		{from: deadline.Add(100 * time.Millisecond), to: deadline.Add(700 * time.Millisecond)},
		{from: deadline.Add(800 * time.Millisecond), to: deadline.Add(1400 * time.Millisecond)},
	}}
	if got := starved.stalled(deadline, t0.Add(calls[0].d)); got != 1200*time.Millisecond {
		t.Errorf("stalled = %v, want 1.2s", got)
	}
	ops = map[sessions.StoreOp]int{}
	longest, slow = checkOverruns(starved, calls, ops)
	if slow != 0 || longest != storeTimeout+300*time.Millisecond {
		t.Errorf("starved: slow %d, longest %v; want 0 and %v", slow, longest, storeTimeout+300*time.Millisecond)
	}
}
