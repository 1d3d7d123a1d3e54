package memstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions/memstore"
)

var bg = context.Background()

// base is a fixed instant: memstore compares only with the now arguments.
var base = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// testID returns a store id in the real format (hex SHA-256) derived from s.
func testID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newStore(t testing.TB, opts *memstore.Options) *memstore.Store {
	t.Helper()
	s, err := memstore.New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return s
}

func mustCreate(t testing.TB, s *memstore.Store, id string, expiry, now time.Time) {
	t.Helper()
	created, err := s.Create(bg, id, []byte("data"), expiry, "", now)
	if err != nil || !created {
		t.Fatalf("Create(%.8s, expiry %v, now %v) = %v, %v; want true, nil", id, expiry, now, created, err)
	}
}

func TestNew(t *testing.T) {
	for _, opts := range []*memstore.Options{nil, {}, {MaxEntries: 1}, {MaxEntries: 1 << 20}} {
		if s, err := memstore.New(opts); err != nil || s == nil {
			t.Errorf("New(%+v) = %v, %v; want a store", opts, s, err)
		}
	}
	s, err := memstore.New(&memstore.Options{MaxEntries: -1})
	if err == nil || s != nil {
		t.Fatalf("New(MaxEntries: -1) = %v, %v; want an error", s, err)
	}
	if !strings.HasPrefix(err.Error(), "memstore: ") || !strings.Contains(err.Error(), "MaxEntries") {
		t.Errorf("New(MaxEntries: -1) error %q should be prefixed with the package and name the field", err)
	}
}

func TestZeroValue(t *testing.T) {
	var s memstore.Store
	id := testID("zero")
	if _, _, _, found, err := s.Load(bg, id, base); found || err != nil {
		t.Fatalf("Load on an empty zero Store = found %v, err %v", found, err)
	}
	if updated, found, err := s.Update(bg, id, 1, nil, base, "", base); updated || found || err != nil {
		t.Fatalf("Update on an empty zero Store = %v, %v, %v", updated, found, err)
	}
	if err := s.Delete(bg, id); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.ListOwner(bg, "o", base); len(ids) != 0 || err != nil {
		t.Fatalf("ListOwner on an empty zero Store = %v, %v", ids, err)
	}
	if n, err := s.DeleteExpired(bg, base); n != 0 || err != nil {
		t.Fatalf("DeleteExpired on an empty zero Store = %v, %v", n, err)
	}
	created, err := s.Create(bg, id, []byte("x"), base.Add(time.Hour), "o", base)
	if !created || err != nil {
		t.Fatalf("Create on a zero Store = %v, %v", created, err)
	}
	data, version, _, found, err := s.Load(bg, id, base)
	if !found || err != nil || version != 1 || string(data) != "x" {
		t.Fatalf("Load = %q, %d, found %v, err %v", data, version, found, err)
	}
}

// TestNilDataLoadsEmpty: a nil data slice is stored as empty data, and Load
// never returns nil data for a found record.
func TestNilDataLoadsEmpty(t *testing.T) {
	s := newStore(t, nil)
	id := testID("nil")
	if created, err := s.Create(bg, id, nil, base.Add(time.Hour), "", base); !created || err != nil {
		t.Fatal(created, err)
	}
	data, _, _, found, err := s.Load(bg, id, base)
	if !found || err != nil || data == nil || len(data) != 0 {
		t.Fatalf("Load = %v (nil %v), found %v, err %v; want empty non-nil data", data, data == nil, found, err)
	}
}

// TestBoundedGrowthWithoutSweep runs a long churn of sessions that each live
// for lifetime ticks, one Create per tick, and never calls DeleteExpired: the
// opportunistic cleanup in Create must keep the store near its live size.
func TestBoundedGrowthWithoutSweep(t *testing.T) {
	const (
		lifetime = 200
		creates  = 50 * lifetime
		tick     = time.Second
	)
	s := newStore(t, nil)
	maxLen := 0
	for i := range creates {
		now := base.Add(time.Duration(i) * tick)
		mustCreate(t, s, testID(strconv.Itoa(i)), now.Add(lifetime*tick), now)
		maxLen = max(maxLen, s.Len())
	}
	// At most lifetime records are live at any tick; the package doc
	// promises at most twice the peak live count.
	if maxLen > 2*lifetime {
		t.Fatalf("store grew to %d records with at most %d live; opportunistic cleanup must bound it by %d", maxLen, lifetime, 2*lifetime)
	}
	t.Logf("peak %d records for %d live", maxLen, lifetime)
}

// TestBoundedGrowthAfterBurst: expired records left by a burst disappear
// under later Creates alone.
func TestBoundedGrowthAfterBurst(t *testing.T) {
	s := newStore(t, nil)
	const burst = 10000
	for i := range burst {
		mustCreate(t, s, testID("burst"+strconv.Itoa(i)), base.Add(time.Minute), base)
	}
	later := base.Add(time.Hour)
	// The cleanup walk may be anywhere in the burst: it finishes that pass
	// (at most burst/3 Creates) and makes one more over the burst plus what
	// was created meanwhile (at most 4/9 burst Creates).
	for i := range burst {
		mustCreate(t, s, testID("later"+strconv.Itoa(i)), later.Add(time.Hour), later)
	}
	if got, want := s.Len(), burst; got != want {
		t.Fatalf("Len = %d after a full cleanup pass; want %d (only the later, live records)", got, want)
	}
}

// TestExpiredRemovedOnAccess: Create, Update and Touch remove the expired
// record they address; Load (read-locked) only ignores it.
func TestExpiredRemovedOnAccess(t *testing.T) {
	exp := base.Add(time.Minute)
	later := exp.Add(time.Second)
	for _, tc := range []struct {
		name string
		op   func(s *memstore.Store, id string) error
		want int
	}{
		{"Create", func(s *memstore.Store, id string) error {
			created, err := s.Create(bg, id, []byte("new"), later.Add(time.Hour), "", later)
			if !created {
				return errors.New("Create did not replace an expired record")
			}
			return err
		}, 1},
		{"Update", func(s *memstore.Store, id string) error {
			_, _, err := s.Update(bg, id, 1, nil, later.Add(time.Hour), "", later)
			return err
		}, 0},
		{"Touch", func(s *memstore.Store, id string) error {
			_, err := s.Touch(bg, id, later.Add(time.Hour), later)
			return err
		}, 0},
		{"Load", func(s *memstore.Store, id string) error {
			_, _, _, _, err := s.Load(bg, id, later)
			return err
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Use the zero value so that Create's own cleanup does not run
			// before the operation under test.
			var s memstore.Store
			id := testID(tc.name)
			if created, err := s.Create(bg, id, []byte("old"), exp, "", base); !created || err != nil {
				t.Fatal(created, err)
			}
			if err := tc.op(&s, id); err != nil {
				t.Fatal(err)
			}
			if got := s.Len(); got != tc.want {
				t.Fatalf("Len = %d after %s on an expired record; want %d", got, tc.name, tc.want)
			}
		})
	}
}

func TestMaxEntries(t *testing.T) {
	s := newStore(t, &memstore.Options{MaxEntries: 3})
	ids := []string{testID("a"), testID("b"), testID("c")}
	exps := []time.Time{base.Add(time.Minute), base.Add(2 * time.Minute), base.Add(3 * time.Minute)}
	for i, id := range ids {
		mustCreate(t, s, id, exps[i], base)
	}
	extra := testID("extra")

	created, err := s.Create(bg, extra, []byte("x"), base.Add(time.Hour), "", base)
	if created || !errors.Is(err, memstore.ErrFull) {
		t.Fatalf("Create in a full store of live records = %v, %v; want false, ErrFull", created, err)
	}
	// A collision with a live record is still reported as such.
	if created, err := s.Create(bg, ids[0], []byte("x"), base.Add(time.Hour), "", base); created || err != nil {
		t.Fatalf("Create of a live id in a full store = %v, %v; want false, nil", created, err)
	}
	// Nothing was evicted.
	for _, id := range ids {
		if _, _, _, found, err := s.Load(bg, id, base); !found || err != nil {
			t.Fatalf("live record %.8s lost in a full store: found %v, err %v", id, found, err)
		}
	}
	// The failed attempt learned that nothing expires before exps[0]; an
	// Update that moves an expiry earlier must lower that bound.
	if updated, _, err := s.Update(bg, ids[2], 1, []byte("y"), base.Add(30*time.Second), "", base); !updated || err != nil {
		t.Fatalf("Update = %v, %v", updated, err)
	}
	now := base.Add(45 * time.Second) // ids[2] expired, the others live
	if created, err := s.Create(bg, extra, []byte("x"), now.Add(time.Hour), "", now); !created || err != nil {
		t.Fatalf("Create in a full store holding an expired record = %v, %v; want true, nil", created, err)
	}
	if got := s.Len(); got != 3 {
		t.Fatalf("Len = %d; want 3 (the cap)", got)
	}
	if created, err := s.Create(bg, testID("more"), nil, now.Add(time.Hour), "", now); created || !errors.Is(err, memstore.ErrFull) {
		t.Fatalf("Create in a full store of live records = %v, %v; want false, ErrFull", created, err)
	}
	// Once everything has expired, Creates succeed again.
	now = base.Add(time.Hour + time.Minute)
	for i := range 3 {
		mustCreate(t, s, testID("after"+strconv.Itoa(i)), now.Add(time.Hour), now)
	}
	if got := s.Len(); got != 3 {
		t.Fatalf("Len = %d; want 3 (the cap)", got)
	}
}

// TestDeleteExpiredConcurrentWrites: records that exist throughout a
// DeleteExpired call are all examined, even though writers change the store
// between its batches.
func TestDeleteExpiredConcurrentWrites(t *testing.T) {
	const n = 5000 // several batches
	s := newStore(t, nil)
	live := base.Add(time.Hour)
	for i := range n {
		mustCreate(t, s, testID("exp"+strconv.Itoa(i)), base.Add(time.Minute), base)
		mustCreate(t, s, testID("live"+strconv.Itoa(i)), live, base)
	}
	now := base.Add(2 * time.Minute)
	var wg sync.WaitGroup
	var deleted int
	var sweepErr error
	wg.Go(func() { deleted, sweepErr = s.DeleteExpired(bg, now) })
	wg.Go(func() {
		// Churn live records: deletes move records around in the store.
		for i := range n {
			if err := s.Delete(bg, testID("live"+strconv.Itoa(i))); err != nil {
				t.Error(err)
				return
			}
			if created, err := s.Create(bg, testID("new"+strconv.Itoa(i)), nil, live, "", now); !created || err != nil {
				t.Error(created, err)
				return
			}
		}
	})
	wg.Wait()
	if sweepErr != nil {
		t.Fatal(sweepErr)
	}
	// Creates at now remove some expired records themselves; together the
	// two must account for all of them.
	if rest, err := s.DeleteExpired(bg, now); err != nil || rest != 0 {
		t.Fatalf("second DeleteExpired = %d, %v; want 0: the first (which deleted %d) missed expired records", rest, err, deleted)
	}
	if got := s.Len(); got != n {
		t.Fatalf("Len = %d; want %d live records", got, n)
	}
}

// cancelAfter is a context whose Err reports cancellation after it has been
// asked n times.
type cancelAfter struct {
	context.Context
	mu sync.Mutex
	n  int
}

func (c *cancelAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

// TestDeleteExpiredBatches: DeleteExpired checks its context between bounded
// batches and reports what it deleted before stopping.
func TestDeleteExpiredBatches(t *testing.T) {
	s := newStore(t, nil)
	const n = 3000
	for i := range n {
		mustCreate(t, s, testID(strconv.Itoa(i)), base.Add(time.Minute), base)
	}
	now := base.Add(time.Hour)
	// Two checks pass: the one on entry and the one before the first batch.
	deleted, err := s.DeleteExpired(&cancelAfter{Context: bg, n: 2}, now)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteExpired error = %v; want context.Canceled", err)
	}
	if deleted <= 0 || deleted >= n {
		t.Fatalf("DeleteExpired cancelled after one batch deleted %d of %d; want a bounded batch", deleted, n)
	}
	if got := s.Len(); got != n-deleted {
		t.Fatalf("Len = %d; want %d", got, n-deleted)
	}
	rest, err := s.DeleteExpired(bg, now)
	if err != nil || deleted+rest != n || s.Len() != 0 {
		t.Fatalf("second DeleteExpired = %d, %v (Len %d); want %d, nil (Len 0)", rest, err, s.Len(), n-deleted)
	}
}

// TestOwnerIndexMemory: the owner index forgets owners that own nothing, so
// churn over many owners does not grow it.
func TestOwnerIndexMemory(t *testing.T) {
	s := newStore(t, nil)
	for i := range 1000 {
		id := testID(strconv.Itoa(i))
		owner := "user" + strconv.Itoa(i)
		if created, err := s.Create(bg, id, nil, base.Add(time.Hour), owner, base); !created || err != nil {
			t.Fatal(created, err)
		}
		switch i % 3 {
		case 0:
			if err := s.Delete(bg, id); err != nil {
				t.Fatal(err)
			}
		case 1:
			if _, _, err := s.Update(bg, id, 1, nil, base.Add(time.Hour), "", base); err != nil {
				t.Fatal(err)
			}
		case 2:
			if _, err := s.DeleteOwner(bg, owner, base); err != nil {
				t.Fatal(err)
			}
		}
		if ids, err := s.ListOwner(bg, owner, base); len(ids) != 0 || err != nil {
			t.Fatalf("ListOwner(%s) = %v, %v; want nothing", owner, ids, err)
		}
	}
	if got := memstore.OwnerCount(s); got != 0 {
		t.Fatalf("owner index holds %d owners; want 0", got)
	}
}

func TestUpdateReusesBuffer(t *testing.T) {
	s := newStore(t, nil)
	id := testID("buf")
	exp := base.Add(time.Hour)
	data := bytes.Repeat([]byte("a"), 512)
	if created, err := s.Create(bg, id, data, exp, "", base); !created || err != nil {
		t.Fatal(created, err)
	}
	version := int64(1)
	allocs := testing.AllocsPerRun(100, func() {
		updated, _, err := s.Update(bg, id, version, data, exp, "", base)
		if !updated || err != nil {
			t.Fatal(updated, err)
		}
		version++
	})
	if allocs != 0 {
		t.Fatalf("Update of same-sized data allocates %v times; want 0", allocs)
	}
}

func Example() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		panic(err)
	}
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	id := strings.Repeat("ab", 32) // the Manager passes hex SHA-256 ids

	created, _ := store.Create(ctx, id, []byte(`{"user":"ann"}`), now.Add(time.Hour), "ann", now)
	fmt.Println("created:", created)

	data, version, _, found, _ := store.Load(ctx, id, now)
	fmt.Printf("loaded: %s version %d found %v\n", data, version, found)

	updated, _, _ := store.Update(ctx, id, version, []byte(`{"user":"ann","n":1}`), now.Add(time.Hour), "ann", now)
	fmt.Println("updated:", updated)

	// A second writer that loaded version 1 is told the record changed.
	updated, found, _ = store.Update(ctx, id, version, []byte(`{}`), now.Add(time.Hour), "ann", now)
	fmt.Println("stale update:", updated, found)

	_, _, _, found, _ = store.Load(ctx, id, now.Add(2*time.Hour))
	fmt.Println("found after expiry:", found)

	n, _ := store.DeleteExpired(ctx, now.Add(2*time.Hour))
	fmt.Println("swept:", n)
	// Output:
	// created: true
	// loaded: {"user":"ann"} version 1 found true
	// updated: true
	// stale update: false true
	// found after expiry: false
	// swept: 1
}
