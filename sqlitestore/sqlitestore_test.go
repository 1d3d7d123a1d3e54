package sqlitestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/sqlitestore"
	_ "modernc.org/sqlite"
)

// The store implements the contract and both optional capabilities.
var (
	_ sessions.Store          = (*sqlitestore.Store)(nil)
	_ sessions.ExpiredDeleter = (*sqlitestore.Store)(nil)
	_ sessions.OwnerIndex     = (*sqlitestore.Store)(nil)
)

// pragmas is the DSN suffix the package documentation recommends.
const pragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"

// dsn returns the modernc.org/sqlite DSN of a database file at path with the
// recommended pragmas.
func dsn(path string) string { return "file:" + path + "?" + pragmas }

// openDB opens a fresh database file in t.TempDir and closes it at cleanup.
func openDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sessions.db")
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// dbPath returns the file of the main database of db.
func dbPath(t testing.TB, db *sql.DB) string {
	t.Helper()
	var seq int
	var name, file string
	if err := db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

// newStore returns a store with its table created in a fresh database file.
func newStore(t testing.TB, opts *sqlitestore.Options) (*sqlitestore.Store, *sql.DB) {
	t.Helper()
	db, _ := openDB(t)
	s, err := sqlitestore.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, db
}

// id returns a well-formed session id derived from name.
func id(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

var t0 = time.UnixMilli(1_750_000_000_000)

func TestDDLMatchesDefaultTable(t *testing.T) {
	db, _ := openDB(t)
	s, err := sqlitestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.DDL() != sqlitestore.DDL {
		t.Errorf("DDL() for the default table differs from the DDL constant:\n%s\nvs\n%s", s.DDL(), sqlitestore.DDL)
	}
	if s.Table() != sqlitestore.DefaultTableName {
		t.Errorf("Table() = %q, want %q", s.Table(), sqlitestore.DefaultTableName)
	}
	other, err := sqlitestore.New(db, &sqlitestore.Options{Table: "app_sessions"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(other.DDL(), `"sessions`) || !strings.Contains(other.DDL(), `"app_sessions_owner"`) {
		t.Errorf("DDL() for table app_sessions still names the default table or lacks its index:\n%s", other.DDL())
	}
}

func TestNewValidatesOptions(t *testing.T) {
	db, _ := openDB(t)
	tests := []struct {
		name string
		opts *sqlitestore.Options
		want error // nil: New must succeed
	}{
		{"nil options", nil, nil},
		{"zero options", &sqlitestore.Options{}, nil},
		{"plain name", &sqlitestore.Options{Table: "web_sessions"}, nil},
		{"leading underscore", &sqlitestore.Options{Table: "_s1"}, nil},
		{"55 characters", &sqlitestore.Options{Table: strings.Repeat("a", 55)}, nil},
		{"positive batch", &sqlitestore.Options{SweepBatch: 10}, nil},
		{"56 characters", &sqlitestore.Options{Table: strings.Repeat("a", 56)}, sqlitestore.ErrInvalidTableName},
		{"leading digit", &sqlitestore.Options{Table: "1sessions"}, sqlitestore.ErrInvalidTableName},
		{"quote", &sqlitestore.Options{Table: `s"; DROP TABLE x; --`}, sqlitestore.ErrInvalidTableName},
		{"dot", &sqlitestore.Options{Table: "main.sessions"}, sqlitestore.ErrInvalidTableName},
		{"space", &sqlitestore.Options{Table: "my sessions"}, sqlitestore.ErrInvalidTableName},
		{"hyphen", &sqlitestore.Options{Table: "my-sessions"}, sqlitestore.ErrInvalidTableName},
		{"non-ASCII", &sqlitestore.Options{Table: "séssions"}, sqlitestore.ErrInvalidTableName},
		{"reserved prefix", &sqlitestore.Options{Table: "sqlite_sessions"}, sqlitestore.ErrInvalidTableName},
		{"reserved prefix upper case", &sqlitestore.Options{Table: "SQLITE_x"}, sqlitestore.ErrInvalidTableName},
		{"negative batch", &sqlitestore.Options{SweepBatch: -1}, sqlitestore.ErrInvalidOptions},
		{"duty cycle 1", &sqlitestore.Options{SweepDutyCycle: 1}, nil},
		{"duty cycle 0.1", &sqlitestore.Options{SweepDutyCycle: 0.1}, nil},
		{"negative duty cycle", &sqlitestore.Options{SweepDutyCycle: -0.5}, sqlitestore.ErrInvalidOptions},
		{"duty cycle over 1", &sqlitestore.Options{SweepDutyCycle: 1.5}, sqlitestore.ErrInvalidOptions},
		{"NaN duty cycle", &sqlitestore.Options{SweepDutyCycle: math.NaN()}, sqlitestore.ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlitestore.New(db, tt.opts)
			if tt.want == nil {
				if err != nil || s == nil {
					t.Fatalf("New(%+v) = %v, %v; want a store", tt.opts, s, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || s != nil {
				t.Fatalf("New(%+v) = %v, %v; want an error wrapping %v", tt.opts, s, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "sqlitestore: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := sqlitestore.New(nil, nil); !errors.Is(err, sqlitestore.ErrInvalidOptions) {
		t.Errorf("New(nil, nil) error = %v, want ErrInvalidOptions", err)
	}
}

func TestCustomTablesAreIsolated(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	a, err := sqlitestore.New(db, &sqlitestore.Options{Table: "tenant_a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sqlitestore.New(db, &sqlitestore.Options{Table: "tenant_b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*sqlitestore.Store{a, b} {
		for range 2 { // CreateTable is idempotent
			if err := s.CreateTable(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ok, err := a.Create(ctx, id("x"), []byte("a"), t0.Add(time.Hour), "u", t0); !ok || err != nil {
		t.Fatalf("Create in tenant_a = %v, %v", ok, err)
	}
	if _, _, _, found, err := b.Load(ctx, id("x"), t0); found || err != nil {
		t.Fatalf("Load in tenant_b = found %v, %v; want absent", found, err)
	}
	if ok, err := b.Create(ctx, id("x"), []byte("b"), t0.Add(time.Hour), "u", t0); !ok || err != nil {
		t.Fatalf("Create of the same id in tenant_b = %v, %v", ok, err)
	}
	data, _, _, _, err := a.Load(ctx, id("x"), t0)
	if err != nil || string(data) != "a" {
		t.Fatalf("Load in tenant_a = %q, %v; want %q", data, err, "a")
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tenant_b'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("tenant_b has %d secondary indexes, want 2 (expiry, owner)", n)
	}
}

func TestCreateTableRequiresBusyTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := sqlitestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); !errors.Is(err, sqlitestore.ErrNoBusyTimeout) {
		t.Fatalf("CreateTable without busy_timeout: error = %v, want ErrNoBusyTimeout", err)
	}
}

func TestCreateTableSwitchesToWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollback.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "delete" {
		t.Fatalf("fresh file journal_mode = %q, %v; want delete", mode, err)
	}
	s, err := sqlitestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	// WAL is a property of the file: a brand new connection sees it.
	db2, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode after CreateTable = %q, %v; want wal", mode, err)
	}
}

func TestInMemoryDatabase(t *testing.T) {
	db, err := sql.Open("sqlite", "file::memory:?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // every connection would get its own empty database
	s, err := sqlitestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Create(ctx, id("m"), []byte("mem"), t0.Add(time.Minute), "", t0); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if data, _, _, found, err := s.Load(ctx, id("m"), t0); !found || err != nil || string(data) != "mem" {
		t.Fatalf("Load = %q, %v, %v", data, found, err)
	}
}

// TestOperations checks the SQL of every operation on one row, step by step,
// including the raw row contents.
func TestOperations(t *testing.T) {
	t.Parallel()
	s, db := newStore(t, nil)
	ctx := context.Background()
	k := id("ops")
	exp := t0.Add(30 * time.Minute)

	if ok, err := s.Create(ctx, k, []byte("v1"), exp, "alice", t0); !ok || err != nil {
		t.Fatalf("Create = %v, %v; want created", ok, err)
	}
	if ok, err := s.Create(ctx, k, []byte("other"), exp.Add(time.Hour), "bob", t0); ok || err != nil {
		t.Fatalf("second Create of a live id = %v, %v; want false, nil", ok, err)
	}
	data, ver, gotExp, found, err := s.Load(ctx, k, t0)
	if !found || err != nil || string(data) != "v1" || ver != 1 || !gotExp.Equal(exp) {
		t.Fatalf("Load = %q, %d, %v, %v, %v; want v1, 1, %v, true, nil", data, ver, gotExp, found, err, exp)
	}

	// The row holds the raw 32-byte id, Unix ms and the owner.
	raw, _ := hex.DecodeString(k)
	var (
		rowOwner  sql.NullString
		rowExpiry int64
	)
	if err := db.QueryRow(`SELECT owner, expiry FROM sessions WHERE id = ?`, raw).Scan(&rowOwner, &rowExpiry); err != nil {
		t.Fatal(err)
	}
	if rowOwner.String != "alice" || rowExpiry != exp.UnixMilli() {
		t.Errorf("row = owner %v, expiry %d; want alice, %d", rowOwner, rowExpiry, exp.UnixMilli())
	}

	// Update with a stale version: changed, not written.
	if up, fnd, err := s.Update(ctx, k, 7, []byte("stale"), exp, "alice", t0); up || !fnd || err != nil {
		t.Fatalf("Update with wrong version = %v, %v, %v; want false, true, nil", up, fnd, err)
	}
	// Update with the right version, removing the owner.
	exp2 := exp.Add(time.Minute)
	if up, fnd, err := s.Update(ctx, k, 1, []byte("v2"), exp2, "", t0); !up || !fnd || err != nil {
		t.Fatalf("Update = %v, %v, %v; want true, true, nil", up, fnd, err)
	}
	if err := db.QueryRow(`SELECT owner FROM sessions WHERE id = ?`, raw).Scan(&rowOwner); err != nil {
		t.Fatal(err)
	}
	if rowOwner.Valid {
		t.Errorf("owner after Update with \"\" = %v, want NULL", rowOwner)
	}
	data, ver, gotExp, _, _ = s.Load(ctx, k, t0)
	if string(data) != "v2" || ver != 2 || !gotExp.Equal(exp2) {
		t.Fatalf("Load after Update = %q, %d, %v", data, ver, gotExp)
	}

	// Touch never moves the expiry earlier and leaves version and data.
	if fnd, err := s.Touch(ctx, k, exp2.Add(-time.Minute), t0); !fnd || err != nil {
		t.Fatalf("Touch earlier = %v, %v", fnd, err)
	}
	if _, ver, gotExp, _, _ = s.Load(ctx, k, t0); !gotExp.Equal(exp2) || ver != 2 {
		t.Fatalf("after an earlier Touch: expiry %v version %d; want %v, 2", gotExp, ver, exp2)
	}
	exp3 := exp2.Add(time.Hour)
	if fnd, err := s.Touch(ctx, k, exp3, t0); !fnd || err != nil {
		t.Fatalf("Touch later = %v, %v", fnd, err)
	}
	if data, ver, gotExp, _, _ = s.Load(ctx, k, t0); !gotExp.Equal(exp3) || ver != 2 || string(data) != "v2" {
		t.Fatalf("after a later Touch: %q, version %d, expiry %v", data, ver, gotExp)
	}

	// At its expiry the record is gone for every operation.
	if _, _, _, fnd, err := s.Load(ctx, k, exp3); fnd || err != nil {
		t.Fatalf("Load at expiry = %v, %v; want absent", fnd, err)
	}
	if fnd, err := s.Touch(ctx, k, exp3.Add(time.Hour), exp3); fnd || err != nil {
		t.Fatalf("Touch at expiry = %v, %v; want absent", fnd, err)
	}
	if up, fnd, err := s.Update(ctx, k, 2, []byte("late"), exp3.Add(time.Hour), "", exp3); up || fnd || err != nil {
		t.Fatalf("Update at expiry = %v, %v, %v; want gone", up, fnd, err)
	}
	// Create replaces the expired row, starting again at version 1.
	if ok, err := s.Create(ctx, k, []byte("fresh"), exp3.Add(time.Hour), "carol", exp3); !ok || err != nil {
		t.Fatalf("Create over an expired row = %v, %v", ok, err)
	}
	if data, ver, _, _, _ = s.Load(ctx, k, exp3); string(data) != "fresh" || ver != 1 {
		t.Fatalf("after re-create: %q, version %d; want fresh, 1", data, ver)
	}

	// Delete is idempotent.
	for range 2 {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, fnd, _ := s.Load(ctx, k, exp3); fnd {
		t.Fatal("Load after Delete found the record")
	}
	if up, fnd, err := s.Update(ctx, k, 1, []byte("x"), exp3.Add(time.Hour), "", exp3); up || fnd || err != nil {
		t.Fatalf("Update after Delete = %v, %v, %v; want gone", up, fnd, err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after Delete and Update = %d, %v; Update must not create", n, err)
	}
}

func TestEmptyAndBinaryData(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"empty", []byte{}, []byte{}},
		{"nil stored as empty", nil, []byte{}},
		{"every byte value", all, all},
		{"NUL bytes", []byte{0, 0, 0}, []byte{0, 0, 0}},
		{"large", bytes.Repeat([]byte("x"), 1<<20), bytes.Repeat([]byte("x"), 1<<20)},
	}
	for _, tt := range tests {
		k := id(tt.name)
		if ok, err := s.Create(ctx, k, tt.in, t0.Add(time.Hour), "", t0); !ok || err != nil {
			t.Fatalf("%s: Create = %v, %v", tt.name, ok, err)
		}
		data, _, _, found, err := s.Load(ctx, k, t0)
		if !found || err != nil || data == nil || !bytes.Equal(data, tt.want) {
			t.Fatalf("%s: Load = %d bytes (nil: %v), %v, %v", tt.name, len(data), data == nil, found, err)
		}
		if up, _, err := s.Update(ctx, k, 1, tt.in, t0.Add(time.Hour), "", t0); !up || err != nil {
			t.Fatalf("%s: Update = %v, %v", tt.name, up, err)
		}
		if data, _, _, _, _ = s.Load(ctx, k, t0); data == nil || !bytes.Equal(data, tt.want) {
			t.Fatalf("%s: Load after Update = %d bytes (nil: %v)", tt.name, len(data), data == nil)
		}
	}
}

func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	s, db := newStore(t, nil)
	ctx := context.Background()
	good := id("good")
	if ok, err := s.Create(ctx, good, []byte("d"), t0.Add(time.Hour), "u", t0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	bad := []string{
		"",
		"abc",
		strings.ToUpper(good),     // upper case is not the Manager's format
		good[:63] + "g",           // not hex
		good + "00",               // too long
		"' OR 1=1 --" + good[11:], // 64 characters of SQL
	}
	for _, k := range bad {
		if ok, err := s.Create(ctx, k, []byte("x"), t0.Add(time.Hour), "", t0); ok || !errors.Is(err, sqlitestore.ErrInvalidID) {
			t.Errorf("Create(%q) = %v, %v; want ErrInvalidID", k, ok, err)
		}
		if _, _, _, found, err := s.Load(ctx, k, t0); found || err != nil {
			t.Errorf("Load(%q) = %v, %v; want absent", k, found, err)
		}
		if up, found, err := s.Update(ctx, k, 1, []byte("x"), t0.Add(time.Hour), "", t0); up || found || err != nil {
			t.Errorf("Update(%q) = %v, %v, %v; want gone", k, up, found, err)
		}
		if found, err := s.Touch(ctx, k, t0.Add(2*time.Hour), t0); found || err != nil {
			t.Errorf("Touch(%q) = %v, %v; want absent", k, found, err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q) = %v", k, err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d, %v; want only the good one", n, err)
	}
}

func TestOwnerIndex(t *testing.T) {
	t.Parallel()
	s, db := newStore(t, nil)
	ctx := context.Background()
	mk := func(name, owner string, exp time.Time) string {
		k := id(name)
		if ok, err := s.Create(ctx, k, []byte(name), exp, owner, t0); !ok || err != nil {
			t.Fatalf("Create %s = %v, %v", name, ok, err)
		}
		return k
	}
	a1 := mk("a1", "alice", t0.Add(time.Hour))
	a2 := mk("a2", "alice", t0.Add(2*time.Hour))
	a3 := mk("a3", "alice", t0.Add(time.Minute)) // expired at t0+1m
	mk("b1", "bob", t0.Add(time.Hour))
	mk("n1", "", t0.Add(time.Hour))
	later := t0.Add(time.Minute)

	ids, err := s.ListOwner(ctx, "alice", t0)
	slices.Sort(ids)
	want := []string{a1, a2, a3}
	slices.Sort(want)
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("ListOwner(alice, t0) = %v, %v; want %v", ids, err, want)
	}
	ids, err = s.ListOwner(ctx, "alice", later)
	slices.Sort(ids)
	want = []string{a1, a2}
	slices.Sort(want)
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("ListOwner(alice, later) = %v, %v; want %v", ids, err, want)
	}
	for _, owner := range []string{"", "nobody", "ALICE"} {
		if ids, err := s.ListOwner(ctx, owner, t0); err != nil || ids == nil || len(ids) != 0 {
			t.Errorf("ListOwner(%q) = %#v, %v; want an empty non-nil list", owner, ids, err)
		}
	}

	// Moving a session to another owner moves it in the index.
	if up, _, err := s.Update(ctx, a2, 1, []byte("a2"), t0.Add(2*time.Hour), "bob", later); !up || err != nil {
		t.Fatal(up, err)
	}
	if ids, _ := s.ListOwner(ctx, "alice", later); !slices.Equal(ids, []string{a1}) {
		t.Fatalf("ListOwner(alice) after re-owning a2 = %v, want [%s]", ids, a1)
	}

	// The query uses the owner index.
	var plan strings.Builder
	rows, err := db.Query(`EXPLAIN QUERY PLAN SELECT id FROM "sessions" WHERE owner = ? AND expiry > ?`, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, b, c any
		var detail string
		if err := rows.Scan(&a, &b, &c, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "sessions_owner") {
		t.Errorf("ListOwner's query does not use the owner index; plan:\n%s", plan.String())
	}

	// DeleteOwner counts only live records but removes expired ones too.
	if n, err := s.DeleteOwner(ctx, "alice", later); n != 1 || err != nil {
		t.Fatalf("DeleteOwner(alice) = %d, %v; want 1 (a1 live, a3 expired)", n, err)
	}
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM sessions WHERE owner = 'alice'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("alice rows left = %d, %v", left, err)
	}
	if n, err := s.DeleteOwner(ctx, "", later); n != 0 || err != nil {
		t.Fatalf("DeleteOwner(\"\") = %d, %v", n, err)
	}
	if _, _, _, found, _ := s.Load(ctx, id("n1"), later); !found {
		t.Fatal("DeleteOwner(\"\") removed an unowned session")
	}
	if n, err := s.DeleteOwner(ctx, "bob", later); n != 2 || err != nil {
		t.Fatalf("DeleteOwner(bob) = %d, %v; want 2", n, err)
	}
}

func TestDeleteExpiredBatches(t *testing.T) {
	t.Parallel()
	s, db := newStore(t, &sqlitestore.Options{SweepBatch: 7})
	ctx := context.Background()
	const expired, live = 50, 5
	for i := range expired + live {
		exp := t0.Add(time.Duration(i+1) * time.Millisecond) // expired at t0+50ms for i < 50
		if i >= expired {
			exp = t0.Add(time.Hour)
		}
		if ok, err := s.Create(ctx, id(fmt.Sprint(i)), []byte{byte(i)}, exp, "", t0); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	now := t0.Add(expired * time.Millisecond) // the 50th expiry is exactly now: expired
	n, err := s.DeleteExpired(ctx, now)
	if n != expired || err != nil {
		t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, expired)
	}
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&left); err != nil || left != live {
		t.Fatalf("rows left = %d, %v; want %d live", left, err, live)
	}
	if n, err := s.DeleteExpired(ctx, now); n != 0 || err != nil {
		t.Fatalf("second DeleteExpired = %d, %v", n, err)
	}

	// The batch statement uses the expiry index.
	var detail string
	rows, err := db.Query(`EXPLAIN QUERY PLAN SELECT id FROM "sessions" WHERE expiry <= ? ORDER BY expiry LIMIT ?`, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var a, b, c any
		if err := rows.Scan(&a, &b, &c, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "sessions_expiry") {
		t.Errorf("the sweep does not use the expiry index; plan:\n%s", plan.String())
	}
}

func TestMillisecondPrecision(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	k := id("precise")
	exp := t0.Add(10*time.Millisecond + 700*time.Microsecond)
	if ok, err := s.Create(ctx, k, nil, exp, "", t0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	_, _, got, _, err := s.Load(ctx, k, t0)
	if err != nil || !got.Equal(exp.Truncate(time.Millisecond)) {
		t.Fatalf("Load expiry = %v, %v; want %v", got, err, exp.Truncate(time.Millisecond))
	}
	if _, _, _, found, _ := s.Load(ctx, k, t0.Add(9*time.Millisecond+999*time.Microsecond)); !found {
		t.Fatal("record expired a millisecond early")
	}
	if _, _, _, found, _ := s.Load(ctx, k, t0.Add(10*time.Millisecond)); found {
		t.Fatal("record live at its (truncated) expiry")
	}
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	k := id("ctx")
	if ok, err := s.Create(context.Background(), k, []byte("d"), t0.Add(time.Hour), "o", t0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "sqlitestore: ") {
			t.Errorf("%s with a cancelled context: error = %v, want a wrapped context.Canceled", op, err)
		}
	}
	_, err := s.Create(ctx, id("ctx2"), []byte("d"), t0.Add(time.Hour), "", t0)
	check("Create", err)
	_, _, _, _, err = s.Load(ctx, k, t0)
	check("Load", err)
	_, _, err = s.Update(ctx, k, 1, []byte("e"), t0.Add(time.Hour), "", t0)
	check("Update", err)
	_, err = s.Touch(ctx, k, t0.Add(2*time.Hour), t0)
	check("Touch", err)
	check("Delete", s.Delete(ctx, k))
	_, err = s.DeleteExpired(ctx, t0)
	check("DeleteExpired", err)
	_, err = s.ListOwner(ctx, "o", t0)
	check("ListOwner", err)
	_, err = s.DeleteOwner(ctx, "o", t0)
	check("DeleteOwner", err)
	check("CreateTable", s.CreateTable(ctx))

	// Nothing was changed by the cancelled calls.
	data, ver, _, found, err := s.Load(context.Background(), k, t0)
	if !found || err != nil || string(data) != "d" || ver != 1 {
		t.Fatalf("record after cancelled calls = %q, %d, %v, %v", data, ver, found, err)
	}
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "persist.db")
	ctx := context.Background()
	k := id("persist")
	exp := t0.Add(time.Hour)
	{
		db, err := sql.Open("sqlite", dsn(path))
		if err != nil {
			t.Fatal(err)
		}
		s, err := sqlitestore.New(db, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTable(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Create(ctx, k, []byte("kept"), exp, "owner", t0); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if up, _, err := s.Update(ctx, k, 1, []byte("kept v2"), exp, "owner", t0); !up || err != nil {
			t.Fatal(up, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := sqlitestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx); err != nil { // idempotent on an existing table
		t.Fatal(err)
	}
	data, ver, gotExp, found, err := s.Load(ctx, k, t0)
	if !found || err != nil || string(data) != "kept v2" || ver != 2 || !gotExp.Equal(exp) {
		t.Fatalf("Load after reopening = %q, %d, %v, %v, %v", data, ver, gotExp, found, err)
	}
	if ids, err := s.ListOwner(ctx, "owner", t0); err != nil || !slices.Equal(ids, []string{k}) {
		t.Fatalf("ListOwner after reopening = %v, %v", ids, err)
	}
}

// TestConcurrentWrites hammers one database file from many goroutines
// through three Stores, each on its own *sql.DB as three processes would be:
// writes of one Store queue in Go, writes of different Stores meet on
// SQLite's lock through busy_timeout. It requires that no call fails (no
// "database is locked"), that exactly one Create per id wins, and that
// optimistic locking loses no increment.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	first, db := newStore(t, nil)
	stores := []*sqlitestore.Store{first}
	for range 2 {
		other, err := sql.Open("sqlite", dsn(dbPath(t, db)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		s, err := sqlitestore.New(other, nil)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	ctx := context.Background()
	const (
		workers = 12
		ids     = 6 // contended ids, incremented by every worker
		rounds  = 8 // increments per worker per id, and uncontended creates per worker
	)
	exp := t0.Add(time.Hour)

	var (
		mu      sync.Mutex
		errs    []error
		created = make(map[string]int)
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			// Every worker races to create every contended id.
			for i := range ids {
				ok, err := s.Create(ctx, id(fmt.Sprint("shared", i)), binary.BigEndian.AppendUint64(nil, 0), exp, "shared", t0)
				if err != nil {
					fail(fmt.Errorf("create: %w", err))
					continue
				}
				if ok {
					mu.Lock()
					created[fmt.Sprint(i)]++
					mu.Unlock()
				}
			}
			// Read-modify-write counters with retries on conflict, mixed
			// with uncontended creates and touches.
			for r := range rounds {
				for i := range ids {
					k := id(fmt.Sprint("shared", i))
					for {
						data, ver, _, found, err := s.Load(ctx, k, t0)
						if err != nil || !found {
							fail(fmt.Errorf("load: found %v: %v", found, err))
							break
						}
						n := binary.BigEndian.Uint64(data)
						up, found, err := s.Update(ctx, k, ver, binary.BigEndian.AppendUint64(nil, n+1), exp, "shared", t0)
						if err != nil || !found {
							fail(fmt.Errorf("update: found %v: %v", found, err))
							break
						}
						if up {
							break
						}
					}
				}
				{
					k := id(fmt.Sprint("own", w, r))
					if ok, err := s.Create(ctx, k, []byte("x"), exp, fmt.Sprint("w", w), t0); !ok || err != nil {
						fail(fmt.Errorf("own create: %v, %w", ok, err))
					}
					if found, err := s.Touch(ctx, k, exp.Add(time.Minute), t0); !found || err != nil {
						fail(fmt.Errorf("touch: %v, %w", found, err))
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	for i := range ids {
		if c := created[fmt.Sprint(i)]; c != 1 {
			t.Errorf("shared id %d was created %d times, want exactly once", i, c)
		}
		data, ver, _, _, err := first.Load(ctx, id(fmt.Sprint("shared", i)), t0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := binary.BigEndian.Uint64(data), uint64(workers*rounds); got != want || ver != int64(want)+1 {
			t.Errorf("shared id %d: counter %d version %d; want %d and %d (lost updates)", i, got, ver, want, want+1)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != ids+workers*rounds {
		t.Errorf("rows = %d, %v; want %d", n, err, ids+workers*rounds)
	}
}

// TestCreateTableConcurrentNewFile starts CreateTable on six database handles
// of one database file that does not exist yet, at once: each must succeed
// and leave the file in WAL mode. SQLite answers SQLITE_BUSY without waiting
// when two connections switch the journal mode together; without
// CreateTable's retry, 5 of 1,200 such calls failed here.
func TestCreateTableConcurrentNewFile(t *testing.T) {
	for round := range 60 {
		path := filepath.Join(t.TempDir(), "new.db")
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() {
				db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
				if err != nil {
					errs[i] = err
					return
				}
				defer db.Close()
				s, err := sqlitestore.New(db, nil)
				if err != nil {
					errs[i] = err
					return
				}
				errs[i] = s.CreateTable(context.Background())
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: CreateTable on handle %d of 6 opened at once: %v", round, i, err)
			}
		}
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		err = db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
		db.Close()
		if err != nil || mode != "wal" {
			t.Fatalf("round %d: journal_mode %q, %v; want wal", round, mode, err)
		}
	}
}
