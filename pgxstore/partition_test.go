package pgxstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionkit/sessions/pgxstore"
)

// fakeTx is a pgx.Tx for option validation only.
type fakeTx struct{ pgx.Tx }

func TestNewValidatesPartitionOptions(t *testing.T) {
	var db pgxstore.DB = (*pgxpool.Pool)(nil)
	tests := []struct {
		name string
		db   pgxstore.DB
		opts pgxstore.Options
		ok   bool
	}{
		{"hour", db, pgxstore.Options{Partition: time.Hour}, true},
		{"minute, 1000 ahead", db, pgxstore.Options{Partition: time.Minute, PartitionAhead: 1000 * time.Minute}, true},
		{"30 days", db, pgxstore.Options{Partition: 30 * 24 * time.Hour}, true},
		{"40-char table", db, pgxstore.Options{Partition: time.Hour, Table: strings.Repeat("t", 40)}, true},
		{"41-char table", db, pgxstore.Options{Partition: time.Hour, Table: strings.Repeat("t", 41)}, false},
		{"negative", db, pgxstore.Options{Partition: -time.Hour}, false},
		{"under a minute", db, pgxstore.Options{Partition: 59 * time.Second}, false},
		{"over 30 days", db, pgxstore.Options{Partition: 30*24*time.Hour + time.Millisecond}, false},
		{"fraction of a millisecond", db, pgxstore.Options{Partition: time.Hour + time.Microsecond}, false},
		{"ahead without partition", db, pgxstore.Options{PartitionAhead: time.Hour}, false},
		{"negative ahead", db, pgxstore.Options{Partition: time.Hour, PartitionAhead: -time.Hour}, false},
		{"1001 partitions ahead", db, pgxstore.Options{Partition: time.Minute, PartitionAhead: 1001 * time.Minute}, false},
		{"pgx.Tx", fakeTx{}, pgxstore.Options{Partition: time.Hour}, false},
		{"pgx.Tx, plain", fakeTx{}, pgxstore.Options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pgxstore.New(tt.db, &tt.opts)
			if tt.ok {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a store", s, err)
				}
				return
			}
			if !errors.Is(err, pgxstore.ErrInvalidOptions) || s != nil {
				t.Fatalf("New = %v, %v; want nil and ErrInvalidOptions", s, err)
			}
		})
	}
}

// partRig is a partitioned store on a fresh table, with the hour its
// first partition starts.
type partRig struct {
	s     *pgxstore.Store
	p     *pgxpool.Pool
	table string // quoted, qualified
	start time.Time
}

func newPartRig(t *testing.T, ahead time.Duration) *partRig {
	t.Helper()
	s, p, table := newStore(t, &pgxstore.Options{Partition: time.Hour, PartitionAhead: ahead, SweepBatch: 10})
	return &partRig{s: s, p: p, table: table, start: time.Now().Truncate(time.Hour)}
}

// partitions returns the lower bounds of the table's partitions, sorted,
// and whether any is pending detach.
func (r *partRig) partitions(t *testing.T) ([]time.Time, bool) {
	t.Helper()
	rows, err := r.p.Query(context.Background(), `SELECT pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`, r.table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var (
		los     []time.Time
		pending bool
	)
	for rows.Next() {
		var (
			b string
			p bool
		)
		if err := rows.Scan(&b, &p); err != nil {
			t.Fatal(err)
		}
		var lo, hi int64
		if _, err := fmt.Sscanf(b, "FOR VALUES FROM ('%d') TO ('%d')", &lo, &hi); err != nil {
			t.Fatalf("bound %q: %v", b, err)
		}
		if hi-lo != time.Hour.Milliseconds() {
			t.Errorf("partition %q is not an hour wide", b)
		}
		los = append(los, time.UnixMilli(lo))
		pending = pending || p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(los, time.Time.Compare)
	return los, pending
}

func (r *partRig) rows(t *testing.T, where string) int {
	t.Helper()
	var n int
	if err := r.p.QueryRow(context.Background(), `SELECT count(*) FROM `+r.table+` WHERE `+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func hours(start time.Time, n ...int) []time.Time {
	var ts []time.Time
	for _, h := range n {
		ts = append(ts, start.Add(time.Duration(h)*time.Hour))
	}
	return ts
}

// TestPartitionsAhead: CreateTable creates the partitions from now to
// PartitionAhead, a write beyond creates its own, a write whose expiry is
// already past creates none, and CreateTable refuses a plain table.
func TestPartitionsAhead(t *testing.T) {
	t.Parallel()
	r := newPartRig(t, 2*time.Hour)
	ctx, now := context.Background(), time.Now()
	if got, _ := r.partitions(t); !slices.Equal(got, hours(r.start, 0, 1, 2)) {
		t.Fatalf("partitions after CreateTable start at %v; want %v", got, hours(r.start, 0, 1, 2))
	}
	id := testID(t, 1)
	far := r.start.Add(30*time.Hour + time.Minute)
	if ok, err := r.s.Create(ctx, id, []byte("far"), far, "", now); !ok || err != nil {
		t.Fatalf("Create beyond the partitions = %v, %v", ok, err)
	}
	if found, err := r.s.Touch(ctx, id, far.Add(10*time.Hour), now); !found || err != nil {
		t.Fatalf("Touch beyond the partitions = %v, %v", found, err)
	}
	if updated, found, err := r.s.Update(ctx, id, 1, []byte("farther"), far.Add(20*time.Hour), "", now); !updated || !found || err != nil {
		t.Fatalf("Update beyond the partitions = %v, %v, %v", updated, found, err)
	}
	if got, _ := r.partitions(t); !slices.Equal(got, hours(r.start, 0, 1, 2, 30, 40, 50)) {
		t.Errorf("partitions after writes 30, 40 and 50 h ahead: %v", got)
	}
	// A retirement (expiry at the epoch) deletes the row and creates no
	// partition in 1970.
	if updated, found, err := r.s.Update(ctx, id, 2, nil, time.UnixMilli(1), "", now); !updated || !found || err != nil {
		t.Fatalf("retiring Update = %v, %v, %v", updated, found, err)
	}
	if ok, err := r.s.Create(ctx, testID(t, 2), nil, time.UnixMilli(1), "", now); !ok || err != nil {
		t.Fatalf("Create born expired = %v, %v", ok, err)
	}
	if n := r.rows(t, "true"); n != 0 {
		t.Errorf("%d rows after the retirement and a Create born expired; want 0", n)
	}
	if got, _ := r.partitions(t); len(got) != 6 {
		t.Errorf("partitions after writes of past expiries: %v; want none added", got)
	}

	// A partitioned store refuses a plain table of its name.
	plain, err := pgxstore.New(r.p, &pgxstore.Options{Schema: schemaName(t.Name()), Table: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	part, err := pgxstore.New(r.p, &pgxstore.Options{Schema: schemaName(t.Name()), Table: "plain", Partition: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := part.CreateTable(ctx); !errors.Is(err, pgxstore.ErrLayout) {
		t.Errorf("partitioned CreateTable on a plain table = %v; want ErrLayout", err)
	}
}

// TestPartitionedCreateRace: without a unique index on id alone, two
// concurrent Creates of one id (with different expiries, so different
// primary keys, in different partitions) must not both succeed, also when
// they replace an expired record.
func TestPartitionedCreateRace(t *testing.T) {
	t.Parallel()
	r := newPartRig(t, 4*time.Hour)
	ctx, now := context.Background(), time.Now()
	const writers = 8
	for round := range 10 {
		id := testID(t, round)
		if round%2 == 1 {
			// An expired record to replace.
			if ok, err := r.s.Create(ctx, id, []byte("old"), now.Add(time.Minute), "", now); !ok || err != nil {
				t.Fatalf("Create = %v, %v", ok, err)
			}
		}
		later := now.Add(2 * time.Minute)
		var wg sync.WaitGroup
		wins := make(chan int, writers)
		for i := range writers {
			wg.Go(func() {
				exp := later.Add(time.Duration(i+1) * 25 * time.Minute) // spread over partitions
				ok, err := r.s.Create(ctx, id, []byte{byte(i)}, exp, "", later)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins <- i
				}
			})
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Fatalf("round %d: %d concurrent Creates of one id succeeded, want 1", round, len(wins))
		}
		winner := <-wins
		if n := r.rows(t, fmt.Sprintf("id = decode('%s', 'hex')", id)); n != 1 {
			t.Fatalf("round %d: %d rows with the id, want 1", round, n)
		}
		data, v, _, found, err := r.s.Load(ctx, id, later)
		if !found || err != nil || v != 1 || len(data) != 1 || int(data[0]) != winner {
			t.Fatalf("round %d: Load = %v, %d, %v, %v; want the winner's record", round, data, v, found, err)
		}
		if ok, err := r.s.Create(ctx, id, nil, later.Add(time.Hour), "", later); ok || err != nil {
			t.Fatalf("round %d: Create over a live record = %v, %v; want false", round, ok, err)
		}
	}
}

// waitLocked waits until a backend waits for a lock with a statement
// containing what.
func waitLocked(t *testing.T, p *pgxpool.Pool, what string) {
	t.Helper()
	waitFor(t, "a statement waiting for a lock: "+what, func() bool {
		var n int
		err := p.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND datname = current_database() AND strpos(query, $1) > 0`, what).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
}

// TestPartitionedMovedRow: a statement that waits for the lock of a row
// that the lock holder moves to another partition gets SQLSTATE 40001
// ("tuple to be locked was already moved to another partition due to
// concurrent update") once the holder commits. Update reports "changed"
// (the Manager reloads and re-applies); Touch, Delete and DeleteOwner run
// their statement again. Each case: a transaction moves the row (a touch
// across the hour, as an idle deadline does) and holds it, the store call
// waits, the transaction commits.
func TestPartitionedMovedRow(t *testing.T) {
	t.Parallel()
	r := newPartRig(t, 3*time.Hour)
	ctx, now := context.Background(), time.Now()
	e1 := r.start.Add(time.Hour + time.Minute)   // second partition
	e2 := r.start.Add(2*time.Hour + time.Minute) // third
	owner := "o-" + t.Name()
	tests := []struct {
		name  string
		marks string // a piece of the store's statement, to see it wait
		call  func(id string) error
		check func(t *testing.T, id string)
	}{
		{"Update", "version = version + 1", func(id string) error {
			updated, found, err := r.s.Update(ctx, id, 1, []byte("update"), e1.Add(time.Minute), owner, now)
			if err == nil && (updated || !found) {
				err = fmt.Errorf("Update = %v, %v; want changed (false, true)", updated, found)
			}
			return err
		}, func(t *testing.T, id string) {
			// Re-applied on the record as it is now.
			if updated, _, err := r.s.Update(ctx, id, 1, []byte("again"), e2.Add(time.Minute), owner, now); !updated || err != nil {
				t.Errorf("Update after the move = %v, %v", updated, err)
			}
		}},
		{"Touch", "GREATEST", func(id string) error {
			found, err := r.s.Touch(ctx, id, e2.Add(5*time.Minute), now)
			if err == nil && !found {
				err = errors.New("Touch did not find the moved record")
			}
			return err
		}, func(t *testing.T, id string) {
			if _, _, exp, _, _ := r.s.Load(ctx, id, now); !exp.Equal(e2.Add(5 * time.Minute)) {
				t.Errorf("expiry after Touch = %v; want %v", exp, e2.Add(5*time.Minute))
			}
		}},
		{"Delete", "DELETE FROM", func(id string) error { return r.s.Delete(ctx, id) }, func(t *testing.T, id string) {
			if _, _, _, found, _ := r.s.Load(ctx, id, now); found {
				t.Errorf("the moved record survived Delete")
			}
		}},
		{"DeleteOwner", "WHERE owner = $1", func(string) error {
			n, err := r.s.DeleteOwner(ctx, owner+"-DeleteOwner", now)
			if err == nil && n != 1 {
				err = fmt.Errorf("DeleteOwner = %d; want 1", n)
			}
			return err
		}, func(t *testing.T, id string) {
			if _, _, _, found, _ := r.s.Load(ctx, id, now); found {
				t.Errorf("the moved record survived DeleteOwner")
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := testID(t, i)
			if ok, err := r.s.Create(ctx, id, []byte("x"), e1, owner+"-"+tt.name, now); !ok || err != nil {
				t.Fatalf("Create = %v, %v", ok, err)
			}
			tx, err := r.p.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			if _, err := tx.Exec(ctx, `UPDATE `+r.table+` SET expiry = $1 WHERE id = decode($2, 'hex')`, e2.UnixMilli(), id); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tt.call(id) }()
			waitLocked(t, r.p, tt.marks)
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("%s while the row moved: %v", tt.name, err)
			}
			tt.check(t, id)
		})
	}
}

// TestPartitionedSweep: DeleteExpired drops the partitions whose range
// has passed (counting their rows), removes the expired rows of the
// partition that holds now in batches, keeps every live row, and creates
// the partitions ahead of now.
func TestPartitionedSweep(t *testing.T) {
	t.Parallel()
	r := newPartRig(t, 2*time.Hour)
	ctx := context.Background()
	created := r.start.Add(-time.Minute)
	n := 0
	add := func(exp time.Time, count int) {
		for range count {
			n++
			if ok, err := r.s.Create(ctx, testID(t, n), []byte("x"), exp, "", created); !ok || err != nil {
				t.Fatalf("Create = %v, %v", ok, err)
			}
		}
	}
	add(r.start.Add(10*time.Minute), 30) // first partition
	add(r.start.Add(70*time.Minute), 25) // second, expired at now
	add(r.start.Add(100*time.Minute), 5) // second, live at now
	add(r.start.Add(130*time.Minute), 5) // third
	now := r.start.Add(90 * time.Minute)
	got, err := r.s.DeleteExpired(ctx, now)
	if err != nil || got != 55 {
		t.Fatalf("DeleteExpired = %d, %v; want 55", got, err)
	}
	if n := r.rows(t, "true"); n != 10 {
		t.Errorf("%d rows left; want the 10 live ones", n)
	}
	parts, _ := r.partitions(t)
	if !slices.Equal(parts, hours(r.start, 1, 2, 3)) {
		t.Errorf("partitions after the sweep at +90 min: %v; want %v", parts, hours(r.start, 1, 2, 3))
	}
	if got, err := r.s.DeleteExpired(ctx, now); got != 0 || err != nil {
		t.Errorf("a second DeleteExpired = %d, %v; want 0", got, err)
	}
}

// TestPartitionedSweepInterrupted: a DETACH ... CONCURRENTLY waits for
// the transactions that can still see the partition; cut by the sweep's
// deadline, it leaves the partition pending detach. Live reads and writes
// go on meanwhile (DETACH CONCURRENTLY takes SHARE UPDATE EXCLUSIVE on the
// table), the next DeleteExpired completes it with FINALIZE, and a
// partition detached but not dropped (a crash between the two) is counted
// and dropped too.
func TestPartitionedSweepInterrupted(t *testing.T) {
	t.Parallel()
	r := newPartRig(t, 3*time.Hour)
	ctx := context.Background()
	created := r.start.Add(-time.Minute)
	for i := range 20 {
		exp := r.start.Add(10 * time.Minute) // first partition
		if i >= 10 {
			exp = r.start.Add(70 * time.Minute) // second
		}
		if ok, err := r.s.Create(ctx, testID(t, i), []byte("x"), exp, "", created); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
	}
	live := testID(t, 100)
	liveExp := r.start.Add(3*time.Hour + time.Minute)
	if ok, err := r.s.Create(ctx, live, []byte("live"), liveExp, "", created); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}

	// An open transaction that has read the table.
	tx, err := r.p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM `+r.table); err != nil {
		t.Fatal(err)
	}
	now := r.start.Add(time.Hour + time.Minute)
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	sweepErr := make(chan error, 1)
	go func() {
		_, err := r.s.DeleteExpired(sctx, now)
		sweepErr <- err
	}()
	waitLocked(t, r.p, "CONCURRENTLY")
	// Live traffic while the detach waits: each call within 100 ms. (The
	// expiries stay within the partitions created ahead: creating one
	// would wait for the detach: see the README.)
	for i := range 5 {
		lctx, lcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, v, _, found, err := r.s.Load(lctx, live, now)
		if err == nil {
			var updated bool
			updated, _, err = r.s.Update(lctx, live, v, []byte("live"), liveExp.Add(time.Duration(i)*time.Minute), "", now)
			if err == nil && !updated {
				err = errors.New("not updated")
			}
		}
		lcancel()
		if err != nil || !found {
			t.Fatalf("live Load/Update %d while DETACH CONCURRENTLY waits: found %v, %v", i, found, err)
		}
	}
	if err := <-sweepErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DeleteExpired cut by its deadline = %v; want DeadlineExceeded", err)
	}
	cancel()
	if _, pending := r.partitions(t); !pending {
		t.Fatalf("no partition pending detach after the interrupted sweep")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The interrupted DETACH may still be running on the server (the
	// cancellation of a statement waiting for a lock can come late); it
	// then completes, leaving the partition detached and not dropped,
	// which the next sweep must count and drop as well.

	// A partition detached and not dropped, as a crash would leave it.
	second := strings.TrimSuffix(r.table, `"`) + fmt.Sprintf(`_p%d"`, r.start.Add(time.Hour).UnixMilli())
	if _, err := r.p.Exec(ctx, `ALTER TABLE `+r.table+` DETACH PARTITION `+second); err != nil {
		t.Fatal(err)
	}
	now = r.start.Add(2*time.Hour + time.Minute)
	if n, err := r.s.DeleteExpired(ctx, now); n != 20 || err != nil {
		t.Fatalf("DeleteExpired after the interruption = %d, %v; want 20 (10 pending detach, 10 detached)", n, err)
	}
	parts, pending := r.partitions(t)
	if want := hours(r.start, 2, 3, 4, 5); pending || !slices.Equal(parts, want) {
		t.Errorf("partitions %v (pending %v); want %v", parts, pending, want)
	}
	var tables int
	if err := r.p.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schemaName(t.Name())).Scan(&tables); err != nil || tables != 5 {
		t.Errorf("%d tables in the schema (%v); want the table and its 4 partitions", tables, err)
	}
}

// TestPartitionCreationDoesNotBlock: creating partitions ahead attaches
// them (SHARE UPDATE EXCLUSIVE on the table), which does not wait for a
// transaction holding row locks and ROW EXCLUSIVE on the table; CREATE
// TABLE ... PARTITION OF (ACCESS EXCLUSIVE) would.
func TestPartitionCreationDoesNotBlock(t *testing.T) {
	t.Parallel()
	r := newPartRig(t, time.Hour)
	ctx, now := context.Background(), time.Now()
	id := testID(t, 1)
	if ok, err := r.s.Create(ctx, id, []byte("x"), now.Add(time.Minute), "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	tx, err := r.p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `UPDATE `+r.table+` SET data = 'y' WHERE id = decode($1, 'hex')`, id); err != nil {
		t.Fatal(err)
	}
	wide, err := pgxstore.New(r.p, &pgxstore.Options{Schema: schemaName(t.Name()), Partition: time.Hour, PartitionAhead: 10 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := wide.DeleteExpired(sctx, now); err != nil {
		t.Fatalf("DeleteExpired creating partitions ahead while a writer holds the table: %v", err)
	}
	if parts, _ := r.partitions(t); len(parts) < 11 {
		t.Errorf("%d partitions; want 11 or more", len(parts))
	}
}
