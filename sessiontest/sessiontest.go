// Package sessiontest checks a [sessions.Store] implementation against every
// clause of the store contract, and helps test handlers that use sessions.
//
// # Testing handlers
//
// [Login] and [Prepare] give a request a session prepared in advance ("logged
// in as alice", with values), saved in the Manager's store as an earlier
// request would have left it; [Result] reads back the session a response
// leaves the client with, as a [Snapshot]:
//
//	r := httptest.NewRequest("POST", "/cart", nil)
//	sessiontest.Login(t, m, r, "alice", map[string]any{"items": 2})
//	w := httptest.NewRecorder()
//	handler.ServeHTTP(w, r)
//	snap := sessiontest.Result(t, m, r, w)
//	items, _ := sessiontest.Get[int](snap, "items")
//
// # Testing stores
//
// Call [TestStore] from a test in the store's package, with a function that
// returns a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
//			s := mystore.New(connect(t), &mystore.Options{Prefix: uniquePrefix(t)})
//			t.Cleanup(func() { s.DropAll() })
//			return s
//		}, nil)
//	}
//
// TestStore runs each case as a named subtest (for example
// "Update/StaleVersion") on a store of its own, so a failure names the clause
// that broke, and new cases reach every store without changes to its tests.
// Cases of the optional capabilities, [sessions.ExpiredDeleter] and
// [sessions.OwnerIndex], are skipped with a message when the store does not
// implement them. Run the suite with the race detector (go test -race): the
// concurrency cases are written to expose data races.
//
// # Time
//
// Each case starts its virtual clock at the real time, truncated to the
// millisecond, and moves it forward by passing later now arguments, never
// backward; it never sleeps. Stores that also expire records with a clock of
// their own (a Redis TTL) therefore see expiries near real time; an emulated
// server whose clock does not move by itself can follow the virtual clock
// through [Options.Advance].
//
// # Data
//
// Every id is 64 random lower-case hexadecimal characters, like the ids the
// Manager passes, and every owner carries a random suffix, so that runs
// sharing one database server never see each other's records. A store may
// still keep a table or key prefix per subtest (derived from t.Name()) to
// clean up after itself.
//
// # Strict readings
//
// Where the contract leaves room, the suite takes the strictest reasonable
// reading, and its failure messages say so:
//
//   - Create of an id whose record has expired must store the new record and
//     report created=true: created=false is only for a live record.
//   - Update of an expired record reports "gone" (false, false) whatever the
//     version; "changed" is only for a live record.
//   - Update writes whatever expiry it is given, even one before now (the
//     record is then expired at once) or before the current one; Touch of a
//     live record reports found=true even when it leaves the expiry as it is.
//   - Load of empty data returns an empty, non-nil slice.
//   - An error returned because the context is done satisfies
//     errors.Is(err, ctx.Err()), so that callers can tell a cancelled
//     request from a store failure. A driver's own error must be wrapped so.
//   - Owners are compared as exact strings: owners differing only in case,
//     trailing spaces or characters that are special in LIKE or glob
//     patterns are distinct. DeleteOwner("") deletes nothing.
//
// # Limits
//
// Like x/net/nettest, the suite can miss bugs (concurrency bugs especially,
// which show up only under some schedules); it aims to report no failure
// that is not a breach of the contract as read above, and each failure
// quotes the clause it checks. A case that blocks for more than a minute
// fails, and the suite then cancels the context it passes to every store
// call, which releases a store that honours its context.
package sessiontest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
)

// Options adjusts the suite to a store. A nil *Options is the zero value:
// expiries exact to the millisecond, no clock of the store's own to advance.
type Options struct {
	// Precision is the coarsest expiry granularity the store keeps: a stored
	// expiry may differ from the one written by up to Precision (a store that
	// keeps whole seconds has a Precision of time.Second). Zero means exact
	// to the millisecond: the suite writes only whole milliseconds, and
	// requires Load to return them unchanged, a record to be live until the
	// millisecond before its expiry and expired at its expiry. The boundary
	// checks allow this much slack on each side. It must be between 0 and
	// one minute.
	Precision time.Duration

	// Advance, if non-nil, is called with the distance each time the suite
	// moves its virtual now forward, to move the store's own clock with it
	// (for example miniredis's FastForward, so that its TTLs follow the
	// suite's clock). Stores that compare expiries only with the now
	// argument, or that run against a server on the real clock, leave it
	// nil.
	//
	// A store whose clock Advance moves may expire records by itself before
	// DeleteExpired runs; with Advance set, the suite checks the counts that
	// DeleteExpired returns only as upper bounds.
	Advance func(t *testing.T, d time.Duration)
}

// maxPrecision bounds Options.Precision: the suite's short expiries are a
// few minutes ahead, and its boundary checks need them to stay apart.
const maxPrecision = time.Minute

// watchdogTimeout is how long a case may run; a variable so that the suite's
// own tests can shorten it.
var watchdogTimeout = time.Minute

// TestStore runs the store conformance suite on the stores that newStore
// returns. newStore is called once per subtest, with that subtest's t, and
// must return a new, empty store (or one that behaves as empty for the
// suite's random ids and owners); it may register cleanup with t.Cleanup. A
// nil opts is the zero [Options].
func TestStore(t *testing.T, newStore func(t *testing.T) sessions.Store, opts *Options) {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Precision < 0 || o.Precision > maxPrecision {
		t.Fatalf("sessiontest: Options.Precision is %v; it must be between 0 and %v", o.Precision, maxPrecision)
	}
	for _, g := range suite() {
		t.Run(g.name, func(t *testing.T) {
			if g.needs != capNone {
				// A fresh store only to learn what the store type implements.
				if probe := newStore(t); !g.needs.in(probe) {
					t.Skipf("store does not implement %s; its cases do not apply", g.needs)
				}
			}
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					var advance func(time.Duration)
					if o.Advance != nil {
						advance = func(d time.Duration) { o.Advance(t, d) }
					}
					runCase(t, g.name+"/"+c.name, func() sessions.Store { return newStore(t) }, o.Precision, advance, c.run)
				})
			}
		})
	}
}

// tb is the part of testing.TB that cases use. *testing.T implements it; the
// suite's own tests run cases with a recorder instead, to prove that broken
// stores fail.
type tb interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// capability is an optional interface a group of cases needs.
type capability int

const (
	capNone capability = iota
	capExpiredDeleter
	capOwnerIndex
)

func (c capability) String() string {
	switch c {
	case capExpiredDeleter:
		return "sessions.ExpiredDeleter"
	case capOwnerIndex:
		return "sessions.OwnerIndex"
	}
	return "sessions.Store"
}

func (c capability) in(s sessions.Store) bool {
	switch c {
	case capExpiredDeleter:
		_, ok := s.(sessions.ExpiredDeleter)
		return ok
	case capOwnerIndex:
		_, ok := s.(sessions.OwnerIndex)
		return ok
	}
	return true
}

// group is a named set of cases that need the same capability.
type group struct {
	name  string
	needs capability
	cases []testCase
}

// testCase is one subtest: it runs on a fresh store.
type testCase struct {
	name string
	run  func(h *harness)
}

// runCase runs one case on a new store under a watchdog.
func runCase(t tb, name string, newStore func() sessions.Store, precision time.Duration, advance func(time.Duration), run func(*harness)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The watchdog reports a hung case and cancels the context of every
	// store call, which releases stores that honour it. It must not report
	// once the case has returned.
	var mu sync.Mutex
	finished := false
	timer := time.AfterFunc(watchdogTimeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return
		}
		t.Errorf("sessiontest: %s did not finish within %v: a store call is blocked (a deadlock, a lock or connection never released, or a method that does not honour its context); the suite has now cancelled the context of every call", name, watchdogTimeout)
		cancel()
	})
	defer func() {
		mu.Lock()
		finished = true
		mu.Unlock()
		timer.Stop()
	}()

	st := newStore()
	if st == nil {
		t.Fatalf("sessiontest: newStore returned a nil Store")
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	h := &harness{
		t:       t,
		st:      st,
		ctx:     ctx,
		p:       precision,
		base:    now,
		cur:     now,
		advance: advance,
	}
	run(h)
}

// harness is what a case works with: the store, the virtual clock and
// helpers that report failures against the contract.
type harness struct {
	t   tb
	st  sessions.Store
	ctx context.Context
	p   time.Duration // Options.Precision

	base    time.Time // the virtual clock at case start
	cur     time.Time // the virtual now
	advance func(time.Duration)
}

// errNote explains why an unexpected error fails a case.
const errNote = `store.go: an error means the store could not answer; "not found", "already exists", "changed" and "gone" are reported through the boolean results, never as errors`

// now returns the virtual now.
func (h *harness) now() time.Time { return h.cur }

// at returns the instant d after the case's start.
func (h *harness) at(d time.Duration) time.Time { return h.base.Add(d) }

// setNow moves the virtual clock forward to t (never back) and advances the
// store's own clock with it.
func (h *harness) setNow(t time.Time) {
	h.t.Helper()
	if t.Before(h.cur) {
		h.t.Fatalf("sessiontest: internal error: the virtual clock cannot move back from %s to %s", h.fmt(h.cur), h.fmt(t))
	}
	d := t.Sub(h.cur)
	h.cur = t
	if d > 0 && h.advance != nil {
		h.advance(d)
	}
}

// wait moves the virtual clock forward by d.
func (h *harness) wait(d time.Duration) {
	h.t.Helper()
	h.setNow(h.cur.Add(d))
}

// justBefore returns the latest now at which a record written with expiry e
// must still be live, given the store's Precision.
func (h *harness) justBefore(e time.Time) time.Time { return e.Add(-h.p - time.Millisecond) }

// expiredAt returns the earliest now at which a record written with expiry e
// must be expired, given the store's Precision.
func (h *harness) expiredAt(e time.Time) time.Time { return e.Add(h.p) }

// near reports whether a stored expiry matches the one written.
func (h *harness) near(got, want time.Time) bool {
	d := got.Sub(want)
	return d <= h.p && d >= -h.p
}

// fmt formats an instant for messages, relative to the case's start.
func (h *harness) fmt(t time.Time) string {
	if t.IsZero() {
		return "the zero time"
	}
	d := t.Sub(h.base)
	rel := "base+" + d.String()
	if d < 0 {
		rel = "base-" + (-d).String()
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") + " (" + rel + ")"
}

// newID returns a fresh id in the Manager's format: 64 lower-case hex digits.
func (h *harness) newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newOwner returns a fresh owner: label with a random suffix.
func (h *harness) newOwner(label string) string {
	var b [8]byte
	rand.Read(b[:])
	return label + "-" + hex.EncodeToString(b[:])
}

// randomData returns n random bytes.
func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// short abbreviates an id for messages.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// describe summarises data for messages.
func describe(b []byte) string {
	switch {
	case b == nil:
		return "nil"
	case len(b) <= 48:
		return fmt.Sprintf("%q", b)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d bytes (sha256 %x…)", len(b), sum[:4])
}

// difference says how got differs from want, for messages.
func difference(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d: %#02x, want %#02x", i, got[i], want[i])
		}
	}
	return "equal"
}

// The store calls. Each fails the case on an unexpected error, naming the
// call; results are returned for the case to judge.

func (h *harness) create(id string, data []byte, expiry time.Time, owner string) bool {
	h.t.Helper()
	created, err := h.st.Create(h.ctx, id, data, expiry, owner, h.cur)
	if err != nil {
		h.t.Fatalf("Create(id %s, expiry %s, owner %q) at now %s returned error %v (%s)", shortID(id), h.fmt(expiry), owner, h.fmt(h.cur), err, errNote)
	}
	return created
}

// mustCreate creates a record with a fresh or absent id.
func (h *harness) mustCreate(id string, data []byte, expiry time.Time, owner string) {
	h.t.Helper()
	if !h.create(id, data, expiry, owner) {
		h.t.Fatalf("Create: with no live record under the id, Create must store the record and report created=true (store.go: \"Create stores a new record with version 1 if no live record has the id\"); got created=false for id %s at now %s", shortID(id), h.fmt(h.cur))
	}
}

type loaded struct {
	data    []byte
	version int64
	expiry  time.Time
	found   bool
}

func (h *harness) load(id string) loaded {
	h.t.Helper()
	data, version, expiry, found, err := h.st.Load(h.ctx, id, h.cur)
	if err != nil {
		h.t.Fatalf("Load(id %s) at now %s returned error %v (%s)", shortID(id), h.fmt(h.cur), err, errNote)
	}
	return loaded{data, version, expiry, found}
}

func (h *harness) update(id string, version int64, data []byte, expiry time.Time, owner string) (updated, found bool) {
	h.t.Helper()
	updated, found, err := h.st.Update(h.ctx, id, version, data, expiry, owner, h.cur)
	if err != nil {
		h.t.Fatalf("Update(id %s, version %d, expiry %s, owner %q) at now %s returned error %v (%s)", shortID(id), version, h.fmt(expiry), owner, h.fmt(h.cur), err, errNote)
	}
	if updated && !found {
		h.t.Errorf("Update: updated=true must come with found=true (store.go: \"updated == true: the record was written (found is true)\"); got updated=true, found=false for id %s", shortID(id))
	}
	return updated, found
}

// mustUpdate updates a record the case knows to be live at version.
func (h *harness) mustUpdate(id string, version int64, data []byte, expiry time.Time, owner string) {
	h.t.Helper()
	if updated, found := h.update(id, version, data, expiry, owner); !updated {
		h.t.Fatalf("Update: a live record whose version matches must be written (updated=true, found=true); got updated=false, found=%v for id %s at version %d, now %s", found, shortID(id), version, h.fmt(h.cur))
	}
}

func (h *harness) touch(id string, expiry time.Time) bool {
	h.t.Helper()
	found, err := h.st.Touch(h.ctx, id, expiry, h.cur)
	if err != nil {
		h.t.Fatalf("Touch(id %s, expiry %s) at now %s returned error %v (%s)", shortID(id), h.fmt(expiry), h.fmt(h.cur), err, errNote)
	}
	return found
}

func (h *harness) del(id string) {
	h.t.Helper()
	if err := h.st.Delete(h.ctx, id); err != nil {
		h.t.Fatalf("Delete(id %s) returned error %v (store.go: \"Deleting an absent record is not an error\"; %s)", shortID(id), err, errNote)
	}
}

func (h *harness) deleteExpired() int {
	h.t.Helper()
	n, err := h.st.(sessions.ExpiredDeleter).DeleteExpired(h.ctx, h.cur)
	if err != nil {
		h.t.Fatalf("DeleteExpired at now %s returned error %v (%s)", h.fmt(h.cur), err, errNote)
	}
	return n
}

// wantDeletedExpired checks the count DeleteExpired returned. With Advance
// set the store's own clock may have removed records first, so the count is
// only an upper bound then.
func (h *harness) wantDeletedExpired(clause string, got, want int) {
	h.t.Helper()
	if h.advance != nil {
		if got < 0 || got > want {
			h.t.Errorf("%s: DeleteExpired at now %s returned %d; want at most %d (with Options.Advance set, records the store expired by itself are not counted)", clause, h.fmt(h.cur), got, want)
		}
		return
	}
	if got != want {
		h.t.Errorf("%s: DeleteExpired at now %s returned %d; want %d (sessions.ExpiredDeleter: \"removes records whose expiry is at or before now and returns how many it removed\")", clause, h.fmt(h.cur), got, want)
	}
}

func (h *harness) listOwner(owner string) []string {
	h.t.Helper()
	ids, err := h.st.(sessions.OwnerIndex).ListOwner(h.ctx, owner, h.cur)
	if err != nil {
		h.t.Fatalf("ListOwner(%q) at now %s returned error %v (%s)", owner, h.fmt(h.cur), err, errNote)
	}
	return ids
}

func (h *harness) deleteOwner(owner string) int {
	h.t.Helper()
	n, err := h.st.(sessions.OwnerIndex).DeleteOwner(h.ctx, owner, h.cur)
	if err != nil {
		h.t.Fatalf("DeleteOwner(%q) at now %s returned error %v (%s)", owner, h.fmt(h.cur), err, errNote)
	}
	return n
}

// wantOwner checks that ListOwner(owner) returns exactly ids, each once, in
// any order.
func (h *harness) wantOwner(clause, owner string, ids ...string) {
	h.t.Helper()
	got := slices.Clone(h.listOwner(owner))
	want := slices.Clone(ids)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		h.t.Errorf("%s: ListOwner(%q) at now %s returned %s; want exactly %s (sessions.OwnerIndex: \"returns the ids of the records owned by owner that are live at now\")", clause, owner, h.fmt(h.cur), shortList(got), shortList(want))
	}
}

func shortList(ids []string) string {
	if len(ids) == 0 {
		return "no ids"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = shortID(id)
	}
	return fmt.Sprint(s)
}

// wantRecord checks that id loads at the virtual now with the given data,
// version and expiry (within Precision).
func (h *harness) wantRecord(clause, id string, data []byte, version int64, expiry time.Time) {
	h.t.Helper()
	got := h.load(id)
	if !got.found {
		h.t.Fatalf("%s: Load(id %s) at now %s reported found=false; want the record with data %s, version %d, expiry %s", clause, shortID(id), h.fmt(h.cur), describe(data), version, h.fmt(expiry))
	}
	if !bytes.Equal(got.data, data) {
		h.t.Errorf("%s: Load(id %s) returned data %s; want %s (%s; store.go: a store \"must return it byte for byte as written\")", clause, shortID(id), describe(got.data), describe(data), difference(got.data, data))
	} else if got.data == nil && data != nil {
		h.t.Errorf("%s: Load(id %s) returned nil data for empty data; want an empty, non-nil slice (store.go: \"byte for byte as written (including an empty, non-nil slice)\")", clause, shortID(id))
	}
	if got.version != version {
		h.t.Errorf("%s: Load(id %s) returned version %d; want %d (store.go: \"Create stores version 1; a successful Update stores the given version plus one; Touch leaves it unchanged\")", clause, shortID(id), got.version, version)
	}
	if !h.near(got.expiry, expiry) {
		h.t.Errorf("%s: Load(id %s) returned expiry %s; want %s (as written, within Options.Precision %v)", clause, shortID(id), h.fmt(got.expiry), h.fmt(expiry), h.p)
	}
}

// wantAbsent checks that id does not load at the virtual now.
func (h *harness) wantAbsent(clause, id string) {
	h.t.Helper()
	if got := h.load(id); got.found {
		h.t.Errorf("%s: Load(id %s) at now %s found a record (data %s, version %d, expiry %s); want found=false", clause, shortID(id), h.fmt(h.cur), describe(got.data), got.version, h.fmt(got.expiry))
	}
}

// goroutines runs f(0) … f(n-1) concurrently, released together, and waits
// for all of them. f must report failures with Errorf only.
func goroutines(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// doneContexts returns contexts that are already done, one per way a context
// ends, with a description for messages.
func doneContexts() []struct {
	name string
	ctx  context.Context
} {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Hour))
	cancel2() // Err stays DeadlineExceeded
	return []struct {
		name string
		ctx  context.Context
	}{
		{"a cancelled context", cancelled},
		{"a context past its deadline", expired},
	}
}
