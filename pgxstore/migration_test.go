package pgxstore_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionkit/sessions/pgxstore"
)

// migrationSteps returns the SQL blocks of the README's migration, in
// order: each follows a "<!-- migration step N -->" line.
func migrationSteps(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for n := 1; ; n++ {
		marker := fmt.Sprintf("<!-- migration step %d -->\n```sql\n", n)
		_, rest, ok := strings.Cut(string(readme), marker)
		if !ok {
			break
		}
		block, _, ok := strings.Cut(rest, "```")
		if !ok {
			t.Fatalf("migration step %d: unterminated block", n)
		}
		steps = append(steps, block)
	}
	if len(steps) != 3 {
		t.Fatalf("found %d migration steps in README.md; want 3", len(steps))
	}
	return steps
}

// TestMigration runs the README's migration from the plain table to the
// partitioned layout, block by block, in a schema of its own (through the
// search_path, as the README's unqualified SQL expects), while a plain
// store keeps updating and touching live sessions. Afterwards a
// partitioned store finds every live session with its latest update, no
// expired one, and works.
func TestMigration(t *testing.T) {
	t.Parallel()
	base := testPool(t)
	schema := testSchema(t, base)
	cfg := base.Config().Copy()
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	ctx := context.Background()
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	plain, err := pgxstore.New(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	const liveN, expiredN = 200, 50
	// Writers on the plain store through the whole migration: updates
	// (data and version) and touches (expiry), each record's latest
	// successful write remembered.
	type state struct {
		version int64
		data    string
		expiry  time.Time
	}
	var (
		mu     sync.Mutex
		latest = make([]state, liveN)
		writes atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	now := time.Now()
	ids := make([]string, liveN)
	for i := range liveN + expiredN {
		id := testID(t, i)
		exp := now.Add(time.Duration(i%40+1) * time.Hour) // over 40 h: beyond the 24 h ahead
		if i >= liveN {
			exp = now.Add(-time.Duration(i) * time.Minute)
		} else {
			ids[i] = id
			latest[i] = state{1, "v1", exp}
		}
		if ok, err := plain.Create(ctx, id, []byte("v1"), exp, "owner", now.Add(-2*time.Hour*24)); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
	}

	for w := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := (w*liveN/4 + n) % liveN
				mu.Lock()
				st := latest[i]
				mu.Unlock()
				now := time.Now()
				exp := now.Add(time.Duration(30+n%60) * time.Minute)
				if n%3 == 0 {
					found, err := plain.Touch(ctx, ids[i], exp, now)
					if err != nil || !found {
						t.Errorf("plain Touch during the migration: %v, %v", found, err)
						return
					}
					if exp.After(st.expiry) {
						st.expiry = exp
					}
				} else {
					data := fmt.Sprintf("w%d-%d", w, n)
					updated, _, err := plain.Update(ctx, ids[i], st.version, []byte(data), exp, "owner", now)
					if err != nil || !updated {
						t.Errorf("plain Update during the migration: %v, %v", updated, err)
						return
					}
					st = state{st.version + 1, data, exp}
				}
				mu.Lock()
				latest[i] = st
				mu.Unlock()
				writes.Add(1)
			}
		})
	}

	steps := migrationSteps(t)
	conn, err := p.Acquire(ctx) // steps 2 and 3 share a session (pg_temp)
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range steps {
		time.Sleep(100 * time.Millisecond)
		before := writes.Load()
		start := time.Now()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("migration step %d: %v", i+1, err)
		}
		t.Logf("step %d took %v; %d plain writes meanwhile", i+1, time.Since(start).Round(time.Millisecond), writes.Load()-before)
	}
	conn.Release()
	time.Sleep(200 * time.Millisecond) // plain writes on the new table
	close(stop)
	wg.Wait()
	t.Logf("%d plain writes in all", writes.Load())

	part, err := pgxstore.New(p, &pgxstore.Options{Partition: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := part.CreateTable(ctx); err != nil {
		t.Fatalf("partitioned CreateTable after the migration: %v", err)
	}
	now = time.Now()
	for i, id := range ids {
		data, v, exp, found, err := part.Load(ctx, id, now)
		want := latest[i]
		if err != nil || !found || v != want.version || string(data) != want.data || !exp.Equal(want.expiry.Truncate(time.Millisecond)) {
			t.Fatalf("session %d after the migration: %q v%d expiry %v found %v %v; want %q v%d expiry %v",
				i, data, v, exp, found, err, want.data, want.version, want.expiry)
		}
	}
	var rows, old int
	if err := p.QueryRow(ctx, `SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM sessions_old)`).Scan(&rows, &old); err != nil {
		t.Fatal(err)
	}
	if rows != liveN || old != liveN+expiredN {
		t.Errorf("%d rows in sessions, %d in sessions_old; want %d and %d", rows, old, liveN, liveN+expiredN)
	}
	var names []string
	if err := p.QueryRow(ctx, `SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('p', 'I')`, schema).Scan(&names); err != nil {
		t.Fatal(err)
	}
	if want := "sessions sessions_expiry_idx sessions_owner_idx sessions_pkey"; strings.Join(names, " ") != want {
		t.Errorf("partitioned table and indexes after the swap: %v; want %s", names, want)
	}

	// The store works on the migrated table: create, the partitions'
	// sweep (the old copy's partitions are recognised as its own).
	id := testID(t, 1000)
	if ok, err := part.Create(ctx, id, []byte("new"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatalf("Create after the migration = %v, %v", ok, err)
	}
	if ok, err := part.Create(ctx, ids[0], []byte("dup"), now.Add(time.Hour), "", now); ok || err != nil {
		t.Fatalf("Create of a migrated live id = %v, %v; want false", ok, err)
	}
	n, err := part.DeleteExpired(ctx, now.Add(100*time.Hour))
	if err != nil || n != liveN+1 {
		t.Fatalf("DeleteExpired 100 h later = %d, %v; want %d", n, err, liveN+1)
	}
}
