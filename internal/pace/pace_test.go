package pace

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestRest checks, on synctest's clock, how long DeleteExpired rests after
// a batch: the batch's duration times (1/duty - 1), capped at MaxRest, and
// no longer than until its context ends.
func TestRest(t *testing.T) {
	tests := []struct {
		name     string
		took     time.Duration
		duty     float64
		cancelAt time.Duration // 0: never
		want     time.Duration
		wantErr  error
	}{
		{"half: as long as the batch", 40 * time.Millisecond, 0.5, 0, 40 * time.Millisecond, nil},
		{"a fifth: four times as long", 40 * time.Millisecond, 0.2, 0, 160 * time.Millisecond, nil},
		{"one: no rest", 40 * time.Millisecond, 1, 0, 0, nil},
		{"a batch that took no time: no rest", 0, 0.5, 0, 0, nil},
		{"a tiny duty cycle: capped", time.Second, 1e-12, 0, MaxRest, nil},
		{"cancelled during the rest", 40 * time.Millisecond, 0.2, 25 * time.Millisecond, 25 * time.Millisecond, context.Canceled},
		{"cancelled during a capped rest", time.Second, 1e-12, time.Hour, time.Hour, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tt.cancelAt != 0 {
					time.AfterFunc(tt.cancelAt, cancel)
				}
				start := time.Now()
				err := Rest(ctx, tt.took, tt.duty)
				if got := time.Since(start); got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Fatalf("Rest(%v, %v) = %v after %v; want %v after %v", tt.took, tt.duty, err, got, tt.wantErr, tt.want)
				}
			})
		})
	}
}
