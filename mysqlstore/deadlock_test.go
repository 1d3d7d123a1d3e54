package mysqlstore_test

import (
	"context"
	"testing"
	"time"
)

// TestDeadlockVictimIsRetried provokes a real InnoDB deadlock in which the
// store's statement is the victim, and checks that the store re-runs it
// instead of failing. DeleteOwner reaches rows through owner_idx and locks
// r1 then r2; a transaction that holds r2 and then asks for r1 closes the
// cycle. That transaction has modified many rows, so InnoDB rolls back the
// store's lighter statement.
func TestDeadlockVictimIsRetried(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	s, table := newStore(t, db, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r1, r2 := testID(t, 1), testID(t, 2)
	if _, err := s.Create(ctx, r1, nil, t0.Add(time.Hour), "o", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, r2, nil, t0.Add(2*time.Hour), "o", t0); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := s.Create(ctx, testID(t, 100+i), nil, t0.Add(time.Hour), "filler", t0); err != nil {
			t.Fatal(err)
		}
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	// Weigh the transaction down, touching only the filler rows (by
	// primary key: a scan would lock r1 and r2 too).
	for i := range 50 {
		if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET version = version + 1 WHERE id = ?", unhex(testID(t, 100+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM "+table+" WHERE id = ? FOR UPDATE", unhex(r2)); err != nil {
		t.Fatal(err)
	}

	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.DeleteOwner(ctx, "o", t0)
		done <- result{n, err}
	}()

	// Wait until the store's DELETE holds r1: it then waits for r2, or
	// is about to. A locking read that skips locked rows sees r1 vanish.
	for {
		var visible int
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE id = ? FOR UPDATE SKIP LOCKED", unhex(r1)).Scan(&visible)
		if err != nil {
			t.Fatalf("waiting for the store's statement to lock r1: %v", err)
		}
		if visible == 0 {
			break
		}
	}

	// Close the cycle: InnoDB rolls back the store's statement, the
	// lighter one, and this one gets r1. (Without a deadlock this call
	// would block for good.)
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM "+table+" WHERE id = ? FOR UPDATE", unhex(r1)); err != nil {
		t.Fatalf("the heavier transaction was chosen as the victim (%v); cannot test the retry", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.n != 2 {
		t.Fatalf("DeleteOwner = %d, %v; want 2, nil after re-running the deadlock victim", res.n, res.err)
	}
	if ids, err := s.ListOwner(ctx, "o", t0); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner after DeleteOwner = %v, %v", ids, err)
	}
}
