// Package pace paces the sweeps of the SQL stores: after each batch of
// deletes, a sweep rests in proportion to how long the batch took, so that
// it spends a chosen share of its time (its duty cycle) deleting and backs
// off by itself when the database is slow.
package pace

import (
	"context"
	"time"
)

// MaxRest bounds a rest, so that a tiny duty cycle cannot overflow a
// time.Duration.
const MaxRest = 24 * time.Hour

// Rest waits after a batch that took took, so that batches take duty of
// the sweep's time, or until ctx ends, returning its error. A duty of 1 or
// more, or a batch that took no time, means no rest.
func Rest(ctx context.Context, took time.Duration, duty float64) error {
	if duty >= 1 || took <= 0 {
		return nil
	}
	d := MaxRest
	if f := float64(took) * (1/duty - 1); f < float64(MaxRest) {
		d = time.Duration(f)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
