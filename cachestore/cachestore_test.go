package cachestore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/cachestore"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/sessiontest"
)

func TestConformance(t *testing.T) {
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		s, err := cachestore.New(new(memstore.Store), new(memstore.Store), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, nil)
}

// TestConformanceLongMaxAge runs the suite with a front that may answer for
// an hour: within one process, the layering must still be exact.
func TestConformanceLongMaxAge(t *testing.T) {
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		s, err := cachestore.New(new(memstore.Store), new(memstore.Store), &cachestore.Options{MaxAge: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, nil)
}

func TestNewOptions(t *testing.T) {
	m := new(memstore.Store)
	if _, err := cachestore.New(nil, m, nil); !errors.Is(err, cachestore.ErrNilStore) {
		t.Errorf("nil front: err = %v", err)
	}
	if _, err := cachestore.New(m, nil, nil); !errors.Is(err, cachestore.ErrNilStore) {
		t.Errorf("nil back: err = %v", err)
	}
	if _, err := cachestore.New(m, m, &cachestore.Options{MaxAge: -time.Second}); !errors.Is(err, cachestore.ErrNegativeMaxAge) {
		t.Errorf("negative MaxAge: err = %v", err)
	}
	if _, err := cachestore.New(m, new(memstore.Store), &cachestore.Options{}); err != nil {
		t.Errorf("zero options: %v", err)
	}
}

var errInjected = errors.New("injected failure")

// faulty wraps a store and fails the selected operations.
type faulty struct {
	sessions.Store
	mu                                       sync.Mutex
	load, create, update, touch, del, listed bool
	calls                                    map[string]int
}

func (f *faulty) hit(op string, fail *bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	if *fail {
		return errInjected
	}
	return nil
}

func (f *faulty) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faulty) set(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load, f.create, f.update, f.touch, f.del, f.listed = fail, fail, fail, fail, fail, fail
}

func (f *faulty) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if err := f.hit("create", &f.create); err != nil {
		return false, err
	}
	return f.Store.Create(ctx, id, data, expiry, owner, now)
}

func (f *faulty) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if err := f.hit("load", &f.load); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	return f.Store.Load(ctx, id, now)
}

func (f *faulty) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if err := f.hit("update", &f.update); err != nil {
		return false, false, err
	}
	return f.Store.Update(ctx, id, version, data, expiry, owner, now)
}

func (f *faulty) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if err := f.hit("touch", &f.touch); err != nil {
		return false, err
	}
	return f.Store.Touch(ctx, id, expiry, now)
}

func (f *faulty) Delete(ctx context.Context, id string) error {
	if err := f.hit("delete", &f.del); err != nil {
		return err
	}
	return f.Store.Delete(ctx, id)
}

// faultyOwners adds a failing-capable OwnerIndex.
type faultyOwners struct {
	*faulty
}

func (f faultyOwners) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if err := f.hit("list owner", &f.listed); err != nil {
		return nil, err
	}
	return f.Store.(sessions.OwnerIndex).ListOwner(ctx, owner, now)
}

func (f faultyOwners) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if err := f.hit("delete owner", &f.listed); err != nil {
		return 0, err
	}
	return f.Store.(sessions.OwnerIndex).DeleteOwner(ctx, owner, now)
}

// logRecorder collects log records.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, b.String())
	return nil
}

func (l *logRecorder) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestFrontFailureNeverFailsReads checks that a front whose reads and
// writes fail costs nothing but logs: every operation is answered by the
// back. (A front that cannot delete fails writes: see
// TestFrontDeleteFailure.)
func TestFrontFailureNeverFailsReads(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	front := &faulty{Store: new(memstore.Store), load: true, create: true, update: true, touch: true}
	back := new(memstore.Store)
	logs := new(logRecorder)
	s, err := cachestore.New(front, back, &cachestore.Options{Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Hour)
	if ok, err := s.Create(ctx, testID, []byte("a"), exp, "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	data, v, gotExp, found, err := s.Load(ctx, testID, now)
	if err != nil || !found || string(data) != "a" || v != 1 || !gotExp.Equal(exp) {
		t.Fatalf("Load = %q, %d, %v, %v, %v", data, v, gotExp, found, err)
	}
	if ok, found, err := s.Update(ctx, testID, 1, []byte("b"), exp, "", now); !ok || !found || err != nil {
		t.Fatalf("Update = %v, %v, %v", ok, found, err)
	}
	if found, err := s.Touch(ctx, testID, exp.Add(time.Hour), now); !found || err != nil {
		t.Fatalf("Touch = %v, %v", found, err)
	}
	data, v, gotExp, found, err = s.Load(ctx, testID, now)
	if err != nil || !found || string(data) != "b" || v != 2 || !gotExp.Equal(exp.Add(time.Hour)) {
		t.Fatalf("Load = %q, %d, %v, %v, %v", data, v, gotExp, found, err)
	}
	if err := s.Delete(ctx, testID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, _, found, err := s.Load(ctx, testID, now); found || err != nil {
		t.Fatalf("Load after Delete = %v, %v", found, err)
	}
	msgs := logs.all()
	if len(msgs) == 0 {
		t.Fatal("front failures were not logged")
	}
	for _, m := range msgs {
		if !strings.Contains(m, "err=injected failure") || !strings.Contains(m, "id="+testID[:8]) {
			t.Errorf("log %q lacks the error or the id prefix", m)
		}
		if strings.Contains(m, testID) {
			t.Errorf("log %q carries the whole id", m)
		}
	}
}

// TestFrontDeleteFailure checks that a front that cannot drop an entry fails
// Delete and Update (a stale entry could serve a logged-out session), while
// Load, Create and Touch carry on.
func TestFrontDeleteFailure(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	front := &faulty{Store: new(memstore.Store)}
	back := new(memstore.Store)
	s, err := cachestore.New(front, back, &cachestore.Options{Logger: slog.New(new(logRecorder))})
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Hour)
	if ok, err := s.Create(ctx, testID, []byte("a"), exp, "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	front.mu.Lock()
	front.del = true
	front.mu.Unlock()

	if _, _, _, found, err := s.Load(ctx, testID, now); !found || err != nil {
		t.Fatalf("Load = %v, %v", found, err)
	}
	if found, err := s.Touch(ctx, testID, exp, now); !found || err != nil {
		t.Fatalf("Touch = %v, %v", found, err)
	}
	if ok, err := s.Create(ctx, strings.Repeat("1", 64), []byte("x"), exp, "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if _, _, err := s.Update(ctx, testID, 1, []byte("b"), exp, "", now); !errors.Is(err, errInjected) {
		t.Fatalf("Update: err = %v, want the front's failure", err)
	}
	if err := s.Delete(ctx, testID); !errors.Is(err, errInjected) {
		t.Fatalf("Delete: err = %v, want the front's failure", err)
	}
	// The back did apply the delete.
	if _, _, _, found, _ := back.Load(ctx, testID, now); found {
		t.Fatal("back still holds the record")
	}
}

// TestBackFailureFails checks that every operation that needs the back fails
// when the back does, and that a failed Delete or Update leaves nothing in
// the front that would answer for the back.
func TestBackFailureFails(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	front := new(memstore.Store)
	back := &faulty{Store: new(memstore.Store)}
	s, err := cachestore.New(front, faultyOwners{back}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := s
	idx := st.(sessions.OwnerIndex)
	exp := now.Add(time.Hour)
	if ok, err := st.Create(ctx, testID, []byte("a"), exp, "o", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if _, _, _, found, err := st.Load(ctx, testID, now); !found || err != nil { // fills the front
		t.Fatalf("Load = %v, %v", found, err)
	}
	back.set(true)

	other := strings.Repeat("2", 64)
	checks := map[string]error{}
	_, checks["create"] = st.Create(ctx, other, nil, exp, "", now)
	_, _, _, _, checks["load (miss)"] = st.Load(ctx, other, now)
	_, checks["touch"] = st.Touch(ctx, testID, exp, now)
	_, _, checks["update"] = st.Update(ctx, testID, 1, []byte("b"), exp, "", now)
	_, checks["list owner"] = idx.ListOwner(ctx, "o", now)
	_, checks["delete owner"] = idx.DeleteOwner(ctx, "o", now)
	checks["delete"] = st.Delete(ctx, testID)
	for op, err := range checks {
		if !errors.Is(err, errInjected) {
			t.Errorf("%s: err = %v, want the back's failure", op, err)
		} else if !strings.HasPrefix(err.Error(), "cachestore: ") {
			t.Errorf("%s: error %q lacks the cachestore: prefix", op, err)
		}
	}
	// The failed Update and Delete dropped the cached entry: a Load now
	// needs the back and fails instead of answering from the front.
	if _, _, _, _, err := st.Load(ctx, testID, now); !errors.Is(err, errInjected) {
		t.Fatalf("Load after failed Delete: err = %v, want the back's failure", err)
	}
}

// TestFrontServesWithinMaxAge checks that a filled front answers without
// the back, and only until MaxAge.
func TestFrontServesWithinMaxAge(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	back := &faulty{Store: new(memstore.Store)}
	s, err := cachestore.New(new(memstore.Store), back, &cachestore.Options{MaxAge: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Create(ctx, testID, []byte("a"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	for _, d := range []time.Duration{0, time.Second, 9 * time.Second, 10 * time.Second, 11 * time.Second} {
		if _, _, _, found, err := s.Load(ctx, testID, now.Add(d)); !found || err != nil {
			t.Fatalf("Load at +%v = %v, %v", d, found, err)
		}
	}
	// Loads at +0 (fill), +1s, +9s from the front; +10s refills; +11s front.
	if got := back.count("load"); got != 2 {
		t.Fatalf("back loads = %d, want 2", got)
	}
}

// TestStalenessBoundedByMaxAge uses two Stores sharing one back, as two
// processes would: a delete or update through one is seen by the other
// within MaxAge, and by the Store that made it at once.
func TestStalenessBoundedByMaxAge(t *testing.T) {
	ctx := context.Background()
	maxAge := 5 * time.Second
	back := new(memstore.Store)
	newCache := func() sessions.Store {
		s, err := cachestore.New(new(memstore.Store), back, &cachestore.Options{MaxAge: maxAge})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newCache(), newCache()
	now := time.Now()
	exp := now.Add(time.Hour)
	if ok, err := a.Create(ctx, testID, []byte("v1"), exp, "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	load := func(s sessions.Store, at time.Time) (string, bool) {
		t.Helper()
		data, _, _, found, err := s.Load(ctx, testID, at)
		if err != nil {
			t.Fatal(err)
		}
		return string(data), found
	}
	if d, ok := load(b, now); !ok || d != "v1" {
		t.Fatalf("b: %q %v", d, ok)
	}

	// Update through a: a sees it at once, b within MaxAge.
	if ok, _, err := a.Update(ctx, testID, 1, []byte("v2"), exp, "", now); !ok || err != nil {
		t.Fatalf("Update = %v, %v", ok, err)
	}
	if d, _ := load(a, now); d != "v2" {
		t.Fatalf("a after its own update: %q", d)
	}
	if d, _ := load(b, now.Add(maxAge-time.Millisecond)); d != "v1" {
		t.Logf("b saw the update early (allowed): %q", d)
	}
	if d, _ := load(b, now.Add(maxAge)); d != "v2" {
		t.Fatalf("b at +MaxAge: %q, want v2", d)
	}

	// Delete (logout) through a.
	t1 := now.Add(maxAge)
	if err := a.Delete(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if _, ok := load(a, t1); ok {
		t.Fatal("a still serves the session it deleted")
	}
	if _, ok := load(b, t1.Add(time.Second)); !ok {
		t.Fatal("b no longer caches the session: the staleness case is not exercised")
	}
	for _, d := range []time.Duration{maxAge, maxAge + time.Second} {
		if _, ok := load(b, t1.Add(d)); ok {
			t.Fatalf("b serves the deleted session at +%v, beyond MaxAge %v", d, maxAge)
		}
	}
}

// blockingBack holds Load calls until released.
type blockingBack struct {
	sessions.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingBack) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	data, v, exp, found, err := b.Store.Load(ctx, id, now)
	b.entered <- struct{}{}
	<-b.release
	return data, v, exp, found, err
}

// TestFillRacingDeleteIsDropped checks that a Load that read the back before
// a Delete in the same process cannot cache the deleted record after it.
func TestFillRacingDeleteIsDropped(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	mem := new(memstore.Store)
	back := &blockingBack{Store: mem, entered: make(chan struct{}), release: make(chan struct{})}
	front := new(memstore.Store)
	s, err := cachestore.New(front, back, &cachestore.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Create(ctx, testID, []byte("a"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	done := make(chan bool)
	go func() {
		_, _, _, found, _ := s.Load(ctx, testID, now)
		done <- found
	}()
	<-back.entered // the Load has read the record from the back
	if err := s.Delete(ctx, testID); err != nil {
		t.Fatal(err)
	}
	close(back.release)
	if !<-done {
		t.Fatal("the racing Load did not see the record it read")
	}
	if _, _, _, found, _ := front.Load(ctx, testID, now); found {
		t.Fatal("the racing Load cached a record deleted after it was read")
	}
	// Later loads go to the back (which no longer blocks) and find nothing.
	go func() {
		for range back.entered {
		}
	}()
	if _, _, _, found, err := s.Load(ctx, testID, now); found || err != nil {
		t.Fatalf("Load after Delete = %v, %v", found, err)
	}
	close(back.entered)
}

// onlyStore hides every capability of the store it wraps.
type onlyStore struct{ sessions.Store }

// ownersOnly exposes only OwnerIndex.
type ownersOnly struct {
	sessions.Store
	sessions.OwnerIndex
}

// sweepOnly exposes only ExpiredDeleter.
type sweepOnly struct {
	sessions.Store
	sessions.ExpiredDeleter
}

func TestWithBackCapabilities(t *testing.T) {
	m := new(memstore.Store)
	tests := []struct {
		name           string
		back           sessions.Store
		owners, sweeps bool
	}{
		{"plain", onlyStore{m}, false, false},
		{"owner index", ownersOnly{m, m}, true, false},
		{"expired deleter", sweepOnly{m, m}, false, true},
		{"both", m, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := cachestore.New(new(memstore.Store), tt.back, nil)
			if err != nil {
				t.Fatal(err)
			}
			// New's result has exactly the back's capabilities, and the
			// deprecated WithBackCapabilities returns the same.
			st := s
			if _, ok := s.(interface{ WithBackCapabilities() sessions.Store }).WithBackCapabilities().(sessions.OwnerIndex); ok != tt.owners {
				t.Errorf("WithBackCapabilities: OwnerIndex = %v, want %v", ok, tt.owners)
			}
			if _, ok := st.(sessions.OwnerIndex); ok != tt.owners {
				t.Errorf("OwnerIndex = %v, want %v", ok, tt.owners)
			}
			if _, ok := st.(sessions.ExpiredDeleter); ok != tt.sweeps {
				t.Errorf("ExpiredDeleter = %v, want %v", ok, tt.sweeps)
			}
		})
	}
}

// TestDeleteOwnerDropsFront checks that DeleteOwner through a Store is seen
// by that Store at once, although its front had cached the sessions.
func TestDeleteOwnerDropsFront(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s, err := cachestore.New(new(memstore.Store), new(memstore.Store), &cachestore.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st := s
	ids := []string{strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)}
	owners := []string{"u1", "u1", "u2"}
	for i, id := range ids {
		if ok, err := st.Create(ctx, id, []byte(id[:1]), now.Add(time.Hour), owners[i], now); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		if _, _, _, found, _ := st.Load(ctx, id, now); !found {
			t.Fatal("Load: not found")
		}
	}
	n, err := st.(sessions.OwnerIndex).DeleteOwner(ctx, "u1", now)
	if err != nil || n != 2 {
		t.Fatalf("DeleteOwner = %d, %v", n, err)
	}
	for i, id := range ids {
		_, _, _, found, err := st.Load(ctx, id, now)
		if err != nil || found != (owners[i] == "u2") {
			t.Errorf("Load(%s) = %v, %v", id[:1], found, err)
		}
	}
}

// TestLoadReturnsOwnCopy checks slice ownership through the front.
func TestLoadReturnsOwnCopy(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s, err := cachestore.New(new(memstore.Store), new(memstore.Store), &cachestore.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	in := []byte("hello")
	if ok, err := s.Create(ctx, testID, in, now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatal(ok, err)
	}
	in[0] = 'X'
	for range 3 { // back, then front twice
		data, _, _, _, _ := s.Load(ctx, testID, now)
		if !bytes.Equal(data, []byte("hello")) {
			t.Fatalf("Load = %q", data)
		}
		data[0] = 'Y'
	}
}
