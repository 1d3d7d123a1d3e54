package redisstore

import (
	"context"
	"testing"
	"time"
)

// TestBoundReusesEarlierDeadline checks that a call context that already
// ends within the store's timeout is used as is, and that any other gets
// the store's timeout.
func TestBoundReusesEarlierDeadline(t *testing.T) {
	s := &Store{timeout: 3 * time.Second}

	early, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ctx, release := s.bound(early)
	release()
	if ctx != early {
		t.Error("a context ending before the store's timeout got a second deadline")
	}
	if early.Err() != nil {
		t.Error("releasing the reused context cancelled the caller's")
	}

	late, cancel2 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel2()
	for _, parent := range []context.Context{context.Background(), late} {
		ctx, release := s.bound(parent)
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > 3*time.Second {
			t.Errorf("bound(%v) deadline %v, want the 3s store timeout", parent, dl)
		}
		release()
		if ctx.Err() == nil {
			t.Error("release did not cancel the store's own context")
		}
	}
}
