package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionkit/sessions/internal/pace"
	_ "modernc.org/sqlite"
)

// TestDeleteExpiredRests runs a sweep of three batches (10, 10 and 5
// expired rows, one live row) in a synctest bubble, where the database
// work itself takes no time and a write holding the Store's queue for
// 10 ms is the first batch's only cost. The sweep must then rest for that
// time times (1/SweepDutyCycle - 1) before the second batch, not start it
// a moment earlier, and must end the rest as soon as its context ends.
func TestDeleteExpiredRests(t *testing.T) {
	const hold = 10 * time.Millisecond // the first batch's wait for the queue
	tests := []struct {
		name     string
		duty     float64
		cancelAt time.Duration // after the first batch; 0: never
		wantRest time.Duration // between the first batch and the second
		wantN    int
		wantErr  error
	}{
		{"default duty cycle: rests three times as long as the batch", 0, 0, 3 * hold, 25, nil},
		{"duty cycle 0.5: rests as long as the batch", 0.5, 0, hold, 25, nil},
		{"duty cycle 0.2: rests four times as long", 0.2, 0, 4 * hold, 25, nil},
		{"duty cycle 1: no rest", 1, 0, 0, 25, nil},
		{"cancelled during a rest", 0.2, 15 * time.Millisecond, 4 * hold, 10, context.Canceled},
		{"cancelled during a capped rest", 1e-12, time.Hour, pace.MaxRest, 10, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "rest.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				s, err := New(db, &Options{SweepBatch: 10, SweepDutyCycle: tt.duty})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if err := s.CreateTable(ctx); err != nil {
					t.Fatal(err)
				}
				now := time.UnixMilli(1_750_000_000_000)
				for i := range 26 {
					expiry := now.Add(-time.Duration(i+1) * time.Millisecond)
					if i == 25 {
						expiry = now.Add(time.Hour)
					}
					if ok, err := s.Create(ctx, fmt.Sprintf("%064x", i), []byte("d"), expiry, "", expiry.Add(-time.Hour)); !ok || err != nil {
						t.Fatal(ok, err)
					}
				}
				left := func() int {
					t.Helper()
					var n int
					if err := db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil {
						t.Fatal(err)
					}
					return n
				}

				s.writes <- struct{}{} // a live write holds the queue
				var (
					n        int
					sweepErr error
					ended    time.Time
				)
				done := make(chan struct{})
				start := time.Now()
				go func() {
					defer close(done)
					n, sweepErr = s.DeleteExpired(ctx, now)
					ended = time.Now()
				}()
				time.Sleep(hold)
				<-s.writes
				synctest.Wait()
				if tt.wantRest == 0 {
					<-done
					if n != tt.wantN || sweepErr != nil || ended.Sub(start) != hold {
						t.Fatalf("DeleteExpired = %d, %v after %v; want %d, nil after %v (no rest)", n, sweepErr, ended.Sub(start), tt.wantN, hold)
					}
					if got := left(); got != 1 {
						t.Fatalf("%d rows left; want the live one", got)
					}
					return
				}
				if got := left(); got != 16 {
					t.Fatalf("%d rows left after the first batch; want 16", got)
				}
				if tt.cancelAt != 0 {
					time.Sleep(tt.cancelAt)
					cancel()
					<-done
					if n != tt.wantN || !errors.Is(sweepErr, tt.wantErr) || ended.Sub(start) != hold+tt.cancelAt {
						t.Fatalf("DeleteExpired = %d, %v after %v; want %d and %v at the cancellation, after %v", n, sweepErr, ended.Sub(start), tt.wantN, tt.wantErr, hold+tt.cancelAt)
					}
					if got := left(); got != 16 {
						t.Fatalf("%d rows left; want 16 (no batch after the cancellation)", got)
					}
					return
				}
				time.Sleep(tt.wantRest - time.Nanosecond)
				synctest.Wait()
				if got := left(); got != 16 {
					t.Fatalf("%d rows left %v into a rest of %v; want 16 (the second batch ran early)", got, tt.wantRest-time.Nanosecond, tt.wantRest)
				}
				<-done
				if n != tt.wantN || sweepErr != nil || ended.Sub(start) != hold+tt.wantRest {
					t.Fatalf("DeleteExpired = %d, %v after %v; want %d, nil after %v", n, sweepErr, ended.Sub(start), tt.wantN, hold+tt.wantRest)
				}
				if got := left(); got != 1 {
					t.Fatalf("%d rows left; want the live one", got)
				}
			})
		})
	}
}
