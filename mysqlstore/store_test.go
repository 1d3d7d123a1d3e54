package mysqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions/mysqlstore"
)

// t0 is an arbitrary "now": the store compares against the caller's clock
// only, so tests use fixed instants.
var t0 = time.UnixMilli(1_750_000_000_000)

func TestNewValidatesOptions(t *testing.T) {
	db := new(sql.DB) // New does no I/O
	tests := []struct {
		name string
		db   *sql.DB
		opts *mysqlstore.Options
		ok   bool
	}{
		{"nil options", db, nil, true},
		{"zero options", db, &mysqlstore.Options{}, true},
		{"custom", db, &mysqlstore.Options{Table: "My_Sessions2", SweepBatch: 10}, true},
		{"64-char table", db, &mysqlstore.Options{Table: strings.Repeat("t", 64)}, true},
		{"nil db", nil, nil, false},
		{"65-char table", db, &mysqlstore.Options{Table: strings.Repeat("t", 65)}, false},
		{"backquote", db, &mysqlstore.Options{Table: "a`b"}, false},
		{"qualified", db, &mysqlstore.Options{Table: "test.sessions"}, false},
		{"space", db, &mysqlstore.Options{Table: "a b"}, false},
		{"leading digit", db, &mysqlstore.Options{Table: "1sessions"}, false},
		{"injection", db, &mysqlstore.Options{Table: "s; DROP TABLE x"}, false},
		{"non-ASCII", db, &mysqlstore.Options{Table: "séssions"}, false},
		{"negative batch", db, &mysqlstore.Options{SweepBatch: -5}, false},
		{"duty cycle 1", db, &mysqlstore.Options{SweepDutyCycle: 1}, true},
		{"duty cycle 0.1", db, &mysqlstore.Options{SweepDutyCycle: 0.1}, true},
		{"negative duty cycle", db, &mysqlstore.Options{SweepDutyCycle: -0.5}, false},
		{"duty cycle over 1", db, &mysqlstore.Options{SweepDutyCycle: 1.5}, false},
		{"NaN duty cycle", db, &mysqlstore.Options{SweepDutyCycle: math.NaN()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := mysqlstore.New(tt.db, tt.opts)
			if tt.ok {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a store", s, err)
				}
				return
			}
			if !errors.Is(err, mysqlstore.ErrInvalidOptions) || s != nil {
				t.Fatalf("New = %v, %v; want nil and ErrInvalidOptions", s, err)
			}
			if !strings.HasPrefix(err.Error(), "mysqlstore: ") {
				t.Errorf("error %q lacks the mysqlstore: prefix", err)
			}
		})
	}
}

func TestCreateTableIsIdempotent(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	s, table := newStore(t, db, nil)
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? ORDER BY index_name", strings.Trim(table, "`"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	slices.Sort(got)
	if want := []string{"PRIMARY", "expiry_idx", "owner_idx"}; !slices.Equal(got, want) {
		t.Errorf("indexes = %v, want %v", got, want)
	}
}

// TestDDLConstant runs the exported DDL on a database of its own (the DDL
// names the default table) and checks that the store works on it.
func TestDDLConstant(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	ctx := context.Background()
	dbName := tableName(t.Name())
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+dbName+"`"); err != nil {
		t.Skipf("cannot create a database for this test: %v", err)
	}
	t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+dbName+"`") })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The USE below must not leak into the shared pool.
	defer func() { _ = conn.Raw(func(any) error { return errors.New("discard") }) }()
	if _, err := conn.ExecContext(ctx, "USE `"+dbName+"`"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := conn.ExecContext(ctx, mysqlstore.DDL); err != nil {
			t.Fatalf("DDL: %v", err)
		}
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = 'sessions'", dbName).Scan(&n); err != nil || n != 5 {
		t.Fatalf("columns = %d, %v; want 5", n, err)
	}
	var create string
	if err := conn.QueryRowContext(ctx, "SHOW CREATE TABLE `sessions`").Scan(new(string), &create); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"longblob", "binary(32)", "varbinary(255)", "KEY `expiry_idx` (`expiry`)", "KEY `owner_idx` (`owner`,`expiry`)"} {
		if !strings.Contains(create, want) {
			t.Errorf("SHOW CREATE TABLE lacks %q:\n%s", want, create)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	forEachVariant(t, func(t *testing.T, db *sql.DB) {
		s, _ := newStore(t, db, nil)
		ctx := context.Background()
		tests := []struct {
			name  string
			data  []byte
			owner string
		}{
			{"empty", []byte{}, ""},
			{"nil", nil, ""},
			{"text", []byte(`{"user":42}`), "user-42"},
			{"binary with NUL, quotes and invalid UTF-8", []byte{0, 0xff, 0xfe, 0, '\\', '\'', '"'}, "ünïcode owner"},
			{"1 MiB", big, strings.Repeat("o", mysqlstore.MaxOwnerLen)},
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
			if tt.owner != "" {
				if ids, err := s.ListOwner(ctx, tt.owner, t0); err != nil || !slices.Equal(ids, []string{id}) {
					t.Errorf("%s: ListOwner = %v, %v", tt.name, ids, err)
				}
			}
			if len(data) > 0 {
				data[0]++
				again, _, _, _, err := s.Load(ctx, id, t0)
				if err != nil || !bytes.Equal(again, tt.data) {
					t.Errorf("%s: modifying a loaded slice changed the record", tt.name)
				}
			}
		}
	})
}

// TestOversizedWrite checks that data beyond MEDIUMBLOB's 16 MiB is either
// stored whole or refused with an error: never truncated, whatever the
// sql_mode.
func TestOversizedWrite(t *testing.T) {
	t.Parallel()
	db := variantDB(t, variants[3]) // non-strict sql_mode
	s, table := newStore(t, db, nil)
	ctx := context.Background()
	data := bytes.Repeat([]byte{0xab}, 17<<20)
	id := testID(t, 1)
	created, err := s.Create(ctx, id, data, t0.Add(time.Hour), "", t0)
	var rows int
	if qerr := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&rows); qerr != nil {
		t.Fatal(qerr)
	}
	if err != nil {
		if rows != 0 {
			t.Fatalf("failed Create (%v) left %d rows", err, rows)
		}
		if !strings.HasPrefix(err.Error(), "mysqlstore: create: ") {
			t.Errorf("error %q lacks the op prefix", err)
		}
		t.Logf("17 MiB write refused, as max_allowed_packet requires: %v", err)
		return
	}
	got, _, _, found, err := s.Load(ctx, id, t0)
	if !created || !found || err != nil || !bytes.Equal(got, data) {
		t.Fatalf("17 MiB write accepted but not stored whole: created=%v found=%v len=%d err=%v", created, found, len(got), err)
	}
}

func TestOwnerTooLong(t *testing.T) {
	t.Parallel()
	db := variantDB(t, variants[3]) // non-strict mode would truncate
	s, _ := newStore(t, db, nil)
	ctx := context.Background()
	long := strings.Repeat("x", mysqlstore.MaxOwnerLen+1)
	if ok, err := s.Create(ctx, testID(t, 1), nil, t0.Add(time.Hour), long, t0); !errors.Is(err, mysqlstore.ErrOwnerTooLong) || ok {
		t.Errorf("Create with a %d-byte owner = %v, %v; want ErrOwnerTooLong", len(long), ok, err)
	}
	if _, err := s.Create(ctx, testID(t, 2), nil, t0.Add(time.Hour), "o", t0); err != nil {
		t.Fatal(err)
	}
	if ok, found, err := s.Update(ctx, testID(t, 2), 1, nil, t0.Add(time.Hour), long, t0); !errors.Is(err, mysqlstore.ErrOwnerTooLong) || ok || found {
		t.Errorf("Update with a long owner = %v, %v, %v; want ErrOwnerTooLong", ok, found, err)
	}
	// The truncated prefix must not match.
	if ids, err := s.ListOwner(ctx, long[:mysqlstore.MaxOwnerLen], t0); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner(prefix) = %v, %v", ids, err)
	}
	if ids, err := s.ListOwner(ctx, long, t0); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner(long) = %v, %v", ids, err)
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, db *sql.DB) {
		s, _ := newStore(t, db, nil)
		ctx := context.Background()
		id := testID(t, 1)

		if created, err := s.Create(ctx, id, []byte("first"), t0.Add(time.Minute), "alice", t0); err != nil || !created {
			t.Fatalf("Create = %v, %v; want true", created, err)
		}
		// A live record is never overwritten, not even by identical values.
		for _, attempt := range []struct {
			data   string
			expiry time.Time
			owner  string
		}{{"second", t0.Add(time.Hour), "mallory"}, {"first", t0.Add(time.Minute), "alice"}} {
			if created, err := s.Create(ctx, id, []byte(attempt.data), attempt.expiry, attempt.owner, t0); err != nil || created {
				t.Fatalf("Create over live record = %v, %v; want false, nil", created, err)
			}
		}
		data, _, expiry, found, err := s.Load(ctx, id, t0)
		if err != nil || !found || string(data) != "first" || !expiry.Equal(t0.Add(time.Minute)) {
			t.Fatalf("after refused Create: Load = %q, %v, %v, %v", data, expiry, found, err)
		}
		if ids, err := s.ListOwner(ctx, "mallory", t0); err != nil || len(ids) != 0 {
			t.Fatalf("refused Create indexed its owner: %v, %v", ids, err)
		}

		// Bump the version, then let the record expire: exactly at its
		// expiry it counts as absent and is replaced, with version 1 again.
		if updated, _, err := s.Update(ctx, id, 1, []byte("v2"), t0.Add(time.Minute), "alice", t0); err != nil || !updated {
			t.Fatalf("Update = %v, %v", updated, err)
		}
		later := t0.Add(time.Minute)
		if created, err := s.Create(ctx, id, []byte("third"), later.Add(time.Hour), "bob", later); err != nil || !created {
			t.Fatalf("Create over expired record = %v, %v; want true", created, err)
		}
		data, version, exp, found, err := s.Load(ctx, id, later)
		if err != nil || !found || string(data) != "third" || version != 1 || !exp.Equal(later.Add(time.Hour)) {
			t.Fatalf("replaced record: Load = %q, v%d, %v, %v, %v; want third, v1", data, version, exp, found, err)
		}
		if ids, _ := s.ListOwner(ctx, "alice", later); len(ids) != 0 {
			t.Errorf("old owner still lists the replaced record: %v", ids)
		}
		if ids, _ := s.ListOwner(ctx, "bob", later); !slices.Equal(ids, []string{id}) {
			t.Errorf("ListOwner(bob) = %v, want [%s]", ids, id)
		}
		// A fresh insert right after a refused one on the same pooled
		// connections must still read as created.
		for i := 2; i < 6; i++ {
			if created, err := s.Create(ctx, id, nil, later.Add(time.Hour), "", later); err != nil || created {
				t.Fatalf("Create over live record = %v, %v", created, err)
			}
			if created, err := s.Create(ctx, testID(t, i), nil, later.Add(time.Hour), "", later); err != nil || !created {
				t.Fatalf("Create of new id after a refused Create = %v, %v", created, err)
			}
		}
	})
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, db *sql.DB) {
		s, table := newStore(t, db, nil)
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
				data    []byte
				version int64
				expiry  int64
				owner   sql.NullString
			)
			err = db.QueryRowContext(ctx, "SELECT data, version, expiry, owner FROM "+table+" WHERE id = ?", unhex(id)).Scan(&data, &version, &expiry, &owner)
			if !tt.seed {
				if !errors.Is(err, sql.ErrNoRows) {
					t.Errorf("%s: Update created a record (%v)", tt.name, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if tt.wantUpdated {
				if string(data) != "new" || version != 2 || expiry != t0.Add(2*time.Hour).UnixMilli() || owner.String != "o2" {
					t.Errorf("%s: row = %q v%d exp %d owner %v; want new v2", tt.name, data, version, expiry, owner)
				}
			} else if string(data) != "old" || version != 1 || expiry != tt.seedExpiry.UnixMilli() || owner.String != "o1" {
				t.Errorf("%s: failed Update wrote: %q v%d exp %d owner %v", tt.name, data, version, expiry, owner)
			}
		}

		// Successive updates keep counting, even when nothing but the
		// version changes; the empty owner stores NULL.
		id := testID(t, 100)
		if _, err := s.Create(ctx, id, nil, exp, "x", t0); err != nil {
			t.Fatal(err)
		}
		for v := int64(1); v <= 3; v++ {
			if updated, found, err := s.Update(ctx, id, v, []byte{7}, exp, "", t0); err != nil || !updated || !found {
				t.Fatalf("update from v%d = %v, %v, %v", v, updated, found, err)
			}
		}
		data, version, _, _, _ := s.Load(ctx, id, t0)
		if version != 4 || !bytes.Equal(data, []byte{7}) {
			t.Errorf("after 3 updates: v%d %v; want v4 [7]", version, data)
		}
		var owner sql.NullString
		if err := db.QueryRowContext(ctx, "SELECT owner FROM "+table+" WHERE id = ?", unhex(id)).Scan(&owner); err != nil || owner.Valid {
			t.Errorf("empty owner stored as %v (%v), want NULL", owner, err)
		}
	})
}

func TestTouch(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, db *sql.DB) {
		s, _ := newStore(t, db, nil)
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
		for range 3 { // absent, after found touches on the same pool
			if found, err := s.Touch(ctx, testID(t, 2), exp, t0); err != nil || found {
				t.Errorf("Touch(absent) = %v, %v; want false, nil", found, err)
			}
			if found, err := s.Touch(ctx, id, exp, t0); err != nil || !found {
				t.Errorf("Touch(live) = %v, %v; want true, nil", found, err)
			}
		}
		if _, _, _, found, _ := s.Load(ctx, testID(t, 2), t0); found {
			t.Error("Touch created a record")
		}
	})
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, testDB(t), nil)
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
	db := testDB(t)
	s, table := newStore(t, db, nil)
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
		if created, err := s.Create(ctx, id, []byte("x"), t0.Add(time.Hour), "", t0); !errors.Is(err, mysqlstore.ErrInvalidID) || created {
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
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 1 {
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
		name                 string
		expired, live, batch int
	}{
		{"10 expired, batch 3", 10, 4, 3},
		{"9 expired, batch 3", 9, 2, 3},
		{"none expired", 0, 3, 3},
		{"default batch", 5, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := testDB(t)
			s, table := newStore(t, db, &mysqlstore.Options{SweepBatch: tt.batch})
			ctx := context.Background()
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
			n, err := s.DeleteExpired(ctx, now)
			if err != nil || n != tt.expired {
				t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, tt.expired)
			}
			ids, err := s.ListOwner(ctx, "o", now)
			slices.Sort(ids)
			slices.Sort(liveIDs)
			if err != nil || !slices.Equal(ids, liveIDs) {
				t.Errorf("live records after sweep = %v, %v; want %v", ids, err, liveIDs)
			}
			var rows int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&rows); err != nil || rows != tt.live {
				t.Errorf("rows after sweep = %d, %v; want %d", rows, err, tt.live)
			}
			if n, err := s.DeleteExpired(ctx, now); n != 0 || err != nil {
				t.Errorf("second sweep = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestDeleteExpiredStatementCount checks that DeleteExpired works in
// bounded batches: on a pool of one connection, the server's per-session
// Com_stmt_execute counter tells how many statements a sweep ran.
func TestDeleteExpiredStatementCount(t *testing.T) {
	t.Parallel()
	testDB(t) // skip when unreachable
	db, err := sql.Open("mysql", baseDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() }) // after newStore's cleanup
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s, _ := newStore(t, db, &mysqlstore.Options{SweepBatch: 4})
	ctx := context.Background()
	for i := range 10 {
		if _, err := s.Create(ctx, testID(t, i), nil, t0.Add(-time.Minute), "", t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	executed := func() int {
		t.Helper()
		var name string
		var n int
		if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Com_stmt_execute'").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := executed()
	if n, err := s.DeleteExpired(ctx, t0); err != nil || n != 10 {
		t.Fatalf("DeleteExpired = %d, %v; want 10", n, err)
	}
	// Per batch, a SELECT of the expiry the batch ends at, then the
	// DELETE: 4 + 4 + 2 rows.
	if got := executed() - before; got != 6 {
		t.Errorf("DeleteExpired ran %d statements for 10 rows in batches of 4, want 6 (3 batches)", got)
	}
}

func TestOwnerIndex(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, db *sql.DB) {
		s, table := newStore(t, db, nil)
		ctx := context.Background()
		live, dead := t0.Add(time.Hour), t0.Add(-time.Hour)
		records := []struct {
			owner  string
			expiry time.Time
		}{
			{"alice", live}, {"alice", live}, {"alice", dead}, {"Alice", live}, {"alice ", live}, {"", live}, {"bob", live}, {"ALİCE", live},
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
			"ALİCE":  {testID(t, 7)},
			"":       {},
			"carol":  {},
		} {
			if got := list(owner); !slices.Equal(got, want) {
				t.Errorf("ListOwner(%q) = %v, want %v", owner, got, want)
			}
		}

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
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table+" WHERE owner = 'alice'").Scan(&left); err != nil || left != 0 {
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
	})
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, db *sql.DB) {
		s, _ := newStore(t, db, nil)
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
		for round := range 3 {
			id := testID(t, round)
			now := t0
			if round == 2 {
				// Replace an expired record concurrently: still one winner.
				if _, err := s.Create(ctx, id, nil, t0, "", t0.Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			created := run(func(i int) bool {
				ok, err := s.Create(ctx, id, []byte{byte(i)}, now.Add(time.Hour), "", now)
				if err != nil {
					t.Error(err)
				}
				return ok
			})
			if created != 1 {
				t.Fatalf("round %d: %d concurrent Creates of one id succeeded, want 1", round, created)
			}
			updated := run(func(i int) bool {
				ok, found, err := s.Update(ctx, id, 1, []byte{byte(i)}, now.Add(time.Hour), "", now)
				if err != nil || !found {
					t.Errorf("Update = %v, %v, %v; want found", ok, found, err)
				}
				return ok
			})
			if updated != 1 {
				t.Fatalf("round %d: %d concurrent Updates of version 1 succeeded, want 1", round, updated)
			}
			if _, v, _, _, _ := s.Load(ctx, id, now); v != 2 {
				t.Errorf("version = %d, want 2", v)
			}
		}
	})
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, testDB(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := testID(t, 1)
	now := t0
	calls := map[string]func() error{
		"Create":        func() error { _, err := s.Create(ctx, id, nil, now.Add(time.Hour), "", now); return err },
		"Load":          func() error { _, _, _, _, err := s.Load(ctx, id, now); return err },
		"Update":        func() error { _, _, err := s.Update(ctx, id, 1, nil, now, "", now); return err },
		"Touch":         func() error { _, err := s.Touch(ctx, id, now, now); return err },
		"Delete":        func() error { return s.Delete(ctx, id) },
		"DeleteExpired": func() error { _, err := s.DeleteExpired(ctx, now); return err },
		"ListOwner":     func() error { _, err := s.ListOwner(ctx, "o", now); return err },
		"DeleteOwner":   func() error { _, err := s.DeleteOwner(ctx, "o", now); return err },
		"CreateTable":   func() error { return s.CreateTable(ctx) },
	}
	for round := range 2 { // before and after the statements are prepared
		for name, call := range calls {
			err := call()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("round %d: %s with a canceled context = %v; want an error wrapping context.Canceled", round, name, err)
			} else if !strings.HasPrefix(err.Error(), "mysqlstore: ") {
				t.Errorf("%s error %q lacks the mysqlstore: prefix", name, err)
			}
		}
		// Prepare every statement.
		bg := context.Background()
		_, _ = s.Create(bg, id, nil, now.Add(time.Hour), "o", now)
		_, _, _, _, _ = s.Load(bg, id, now)
		_, _, _ = s.Update(bg, id, 1, nil, now.Add(time.Hour), "o", now)
		_, _ = s.Touch(bg, id, now.Add(time.Hour), now)
		_, _ = s.DeleteExpired(bg, now)
		_, _ = s.ListOwner(bg, "o", now)
		_, _ = s.DeleteOwner(bg, "o", now)
		_ = s.Delete(bg, id)
	}
}

// TestCloseAndReuse checks that Close releases the prepared statements and
// that the store prepares them again on the next call.
func TestCloseAndReuse(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, testDB(t), nil)
	ctx := context.Background()
	id := testID(t, 1)
	if ok, err := s.Create(ctx, id, []byte("a"), t0.Add(time.Hour), "", t0); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if data, _, _, found, err := s.Load(ctx, id, t0); err != nil || !found || string(data) != "a" {
		t.Fatalf("Load after Close = %q, %v, %v", data, found, err)
	}
}

// TestMissingTable checks that a store used before CreateTable returns an
// error (not "not found") and recovers once the table exists.
func TestMissingTable(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	table := tableName(t.Name())
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS `"+table+"`"); err != nil {
		t.Fatal(err)
	}
	s, err := mysqlstore.New(db, &mysqlstore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS `"+table+"`")
	})
	id := testID(t, 1)
	if _, _, _, found, err := s.Load(ctx, id, t0); err == nil || found {
		t.Fatalf("Load without a table = %v, %v; want an error", found, err)
	}
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Create(ctx, id, nil, t0.Add(time.Hour), "", t0); err != nil || !ok {
		t.Fatalf("Create after CreateTable = %v, %v", ok, err)
	}
	if _, _, _, found, err := s.Load(ctx, id, t0); err != nil || !found {
		t.Fatalf("Load after CreateTable = %v, %v", found, err)
	}
}
