package pgxstore_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionkit/sessions/pgxstore"
)

// t0 is an arbitrary "now": the store compares against the caller's clock
// only, so tests use fixed instants.
var t0 = time.UnixMilli(1_750_000_000_000)

func TestNewValidatesOptions(t *testing.T) {
	var db pgxstore.DB = (*pgxpool.Pool)(nil) // New does no I/O
	tests := []struct {
		name string
		db   pgxstore.DB
		opts *pgxstore.Options
		ok   bool
	}{
		{"nil options", db, nil, true},
		{"zero options", db, &pgxstore.Options{}, true},
		{"custom names", db, &pgxstore.Options{Table: "My_Sessions2", Schema: "app", SweepBatch: 10}, true},
		{"52-char table", db, &pgxstore.Options{Table: strings.Repeat("t", 52)}, true},
		{"63-char schema", db, &pgxstore.Options{Schema: strings.Repeat("s", 63)}, true},
		{"nil db", nil, nil, false},
		{"53-char table", db, &pgxstore.Options{Table: strings.Repeat("t", 53)}, false},
		{"64-char schema", db, &pgxstore.Options{Schema: strings.Repeat("s", 64)}, false},
		{"table with quote", db, &pgxstore.Options{Table: `a"b`}, false},
		{"table with dot", db, &pgxstore.Options{Table: "public.sessions"}, false},
		{"table with space", db, &pgxstore.Options{Table: "a b"}, false},
		{"table starting with digit", db, &pgxstore.Options{Table: "1sessions"}, false},
		{"table injection", db, &pgxstore.Options{Table: "s; DROP TABLE x"}, false},
		{"schema with dash", db, &pgxstore.Options{Schema: "my-schema"}, false},
		{"non-ASCII table", db, &pgxstore.Options{Table: "séssions"}, false},
		{"negative batch", db, &pgxstore.Options{SweepBatch: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pgxstore.New(tt.db, tt.opts)
			if tt.ok {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a store", s, err)
				}
				return
			}
			if !errors.Is(err, pgxstore.ErrInvalidOptions) || s != nil {
				t.Fatalf("New = %v, %v; want nil and ErrInvalidOptions", s, err)
			}
			if !strings.HasPrefix(err.Error(), "pgxstore: ") {
				t.Errorf("error %q lacks the pgxstore: prefix", err)
			}
		})
	}
}

func TestCreateTableIsIdempotent(t *testing.T) {
	t.Parallel()
	s, p, _ := newStore(t, &pgxstore.Options{Table: "web_sessions"})
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	schema := schemaName(t.Name())
	rows, err := p.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'web_sessions' ORDER BY indexname`, schema)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"web_sessions_expiry_idx", "web_sessions_owner_idx", "web_sessions_pkey"}
	if !slices.Equal(got, want) {
		t.Errorf("indexes = %v, want %v", got, want)
	}
}

// TestCreateTableConcurrently starts many CreateTable calls on a fresh
// schema at once, as application instances starting together do: plain
// CREATE TABLE IF NOT EXISTS fails some of them with a unique violation in
// the catalog.
func TestCreateTableConcurrently(t *testing.T) {
	t.Parallel()
	p := testPool(t)
	schema := testSchema(t, p)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := pgxstore.New(p, &pgxstore.Options{Schema: schema})
			if err == nil {
				err = s.CreateTable(context.Background())
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent CreateTable: %v", err)
		}
	}
}

// TestDDLConstant runs the exported DDL (default table, search_path) and
// checks that the store works on the table it creates.
func TestDDLConstant(t *testing.T) {
	t.Parallel()
	p := testPool(t)
	schema := testSchema(t, p)
	ctx := context.Background()
	pc, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Take the connection out of the pool: its search_path changes.
	conn := pc.Hijack()
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET search_path TO "`+schema+`"`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, pgxstore.DDL); err != nil {
		t.Fatalf("DDL: %v", err)
	}
	if _, err := conn.Exec(ctx, pgxstore.DDL); err != nil {
		t.Fatalf("DDL twice: %v", err)
	}
	s, err := pgxstore.New(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable after DDL: %v", err)
	}
	id := testID(t, 1)
	if created, err := s.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "u", t0); err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	var n int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM "`+schema+`".sessions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows in %s.sessions = %d, %v; want 1", schema, n, err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, nil)
	ctx := context.Background()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := []struct {
		name  string
		data  []byte
		owner string
	}{
		{"empty", []byte{}, ""},
		{"nil", nil, ""},
		{"text", []byte(`{"user":42}`), "user-42"},
		{"binary with NUL and invalid UTF-8", []byte{0, 0xff, 0xfe, 0, '\\', '\''}, "ünïcode owner"},
		{"1 MiB", big, "big"},
	}
	for i, tt := range tests {
		id := testID(t, i)
		expiry := t0.Add(time.Hour + 123456789*time.Nanosecond)
		created, err := s.Create(ctx, id, tt.data, expiry, tt.owner, t0)
		if err != nil || !created {
			t.Fatalf("%s: Create = %v, %v", tt.name, created, err)
		}
		data, version, gotExpiry, found, err := s.Load(ctx, id, t0)
		if err != nil || !found {
			t.Fatalf("%s: Load found=%v err=%v", tt.name, found, err)
		}
		if data == nil {
			t.Errorf("%s: Load returned nil data, want a non-nil slice", tt.name)
		}
		if !bytes.Equal(data, tt.data) {
			t.Errorf("%s: data differs (got %d bytes, want %d)", tt.name, len(data), len(tt.data))
		}
		if version != 1 {
			t.Errorf("%s: version = %d, want 1", tt.name, version)
		}
		if want := expiry.Truncate(time.Millisecond); !gotExpiry.Equal(want) {
			t.Errorf("%s: expiry = %v, want %v (millisecond precision)", tt.name, gotExpiry, want)
		}
		// The caller owns the returned slice.
		if len(data) > 0 {
			data[0]++
			again, _, _, _, err := s.Load(ctx, id, t0)
			if err != nil || !bytes.Equal(again, tt.data) {
				t.Errorf("%s: modifying a loaded slice changed the record", tt.name)
			}
		}
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, nil)
	ctx := context.Background()
	id := testID(t, 1)

	if created, err := s.Create(ctx, id, []byte("first"), t0.Add(time.Minute), "alice", t0); err != nil || !created {
		t.Fatalf("Create = %v, %v; want true", created, err)
	}
	// A live record is never overwritten.
	if created, err := s.Create(ctx, id, []byte("second"), t0.Add(time.Hour), "mallory", t0); err != nil || created {
		t.Fatalf("Create over live record = %v, %v; want false, nil", created, err)
	}
	data, _, expiry, found, err := s.Load(ctx, id, t0)
	if err != nil || !found || string(data) != "first" || !expiry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after refused Create: Load = %q, %v, %v, %v", data, expiry, found, err)
	}
	if ids, err := s.ListOwner(ctx, "mallory", t0); err != nil || len(ids) != 0 {
		t.Fatalf("refused Create indexed its owner: %v, %v", ids, err)
	}

	// Bump the version, then let the record expire: exactly at its expiry
	// it counts as absent and may be replaced, with version 1 again.
	if updated, _, err := s.Update(ctx, id, 1, []byte("v2"), t0.Add(time.Minute), "alice", t0); err != nil || !updated {
		t.Fatalf("Update = %v, %v", updated, err)
	}
	later := t0.Add(time.Minute)
	if created, err := s.Create(ctx, id, []byte("third"), later.Add(time.Hour), "bob", later); err != nil || !created {
		t.Fatalf("Create over expired record = %v, %v; want true", created, err)
	}
	data, version, _, found, err := s.Load(ctx, id, later)
	if err != nil || !found || string(data) != "third" || version != 1 {
		t.Fatalf("replaced record: Load = %q, v%d, %v, %v; want third, v1", data, version, found, err)
	}
	if ids, _ := s.ListOwner(ctx, "alice", later); len(ids) != 0 {
		t.Errorf("old owner still lists the replaced record: %v", ids)
	}
	if ids, _ := s.ListOwner(ctx, "bob", later); !slices.Equal(ids, []string{id}) {
		t.Errorf("ListOwner(bob) = %v, want [%s]", ids, id)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	s, p, table := newStore(t, nil)
	ctx := context.Background()
	exp := t0.Add(time.Hour)

	tests := []struct {
		name        string
		seed        bool
		seedExpiry  time.Time
		version     int64
		wantUpdated bool
		wantFound   bool
	}{
		{"matching version", true, exp, 1, true, true},
		{"stale version", true, exp, 7, false, true},
		{"older version", true, exp, 0, false, true},
		{"expired exactly now", true, t0, 1, false, false},
		{"expired before now", true, t0.Add(-time.Second), 1, false, false},
		{"absent", false, time.Time{}, 1, false, false},
	}
	for i, tt := range tests {
		id := testID(t, i)
		if tt.seed {
			if created, err := s.Create(ctx, id, []byte("old"), tt.seedExpiry, "o1", t0.Add(-time.Hour)); err != nil || !created {
				t.Fatalf("%s: seed: %v, %v", tt.name, created, err)
			}
		}
		updated, found, err := s.Update(ctx, id, tt.version, []byte("new"), t0.Add(2*time.Hour), "o2", t0)
		if err != nil || updated != tt.wantUpdated || found != tt.wantFound {
			t.Fatalf("%s: Update = %v, %v, %v; want %v, %v, nil", tt.name, updated, found, err, tt.wantUpdated, tt.wantFound)
		}
		var (
			rows    int
			data    []byte
			version int64
			expiry  int64
			owner   *string
		)
		_ = p.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE id = decode($1, 'hex')`, id).Scan(&rows)
		if !tt.seed {
			if rows != 0 {
				t.Errorf("%s: Update created a record", tt.name)
			}
			continue
		}
		if err := p.QueryRow(ctx, `SELECT data, version, expiry, owner FROM `+table+` WHERE id = decode($1, 'hex')`, id).Scan(&data, &version, &expiry, &owner); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.wantUpdated {
			if string(data) != "new" || version != 2 || expiry != t0.Add(2*time.Hour).UnixMilli() || owner == nil || *owner != "o2" {
				t.Errorf("%s: row = %q v%d exp %d owner %v; want new v2", tt.name, data, version, expiry, owner)
			}
		} else if string(data) != "old" || version != 1 || expiry != tt.seedExpiry.UnixMilli() || owner == nil || *owner != "o1" {
			t.Errorf("%s: failed Update wrote: %q v%d exp %d owner %v", tt.name, data, version, expiry, owner)
		}
	}

	// Successive updates keep counting; the empty owner stores NULL.
	id := testID(t, 100)
	if _, err := s.Create(ctx, id, nil, exp, "x", t0); err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 3; v++ {
		if updated, found, err := s.Update(ctx, id, v, []byte{byte(v)}, exp, "", t0); err != nil || !updated || !found {
			t.Fatalf("update from v%d = %v, %v, %v", v, updated, found, err)
		}
	}
	data, version, _, _, _ := s.Load(ctx, id, t0)
	if version != 4 || !bytes.Equal(data, []byte{3}) {
		t.Errorf("after 3 updates: v%d %v; want v4 [3]", version, data)
	}
	var owner *string
	if err := p.QueryRow(ctx, `SELECT owner FROM `+table+` WHERE id = decode($1, 'hex')`, id).Scan(&owner); err != nil || owner != nil {
		t.Errorf("empty owner stored as %v (%v), want NULL", owner, err)
	}
}

func TestTouch(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, nil)
	ctx := context.Background()
	id := testID(t, 1)
	exp := t0.Add(time.Hour)
	if _, err := s.Create(ctx, id, []byte("d"), exp, "o", t0); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name       string
		expiry     time.Time
		now        time.Time
		wantFound  bool
		wantExpiry time.Time
	}{
		{"later", exp.Add(time.Hour), t0, true, exp.Add(time.Hour)},
		{"earlier is ignored", exp, t0, true, exp.Add(time.Hour)},
		{"same is found", exp.Add(time.Hour), t0, true, exp.Add(time.Hour)},
		{"expired at now", exp.Add(3 * time.Hour), exp.Add(time.Hour), false, exp.Add(time.Hour)},
	}
	for _, st := range steps {
		found, err := s.Touch(ctx, id, st.expiry, st.now)
		if err != nil || found != st.wantFound {
			t.Fatalf("%s: Touch = %v, %v; want %v", st.name, found, err, st.wantFound)
		}
		data, version, expiry, ok, err := s.Load(ctx, id, t0)
		if err != nil || !ok || string(data) != "d" || version != 1 || !expiry.Equal(st.wantExpiry) {
			t.Fatalf("%s: Load = %q v%d %v %v %v; want d v1 %v", st.name, data, version, expiry, ok, err, st.wantExpiry)
		}
	}
	if found, err := s.Touch(ctx, testID(t, 2), exp, t0); err != nil || found {
		t.Errorf("Touch(absent) = %v, %v; want false, nil", found, err)
	}
	if _, _, _, found, _ := s.Load(ctx, testID(t, 2), t0); found {
		t.Error("Touch created a record")
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, nil)
	ctx := context.Background()
	id := testID(t, 1)
	if _, err := s.Create(ctx, id, []byte("d"), t0.Add(time.Hour), "o", t0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, _, _, found, err := s.Load(ctx, id, t0); found || err != nil {
		t.Errorf("after Delete: found=%v err=%v", found, err)
	}
	if ids, _ := s.ListOwner(ctx, "o", t0); len(ids) != 0 {
		t.Errorf("ListOwner after Delete = %v", ids)
	}
}

func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	s, p, table := newStore(t, nil)
	ctx := context.Background()
	good := testID(t, 1)
	if _, err := s.Create(ctx, good, []byte("d"), t0.Add(time.Hour), "", t0); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"",
		"abc",
		strings.ToUpper(good), // would alias good if accepted
		good[:63],
		good + "0",
		good[:62] + "zz",
		good[:62] + "'-",
		strings.Repeat("é", 32),
	}
	for _, id := range bad {
		if created, err := s.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "", t0); !errors.Is(err, pgxstore.ErrInvalidID) || created {
			t.Errorf("Create(%q) = %v, %v; want ErrInvalidID", id, created, err)
		}
		if _, _, _, found, err := s.Load(ctx, id, t0); found || err != nil {
			t.Errorf("Load(%q) = %v, %v; want not found", id, found, err)
		}
		if updated, found, err := s.Update(ctx, id, 1, []byte("x"), t0.Add(time.Hour), "", t0); updated || found || err != nil {
			t.Errorf("Update(%q) = %v, %v, %v; want gone", id, updated, found, err)
		}
		if found, err := s.Touch(ctx, id, t0.Add(2*time.Hour), t0); found || err != nil {
			t.Errorf("Touch(%q) = %v, %v; want not found", id, found, err)
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Errorf("Delete(%q) = %v", id, err)
		}
	}
	var n int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 1 {
		t.Errorf("rows = %d, %v; want only the well-formed one", n, err)
	}
	data, version, _, found, err := s.Load(ctx, good, t0)
	if !found || err != nil || string(data) != "d" || version != 1 {
		t.Errorf("the well-formed record changed: %q v%d %v %v", data, version, found, err)
	}
}

func TestDeleteExpiredInBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expired, live, batch int
		wantStatements       int
	}{
		{expired: 10, live: 4, batch: 3, wantStatements: 4}, // 3+3+3+1
		{expired: 9, live: 2, batch: 3, wantStatements: 4},  // 3+3+3+0
		{expired: 0, live: 3, batch: 3, wantStatements: 1},
		{expired: 5, live: 1, batch: 0, wantStatements: 1}, // default 1000
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			p := testPool(t)
			counter := &countingDB{DB: p}
			schema := testSchema(t, p)
			s, err := pgxstore.New(counter, &pgxstore.Options{Schema: schema, SweepBatch: tt.batch})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.CreateTable(ctx); err != nil {
				t.Fatal(err)
			}
			now := t0
			var liveIDs []string
			for i := range tt.expired + tt.live {
				exp := now.Add(-time.Duration(i+1) * time.Second)
				if i == 0 {
					exp = now // expiry == now is expired
				}
				if i >= tt.expired {
					exp = now.Add(time.Millisecond + time.Duration(i)*time.Second)
					liveIDs = append(liveIDs, testID(t, i))
				}
				if _, err := s.Create(ctx, testID(t, i), []byte("d"), exp, "o", now.Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			before := counter.count()
			n, err := s.DeleteExpired(ctx, now)
			if err != nil || n != tt.expired {
				t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, tt.expired)
			}
			if got := counter.count() - before; got != tt.wantStatements {
				t.Errorf("DeleteExpired ran %d statements, want %d", got, tt.wantStatements)
			}
			ids, err := s.ListOwner(ctx, "o", now)
			slices.Sort(ids)
			slices.Sort(liveIDs)
			if err != nil || !slices.Equal(ids, liveIDs) {
				t.Errorf("live records after sweep = %v, %v; want %v", ids, err, liveIDs)
			}
			if n, err := s.DeleteExpired(ctx, now); n != 0 || err != nil {
				t.Errorf("second sweep = %d, %v; want 0", n, err)
			}
		})
	}
}

func TestOwnerIndex(t *testing.T) {
	t.Parallel()
	s, p, table := newStore(t, nil)
	ctx := context.Background()
	live, dead := t0.Add(time.Hour), t0.Add(-time.Hour)
	records := []struct {
		owner  string
		expiry time.Time
	}{
		{"alice", live}, {"alice", live}, {"alice", dead}, {"Alice", live}, {"alice ", live}, {"", live}, {"bob", live},
	}
	for i, r := range records {
		if _, err := s.Create(ctx, testID(t, i), nil, r.expiry, r.owner, t0.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(owner string) []string {
		t.Helper()
		ids, err := s.ListOwner(ctx, owner, t0)
		if err != nil {
			t.Fatalf("ListOwner(%q): %v", owner, err)
		}
		if ids == nil {
			t.Fatalf("ListOwner(%q) returned nil, want a non-nil slice", owner)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }

	for owner, want := range map[string][]string{
		"alice":  sorted(testID(t, 0), testID(t, 1)),
		"Alice":  {testID(t, 3)}, // case-sensitive
		"alice ": {testID(t, 4)}, // trailing space is significant
		"":       {},
		"carol":  {},
	} {
		if got := list(owner); !slices.Equal(got, want) {
			t.Errorf("ListOwner(%q) = %v, want %v", owner, got, want)
		}
	}

	// Update moves a record between owners; the empty owner unindexes it.
	if ok, _, err := s.Update(ctx, testID(t, 1), 1, nil, live, "bob", t0); err != nil || !ok {
		t.Fatalf("Update owner: %v, %v", ok, err)
	}
	if ok, _, err := s.Update(ctx, testID(t, 6), 1, nil, live, "", t0); err != nil || !ok {
		t.Fatalf("Update owner: %v, %v", ok, err)
	}
	if got := list("bob"); !slices.Equal(got, []string{testID(t, 1)}) {
		t.Errorf("ListOwner(bob) after updates = %v", got)
	}

	if n, err := s.DeleteOwner(ctx, "alice", t0); err != nil || n != 1 {
		t.Fatalf("DeleteOwner(alice) = %d, %v; want 1 (one live, one expired)", n, err)
	}
	var left int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE owner = 'alice'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("alice rows left = %d, %v; want 0 (expired ones too)", left, err)
	}
	if got := list("Alice"); len(got) != 1 {
		t.Errorf("DeleteOwner(alice) touched Alice: %v", got)
	}
	for _, owner := range []string{"", "nobody"} {
		if n, err := s.DeleteOwner(ctx, owner, t0); err != nil || n != 0 {
			t.Errorf("DeleteOwner(%q) = %d, %v; want 0", owner, n, err)
		}
	}
	if _, _, _, found, _ := s.Load(ctx, testID(t, 5), t0); !found {
		t.Error("DeleteOwner(\"\") removed an unowned record")
	}
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, nil)
	ctx := context.Background()
	const writers = 8

	run := func(f func(i int) bool) int {
		var wg sync.WaitGroup
		wins := make(chan int, writers)
		for i := range writers {
			wg.Go(func() {
				if f(i) {
					wins <- i
				}
			})
		}
		wg.Wait()
		close(wins)
		return len(wins)
	}

	id := testID(t, 1)
	created := run(func(i int) bool {
		ok, err := s.Create(ctx, id, []byte{byte(i)}, t0.Add(time.Hour), "", t0)
		if err != nil {
			t.Error(err)
		}
		return ok
	})
	if created != 1 {
		t.Fatalf("%d concurrent Creates of one id succeeded, want 1", created)
	}
	updated := run(func(i int) bool {
		ok, found, err := s.Update(ctx, id, 1, []byte{byte(i)}, t0.Add(time.Hour), "", t0)
		if err != nil || !found {
			t.Errorf("Update = %v, %v, %v; want found", ok, found, err)
		}
		return ok
	})
	if updated != 1 {
		t.Fatalf("%d concurrent Updates of version 1 succeeded, want 1", updated)
	}
	if _, v, _, _, _ := s.Load(ctx, id, t0); v != 2 {
		t.Errorf("version = %d, want 2", v)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := testID(t, 1)
	now := t0
	calls := map[string]func() error{
		"Create": func() error { _, err := s.Create(ctx, id, nil, now.Add(time.Hour), "", now); return err },
		"Load":   func() error { _, _, _, _, err := s.Load(ctx, id, now); return err },
		"Update": func() error { _, _, err := s.Update(ctx, id, 1, nil, now, "", now); return err },
		"Touch":  func() error { _, err := s.Touch(ctx, id, now, now); return err },
		"Delete": func() error { return s.Delete(ctx, id) },
		"DeleteExpired": func() error {
			_, err := s.DeleteExpired(ctx, now)
			return err
		},
		"ListOwner":   func() error { _, err := s.ListOwner(ctx, "o", now); return err },
		"DeleteOwner": func() error { _, err := s.DeleteOwner(ctx, "o", now); return err },
		"CreateTable": func() error { return s.CreateTable(ctx) },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v; want an error wrapping context.Canceled", name, err)
		} else if !strings.HasPrefix(err.Error(), "pgxstore: ") {
			t.Errorf("%s error %q lacks the pgxstore: prefix", name, err)
		}
	}
}

// TestTransaction runs the store on a pgx.Tx: its writes commit or roll
// back with the caller's transaction.
func TestTransaction(t *testing.T) {
	t.Parallel()
	_, p, table := newStore(t, nil)
	ctx := context.Background()
	schema := schemaName(t.Name())
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	s, err := pgxstore.New(tx, &pgxstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t, 1)
	if ok, err := s.Create(ctx, id, []byte("tx"), t0.Add(time.Hour), "", t0); err != nil || !ok {
		t.Fatalf("Create in tx = %v, %v", ok, err)
	}
	if _, _, _, found, err := s.Load(ctx, id, t0); err != nil || !found {
		t.Fatalf("Load in tx = %v, %v", found, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after rollback = %d, %v; want 0", n, err)
	}
}
