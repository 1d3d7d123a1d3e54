package boltstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sessionkit/sessions/boltstore"
)

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	db, err := bbolt.Open(tempPath(t), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		name      string
		opts      *boltstore.Options
		open, new bool // valid for Open, for New
	}{
		{"nil", nil, true, true},
		{"zero", &boltstore.Options{}, true, true},
		{"custom", &boltstore.Options{Bucket: "web sessions\x00v2", SweepBatch: 10}, true, true},
		{"255-byte bucket", &boltstore.Options{Bucket: strings.Repeat("b", 255)}, true, true},
		{"256-byte bucket", &boltstore.Options{Bucket: strings.Repeat("b", 256)}, false, false},
		{"negative batch", &boltstore.Options{SweepBatch: -1}, false, false},
		{"open timeout", &boltstore.Options{OpenTimeout: time.Second}, true, false},
		{"negative open timeout", &boltstore.Options{OpenTimeout: -time.Second}, false, false},
		{"no sync", &boltstore.Options{UnsafeNoSync: true}, true, false},
	}
	for _, tt := range tests {
		for _, ctor := range []struct {
			name string
			ok   bool
			make func() (*boltstore.Store, error)
		}{
			{"Open", tt.open, func() (*boltstore.Store, error) { return boltstore.Open(tempPath(t), tt.opts) }},
			{"New", tt.new, func() (*boltstore.Store, error) { return boltstore.New(db, tt.opts) }},
		} {
			s, err := ctor.make()
			if ctor.ok {
				if err != nil || s == nil {
					t.Errorf("%s(%s) = %v, %v; want a store", ctor.name, tt.name, s, err)
				} else if err := s.Close(); err != nil {
					t.Errorf("%s(%s): Close: %v", ctor.name, tt.name, err)
				}
				continue
			}
			if s != nil || !errors.Is(err, boltstore.ErrInvalidOptions) {
				t.Errorf("%s(%s) = %v, %v; want nil and ErrInvalidOptions", ctor.name, tt.name, s, err)
			} else if !strings.HasPrefix(err.Error(), "boltstore: ") {
				t.Errorf("%s(%s): error %q lacks the boltstore: prefix", ctor.name, tt.name, err)
			}
		}
	}
	if s, err := boltstore.New(nil, nil); s != nil || !errors.Is(err, boltstore.ErrInvalidOptions) {
		t.Errorf("New(nil) = %v, %v; want ErrInvalidOptions", s, err)
	}
	if s, err := boltstore.Open("", nil); s != nil || !errors.Is(err, boltstore.ErrInvalidOptions) {
		t.Errorf(`Open("") = %v, %v; want ErrInvalidOptions`, s, err)
	}
}

// TestOpenFailures: what cannot be opened fails at once with the path in
// the error, and leaves nothing behind.
func TestOpenFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notBolt := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notBolt, bytes.Repeat([]byte("not a bolt file\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing directory": filepath.Join(dir, "no", "such", "dir", "sessions.bolt"),
		"a directory":       dir,
		"not a bolt file":   notBolt,
	} {
		start := time.Now()
		s, err := boltstore.Open(path, nil)
		if s != nil || err == nil {
			t.Errorf("%s: Open = %v, %v; want an error", name, s, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "boltstore: open "+path+": ") {
			t.Errorf("%s: error %q does not name the operation and path", name, err)
		}
		if errors.Is(err, boltstore.ErrLocked) {
			t.Errorf("%s: error %q wraps ErrLocked", name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: Open took %v to fail", name, d)
		}
	}
	if data, err := os.ReadFile(notBolt); err != nil || !bytes.HasPrefix(data, []byte("not a bolt file\n")) {
		t.Errorf("Open changed a file that is not a bolt database: %v", err)
	}
}

func TestFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	t.Parallel()
	path := tempPath(t)
	s, err := boltstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		t.Errorf("file mode %v: sessions must not be readable by others", mode)
	}
}

func TestOpenOptionsReachBolt(t *testing.T) {
	t.Parallel()
	for _, noSync := range []bool{false, true} {
		s := newStore(t, &boltstore.Options{UnsafeNoSync: noSync})
		if got := s.DB().NoSync; got != noSync {
			t.Errorf("UnsafeNoSync %v: DB().NoSync = %v", noSync, got)
		}
	}
}

// TestPersistence closes the file and opens it again: records, versions,
// owners and indexes survive; a closed store returns errors, not panics.
func TestPersistence(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s, err := boltstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t, 1)
	if _, err := s.Create(bg, id, []byte("v1"), t0.Add(time.Hour), "alice", t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(bg, id, 1, []byte("v2"), t0.Add(2*time.Hour), "alice", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, _, _, err := s.Load(bg, id, t0); err == nil || !strings.HasPrefix(err.Error(), "boltstore: load: ") {
		t.Errorf("Load after Close = %v; want a boltstore: load: error", err)
	}
	if _, err := s.Create(bg, testID(t, 2), nil, t0.Add(time.Hour), "", t0); err == nil {
		t.Error("Create after Close succeeded")
	}

	s, err = boltstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data, version, expiry, found, err := s.Load(bg, id, t0)
	if err != nil || !found || string(data) != "v2" || version != 2 || !expiry.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("after reopening: Load = %q v%d %v %v %v", data, version, expiry, found, err)
	}
	if ids, err := s.ListOwner(bg, "alice", t0); err != nil || !slices.Equal(ids, []string{id}) {
		t.Errorf("ListOwner after reopening = %v, %v", ids, err)
	}
	checkIndexes(t, s, "reopening")
}

// TestNewSharesTheFile: with New, the application keeps its own buckets
// and several stores (distinct Options.Bucket) in one file; Close leaves
// the DB open.
func TestNewSharesTheFile(t *testing.T) {
	t.Parallel()
	db, err := bbolt.Open(tempPath(t), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("app"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	web, err := boltstore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := boltstore.New(db, &boltstore.Options{Bucket: "admin-sessions"})
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t, 1)
	if _, err := web.Create(bg, id, []byte("web"), t0.Add(time.Hour), "u", t0); err != nil {
		t.Fatal(err)
	}
	if _, _, _, found, _ := admin.Load(bg, id, t0); found {
		t.Error("a record of one bucket is visible in another")
	}
	if ok, err := admin.Create(bg, id, []byte("admin"), t0.Add(time.Hour), "u", t0); err != nil || !ok {
		t.Errorf("Create of the same id in another bucket = %v, %v", ok, err)
	}
	if n, err := web.DeleteOwner(bg, "u", t0); err != nil || n != 1 {
		t.Errorf("DeleteOwner in one bucket = %d, %v", n, err)
	}
	if _, _, _, found, _ := admin.Load(bg, id, t0); !found {
		t.Error("DeleteOwner reached another bucket")
	}
	if err := web.Close(); err != nil {
		t.Fatal(err)
	}
	// The DB is still open: the application's bucket and the other store
	// work.
	if err := db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte("app")).Get([]byte("k")); string(v) != "v" {
			t.Errorf("the application's own bucket holds %q", v)
		}
		return nil
	}); err != nil {
		t.Fatalf("DB after a New store's Close: %v", err)
	}
	if _, _, _, found, err := admin.Load(bg, id, t0); err != nil || !found {
		t.Errorf("other store after Close: %v, %v", found, err)
	}
	// New again on the same buckets finds them.
	if again, err := boltstore.New(db, &boltstore.Options{Bucket: "admin-sessions"}); err != nil {
		t.Errorf("New on existing buckets: %v", err)
	} else if _, _, _, found, _ := again.Load(bg, id, t0); !found {
		t.Error("New on existing buckets does not see their records")
	}
}

func TestNewOnReadOnlyDB(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if s, err := boltstore.New(ro, nil); s != nil || !errors.Is(err, bolterrors.ErrDatabaseReadOnly) {
		t.Errorf("New on a read-only DB = %v, %v; want ErrDatabaseReadOnly", s, err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
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
		{"binary", []byte{0, 0xff, 0xfe, 0, '\\', '\''}, "ünïcode owner"},
		{"1 MiB", big, "big"},
	}
	for i, tt := range tests {
		id := testID(t, i)
		expiry := t0.Add(time.Hour + 123456789*time.Nanosecond)
		if created, err := s.Create(bg, id, tt.data, expiry, tt.owner, t0); err != nil || !created {
			t.Fatalf("%s: Create = %v, %v", tt.name, created, err)
		}
		data, version, gotExpiry, found, err := s.Load(bg, id, t0)
		if err != nil || !found {
			t.Fatalf("%s: Load found=%v err=%v", tt.name, found, err)
		}
		if data == nil || !bytes.Equal(data, tt.data) || version != 1 {
			t.Errorf("%s: Load = %d bytes (nil %v) v%d", tt.name, len(data), data == nil, version)
		}
		if want := expiry.Truncate(time.Millisecond); !gotExpiry.Equal(want) {
			t.Errorf("%s: expiry = %v, want %v (millisecond precision)", tt.name, gotExpiry, want)
		}
		if len(data) > 0 {
			data[0]++
			if again, _, _, _, _ := s.Load(bg, id, t0); !bytes.Equal(again, tt.data) {
				t.Errorf("%s: modifying a loaded slice changed the record", tt.name)
			}
		}
	}
	checkIndexes(t, s, "the round trips")
}

// TestExpiriesAcrossEpoch: expiry index keys sort by time, negative Unix
// times (before 1970) included, so the sweep removes exactly what is due.
func TestExpiriesAcrossEpoch(t *testing.T) {
	t.Parallel()
	s := newStore(t, &boltstore.Options{SweepBatch: 2})
	expiries := []time.Time{
		time.UnixMilli(-5_000_000_000_000), time.UnixMilli(-1), time.UnixMilli(0), time.UnixMilli(1),
		t0.Add(-time.Millisecond), t0, t0.Add(time.Millisecond), time.UnixMilli(1 << 50),
	}
	long := time.UnixMilli(-10_000_000_000_000)
	for i, e := range expiries {
		if ok, err := s.Create(bg, testID(t, i), nil, e, "", long); err != nil || !ok {
			t.Fatalf("Create(expiry %v) = %v, %v", e, ok, err)
		}
	}
	checkIndexes(t, s, "creates")
	if n, err := s.DeleteExpired(bg, t0); err != nil || n != 6 {
		t.Fatalf("DeleteExpired(t0) = %d, %v; want 6 (everything at or before t0)", n, err)
	}
	for i, e := range expiries {
		_, _, _, found, _ := s.Load(bg, testID(t, i), long)
		if want := e.After(t0); found != want {
			t.Errorf("record expiring %v: found=%v after the sweep, want %v", e, found, want)
		}
	}
	checkIndexes(t, s, "the sweep")
}

// TestIndexesFollowEveryWrite checks after every write that the expiry and
// owner indexes match the records exactly.
func TestIndexesFollowEveryWrite(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	a, b := testID(t, 1), testID(t, 2)
	exp := t0.Add(time.Hour)
	steps := []struct {
		name string
		do   func() error
	}{
		{"Create with owner", func() error { _, err := s.Create(bg, a, []byte("1"), exp, "alice", t0); return err }},
		{"Create without owner", func() error { _, err := s.Create(bg, b, []byte("1"), exp, "", t0); return err }},
		{"refused Create", func() error { _, err := s.Create(bg, a, []byte("x"), exp.Add(time.Hour), "mallory", t0); return err }},
		{"Update to another owner and expiry", func() error {
			_, _, err := s.Update(bg, a, 1, []byte("2"), exp.Add(time.Minute), "bob", t0)
			return err
		}},
		{"Update to no owner", func() error { _, _, err := s.Update(bg, a, 2, []byte("3"), exp, "", t0); return err }},
		{"Update to an owner", func() error { _, _, err := s.Update(bg, b, 1, []byte("2"), exp, "carol", t0); return err }},
		{"stale Update", func() error { _, _, err := s.Update(bg, b, 1, []byte("x"), exp, "dave", t0); return err }},
		{"Touch later", func() error { _, err := s.Touch(bg, a, exp.Add(time.Hour), t0); return err }},
		{"Touch earlier", func() error { _, err := s.Touch(bg, a, exp, t0); return err }},
		{"Touch with owner", func() error { _, err := s.Touch(bg, b, exp.Add(time.Hour), t0); return err }},
		{"Create over expired", func() error {
			_, err := s.Create(bg, b, []byte("new"), exp.Add(3*time.Hour), "erin", exp.Add(2*time.Hour))
			return err
		}},
		{"Update to the past", func() error {
			_, _, err := s.Update(bg, b, 1, nil, time.UnixMilli(1), "erin", exp.Add(2*time.Hour))
			return err
		}},
		{"Create again", func() error { _, err := s.Create(bg, b, []byte("again"), exp, "frank", t0); return err }},
		{"Delete", func() error { return s.Delete(bg, a) }},
		{"Delete absent", func() error { return s.Delete(bg, a) }},
		{"DeleteOwner", func() error { _, err := s.DeleteOwner(bg, "frank", t0); return err }},
		{"Create for the sweep", func() error { _, err := s.Create(bg, a, nil, exp, "gina", t0); return err }},
		{"DeleteExpired", func() error { _, err := s.DeleteExpired(bg, exp); return err }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		checkIndexes(t, s, st.name)
	}
}

// TestRenewRetiresOldRecord is the Manager's renewal: the old record is
// retired by an Update whose expiry is 1 ms after the Unix epoch. The
// version check applies, and afterwards the record is gone for every
// operation.
func TestRenewRetiresOldRecord(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	id := testID(t, 1)
	retired := time.UnixMilli(1)
	if _, err := s.Create(bg, id, []byte("session"), t0.Add(time.Hour), "alice", t0); err != nil {
		t.Fatal(err)
	}
	if updated, found, err := s.Update(bg, id, 7, nil, retired, "", t0); err != nil || updated || !found {
		t.Fatalf("retiring Update with a stale version = %v, %v, %v; want changed (false, true)", updated, found, err)
	}
	if updated, found, err := s.Update(bg, id, 1, []byte("session"), retired, "alice", t0); err != nil || !updated || !found {
		t.Fatalf("retiring Update = %v, %v, %v; want true, true", updated, found, err)
	}
	checkIndexes(t, s, "the retiring Update")
	if _, _, _, found, err := s.Load(bg, id, t0); err != nil || found {
		t.Errorf("Load of the retired record = %v, %v; want not found", found, err)
	}
	if found, err := s.Touch(bg, id, t0.Add(2*time.Hour), t0); err != nil || found {
		t.Errorf("Touch of the retired record = %v, %v; want false", found, err)
	}
	if updated, found, err := s.Update(bg, id, 2, []byte("x"), t0.Add(time.Hour), "alice", t0); err != nil || updated || found {
		t.Errorf("Update of the retired record = %v, %v, %v; want gone (false, false)", updated, found, err)
	}
	if ids, err := s.ListOwner(bg, "alice", t0); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner lists the retired record: %v, %v", ids, err)
	}
	if n, err := s.DeleteExpired(bg, t0); err != nil || n != 0 {
		t.Errorf("DeleteExpired = %d, %v; want 0: the retired record is removed at once", n, err)
	}
	if created, err := s.Create(bg, id, []byte("new"), t0.Add(time.Hour), "", t0); err != nil || !created {
		t.Errorf("Create of the retired id = %v, %v; want true", created, err)
	}
	checkIndexes(t, s, "the retired id's Create")
}

// TestOwnersAnyBytes: owners are length-prefixed in the index, so owners
// that are prefixes of each other, contain NUL or look like a length prefix
// stay apart.
func TestOwnersAnyBytes(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	owners := []string{
		"a", "a\x00", "\x00", "\x00a", "ab", "\x01a", "\x02ab", "a\xff",
		strings.Repeat("x", 127), strings.Repeat("x", 128), strings.Repeat("\xff", 300),
		strings.Repeat("o", boltstore.MaxOwnerLen),
	}
	for i, o := range owners {
		for j := range 2 {
			if ok, err := s.Create(bg, testID(t, 10*i+j), nil, t0.Add(time.Hour), o, t0); err != nil || !ok {
				t.Fatalf("Create with owner %q = %v, %v", o[:min(len(o), 10)], ok, err)
			}
		}
	}
	checkIndexes(t, s, "creates")
	for i, o := range owners {
		ids, err := s.ListOwner(bg, o, t0)
		slices.Sort(ids)
		want := []string{testID(t, 10*i), testID(t, 10*i+1)}
		slices.Sort(want)
		if err != nil || !slices.Equal(ids, want) {
			t.Errorf("ListOwner(%q) = %v, %v; want its own two", o[:min(len(o), 10)], ids, err)
		}
	}
	if n, err := s.DeleteOwner(bg, "a", t0); err != nil || n != 2 {
		t.Errorf(`DeleteOwner("a") = %d, %v; want 2`, n, err)
	}
	for _, o := range owners[1:] {
		if ids, _ := s.ListOwner(bg, o, t0); len(ids) != 2 {
			t.Errorf(`DeleteOwner("a") touched owner %q: %v`, o[:min(len(o), 10)], ids)
		}
	}
	checkIndexes(t, s, "DeleteOwner")

	long := strings.Repeat("o", boltstore.MaxOwnerLen+1)
	if _, err := s.Create(bg, testID(t, 1000), nil, t0.Add(time.Hour), long, t0); !errors.Is(err, boltstore.ErrOwnerTooLong) {
		t.Errorf("Create with an owner of MaxOwnerLen+1 bytes = %v; want ErrOwnerTooLong", err)
	}
	if _, _, err := s.Update(bg, testID(t, 0), 1, nil, t0.Add(time.Hour), long, t0); !errors.Is(err, boltstore.ErrOwnerTooLong) {
		t.Errorf("Update with an owner of MaxOwnerLen+1 bytes = %v; want ErrOwnerTooLong", err)
	}
	if ids, err := s.ListOwner(bg, long, t0); err != nil || len(ids) != 0 {
		t.Errorf("ListOwner(too long) = %v, %v", ids, err)
	}
}

func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	good := testID(t, 1)
	if _, err := s.Create(bg, good, []byte("d"), t0.Add(time.Hour), "", t0); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"", "abc", strings.ToUpper(good), good[:63], good + "0", good[:62] + "zz",
		good[:62] + "'-", strings.Repeat("é", 32), good[:62] + "\x00\x00",
	}
	for _, id := range bad {
		if created, err := s.Create(bg, id, []byte("x"), t0.Add(time.Hour), "", t0); !errors.Is(err, boltstore.ErrInvalidID) || created {
			t.Errorf("Create(%q) = %v, %v; want ErrInvalidID", id, created, err)
		}
		if _, _, _, found, err := s.Load(bg, id, t0); found || err != nil {
			t.Errorf("Load(%q) = %v, %v; want not found", id, found, err)
		}
		if updated, found, err := s.Update(bg, id, 1, []byte("x"), t0.Add(time.Hour), "", t0); updated || found || err != nil {
			t.Errorf("Update(%q) = %v, %v, %v; want gone", id, updated, found, err)
		}
		if found, err := s.Touch(bg, id, t0.Add(2*time.Hour), t0); found || err != nil {
			t.Errorf("Touch(%q) = %v, %v; want not found", id, found, err)
		}
		if err := s.Delete(bg, id); err != nil {
			t.Errorf("Delete(%q) = %v", id, err)
		}
	}
	data, version, _, found, err := s.Load(bg, good, t0)
	if !found || err != nil || string(data) != "d" || version != 1 {
		t.Errorf("the well-formed record changed: %q v%d %v %v", data, version, found, err)
	}
}

// commits returns the id of the last committed write transaction: it
// grows by one per commit.
func commits(t *testing.T, s *boltstore.Store) int {
	t.Helper()
	var id int
	if err := s.DB().View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDeleteExpiredInBatches counts the write transactions of a sweep:
// each removes at most SweepBatch records.
func TestDeleteExpiredInBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expired, live, batch int
		wantCommits          int
	}{
		{expired: 10, live: 4, batch: 3, wantCommits: 4}, // 3+3+3+1
		{expired: 9, live: 2, batch: 3, wantCommits: 3},  // 3+3+3: the third sees nothing more is due
		{expired: 0, live: 3, batch: 3, wantCommits: 0},  // nothing due: rolled back
		{expired: 5, live: 1, batch: 0, wantCommits: 1},  // default 1000
		{expired: 4, live: 0, batch: 1, wantCommits: 4},
	}
	for _, tt := range tests {
		s := newStore(t, &boltstore.Options{SweepBatch: tt.batch, UnsafeNoSync: true})
		var liveIDs []string
		for i := range tt.expired + tt.live {
			exp := t0.Add(-time.Duration(i+1) * time.Second)
			if i == 0 {
				exp = t0 // expiry == now is expired
			}
			id := testID(t, i)
			if i >= tt.expired {
				exp = t0.Add(time.Millisecond + time.Duration(i)*time.Second)
				liveIDs = append(liveIDs, id)
			}
			if _, err := s.Create(bg, id, []byte("d"), exp, "o", t0.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		before := commits(t, s)
		n, err := s.DeleteExpired(bg, t0)
		if err != nil || n != tt.expired {
			t.Fatalf("%+v: DeleteExpired = %d, %v; want %d", tt, n, err, tt.expired)
		}
		if got := commits(t, s) - before; got != tt.wantCommits {
			t.Errorf("%+v: DeleteExpired committed %d transactions, want %d", tt, got, tt.wantCommits)
		}
		ids, err := s.ListOwner(bg, "o", t0)
		slices.Sort(ids)
		slices.Sort(liveIDs)
		if err != nil || !slices.Equal(ids, liveIDs) {
			t.Errorf("%+v: live records after the sweep = %v, %v; want %v", tt, ids, err, liveIDs)
		}
		checkIndexes(t, s, "the sweep")
	}
}

// errAfter is a context whose Err turns to context.Canceled after n calls.
type errAfter struct {
	context.Context
	n atomic.Int32
}

func (c *errAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestDeleteExpiredStopsBetweenBatches: a context that ends during a
// sweep stops it after a whole batch; what was removed is counted and the
// indexes stay consistent.
func TestDeleteExpiredStopsBetweenBatches(t *testing.T) {
	t.Parallel()
	s := newStore(t, &boltstore.Options{SweepBatch: 2, UnsafeNoSync: true})
	for i := range 9 {
		if _, err := s.Create(bg, testID(t, i), nil, t0.Add(-time.Minute), "o", t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := &errAfter{Context: bg}
	ctx.n.Store(4) // two batches: each checks before and inside its transaction
	n, err := s.DeleteExpired(ctx, t0)
	if !errors.Is(err, context.Canceled) || n != 4 {
		t.Fatalf("DeleteExpired with a context ending after two batches = %d, %v; want 4, context.Canceled", n, err)
	}
	checkIndexes(t, s, "an interrupted sweep")
	if n, err := s.DeleteExpired(bg, t0); err != nil || n != 5 {
		t.Errorf("the next sweep = %d, %v; want the 5 left", n, err)
	}
}

// TestNoCommitWithoutChange: writes that change nothing roll back, which
// spares an fsync each.
func TestNoCommitWithoutChange(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	id := testID(t, 1)
	exp := t0.Add(time.Hour)
	if _, err := s.Create(bg, id, []byte("d"), exp, "o", t0); err != nil {
		t.Fatal(err)
	}
	before := commits(t, s)
	ops := map[string]func() error{
		"refused Create": func() error { _, err := s.Create(bg, id, nil, exp, "", t0); return err },
		"stale Update":   func() error { _, _, err := s.Update(bg, id, 9, nil, exp, "", t0); return err },
		"Update of absent": func() error {
			_, _, err := s.Update(bg, testID(t, 2), 1, nil, exp, "", t0)
			return err
		},
		"Touch not later":  func() error { _, err := s.Touch(bg, id, exp, t0); return err },
		"Touch of absent":  func() error { _, err := s.Touch(bg, testID(t, 2), exp, t0); return err },
		"Delete of absent": func() error { return s.Delete(bg, testID(t, 2)) },
		"empty sweep":      func() error { _, err := s.DeleteExpired(bg, t0); return err },
		"DeleteOwner of nobody": func() error {
			_, err := s.DeleteOwner(bg, "nobody", t0)
			return err
		},
	}
	for name, op := range ops {
		if err := op(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := commits(t, s) - before; got != 0 {
		t.Errorf("writes that changed nothing committed %d transactions", got)
	}
	if found, err := s.Touch(bg, id, exp.Add(time.Second), t0); err != nil || !found {
		t.Fatal(found, err)
	}
	if got := commits(t, s) - before; got != 1 {
		t.Errorf("a Touch that extends committed %d transactions, want 1", got)
	}
}

// TestWriteWaitingForLockHonoursContext: bbolt cannot abandon a wait for
// its writer lock, but a context that ended meanwhile is checked once the
// lock is held, and nothing is applied.
func TestWriteWaitingForLockHonoursContext(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	id := testID(t, 1)
	if _, err := s.Create(bg, id, []byte("v1"), t0.Add(time.Hour), "", t0); err != nil {
		t.Fatal(err)
	}
	tx, err := s.DB().Begin(true) // holds the writer lock
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Update(ctx, id, 1, []byte("v2"), t0.Add(time.Hour), "", t0)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Update block on the lock
	cancel()
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Update whose context ended while it waited = %v; want context.Canceled", err)
	}
	if data, v, _, _, _ := s.Load(bg, id, t0); string(data) != "v1" || v != 1 {
		t.Errorf("the cancelled Update was applied: %q v%d", data, v)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	id := testID(t, 1)
	if _, err := s.Create(bg, id, nil, t0.Add(-time.Minute), "o", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel2()
	for _, ctx := range []context.Context{canceled, expired} {
		calls := map[string]func() error{
			"Create":           func() error { _, err := s.Create(ctx, testID(t, 2), nil, t0.Add(time.Hour), "", t0); return err },
			"Load":             func() error { _, _, _, _, err := s.Load(ctx, id, t0); return err },
			"Update":           func() error { _, _, err := s.Update(ctx, id, 1, nil, t0, "", t0); return err },
			"Touch":            func() error { _, err := s.Touch(ctx, id, t0, t0); return err },
			"Delete":           func() error { return s.Delete(ctx, id) },
			"Delete malformed": func() error { return s.Delete(ctx, "x") },
			"DeleteExpired": func() error {
				_, err := s.DeleteExpired(ctx, t0)
				return err
			},
			"ListOwner":   func() error { _, err := s.ListOwner(ctx, "o", t0); return err },
			"DeleteOwner": func() error { _, err := s.DeleteOwner(ctx, "o", t0); return err },
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, ctx.Err()) {
				t.Errorf("%s with a done context = %v; want an error wrapping %v", name, err, ctx.Err())
			} else if !strings.HasPrefix(err.Error(), "boltstore: ") {
				t.Errorf("%s error %q lacks the boltstore: prefix", name, err)
			}
		}
	}
	if n, err := s.DeleteExpired(bg, t0); err != nil || n != 1 {
		t.Errorf("after the cancelled calls, DeleteExpired = %d, %v; want the record still there", n, err)
	}
}

// TestStressOneID runs every operation on one id from many goroutines and
// then checks the indexes and that versions only grew.
func TestStressOneID(t *testing.T) {
	t.Parallel()
	s := newStore(t, &boltstore.Options{UnsafeNoSync: true, SweepBatch: 3})
	id := testID(t, 1)
	owners := []string{"", "alice", "bob"}
	const workers, rounds = 8, 150
	var wg sync.WaitGroup
	var lastVersion atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				exp := now.Add(time.Duration((w+i)%5) * time.Millisecond) // some already expired
				var err error
				switch (w + i) % 8 {
				case 0:
					_, err = s.Create(bg, id, []byte{byte(w)}, exp.Add(time.Second), owners[i%3], now)
				case 1, 2:
					var v int64
					var found bool
					_, v, _, found, err = s.Load(bg, id, now)
					if err == nil && found {
						for {
							old := lastVersion.Load()
							if v <= old || lastVersion.CompareAndSwap(old, v) {
								break
							}
						}
						_, _, err = s.Update(bg, id, v, []byte{byte(i)}, exp.Add(time.Second), owners[(w+i)%3], now)
					}
				case 3:
					_, err = s.Touch(bg, id, exp.Add(2*time.Second), now)
				case 4:
					if i%16 == 4 {
						err = s.Delete(bg, id)
					}
				case 5:
					_, err = s.DeleteExpired(bg, now)
				case 6:
					_, err = s.ListOwner(bg, owners[w%3], now)
				case 7:
					if i%16 == 7 {
						_, err = s.DeleteOwner(bg, owners[w%3], now)
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkIndexes(t, s, "the stress run")
}

// TestCorruptData: a record or bucket that other code broke is an error
// wrapping ErrCorrupt, never a panic or a wrong answer; Delete still
// removes such a record.
func TestCorruptData(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	id := testID(t, 1)
	for _, v := range [][]byte{
		{},                                    // no header
		make([]byte, 15),                      // short header
		append(make([]byte, 16), 0x80),        // truncated owner length
		append(make([]byte, 16), 5, 'a', 'b'), // owner longer than the value
	} {
		if err := s.Raw(func(records, _, _ *bbolt.Bucket) error { return records.Put(rawKey(id), v) }); err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, err := s.Load(bg, id, t0); !errors.Is(err, boltstore.ErrCorrupt) {
			t.Errorf("Load of %x = %v; want ErrCorrupt", v, err)
		}
		if _, _, err := s.Update(bg, id, 1, nil, t0.Add(time.Hour), "", t0); !errors.Is(err, boltstore.ErrCorrupt) {
			t.Errorf("Update of %x = %v; want ErrCorrupt", v, err)
		}
		if err := s.Delete(bg, id); err != nil {
			t.Errorf("Delete of %x = %v", v, err)
		}
		if _, _, _, found, err := s.Load(bg, id, t0); found || err != nil {
			t.Errorf("after Delete: %v, %v", found, err)
		}
	}

	if err := s.DB().Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte(boltstore.DefaultBucket)) }); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := s.Load(bg, id, t0); !errors.Is(err, boltstore.ErrCorrupt) {
		t.Errorf("Load without the bucket = %v; want ErrCorrupt", err)
	}
	if _, err := s.Create(bg, id, nil, t0.Add(time.Hour), "", t0); !errors.Is(err, boltstore.ErrCorrupt) {
		t.Errorf("Create without the bucket = %v; want ErrCorrupt", err)
	}
}
