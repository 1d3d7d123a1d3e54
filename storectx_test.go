package sessions

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestCallContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &Manager{cfg: config{Options: Options{StoreTimeout: time.Second}}}
		type key struct{}
		parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
		defer cancelParent()

		// Without Done: Err follows the clock, values pass through.
		ctx := m.begin(parent, OpLoad, 1)
		release := ctx.release
		if d, ok := ctx.Deadline(); !ok || !d.Equal(time.Now().Add(time.Second)) {
			t.Errorf("Deadline = %v, %v", d, ok)
		}
		if ctx.Value(key{}) != "v" || ctx.Err() != nil {
			t.Fatalf("fresh context: value %v, err %v", ctx.Value(key{}), ctx.Err())
		}
		time.Sleep(time.Second)
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("after the deadline Err = %v", ctx.Err())
		}
		release()

		// With Done: a real timer closes it at the deadline.
		ctx = m.begin(parent, OpLoad, 1)
		release = ctx.release
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Errorf("Err after Done = %v", ctx.Err())
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Done not closed at the deadline")
		}
		release()

		// A derived context is cancelled with it, and by the parent.
		ctx = m.begin(parent, OpLoad, 1)
		release = ctx.release
		child, cancelChild := context.WithCancel(ctx)
		defer cancelChild()
		cancelParent()
		select {
		case <-child.Done():
		case <-time.After(time.Millisecond):
			t.Fatal("cancelling the request did not reach a derived context")
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err after the parent's cancel = %v", ctx.Err())
		}
		release()

		// Released before Done: Done is closed at once.
		ctx = m.begin(context.Background(), OpLoad, 1)
		release = ctx.release
		release()
		select {
		case <-ctx.Done():
		default:
			t.Error("Done of a released context is open")
		}
		if ctx.Err() == nil {
			t.Error("released context has no error")
		}
	})
}

func TestCallContextDeadlineFollowsParent(t *testing.T) {
	m := &Manager{cfg: config{Options: Options{StoreTimeout: time.Hour}}}
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx := m.begin(parent, OpLoad, 1)
	release := ctx.release
	defer release()
	pd, _ := parent.Deadline()
	if d, _ := ctx.Deadline(); !d.Equal(pd) {
		t.Errorf("Deadline = %v, want the parent's earlier %v", d, pd)
	}
}
