package sessiontest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
)

// The suite must be able to fail. These tests run its cases against
// refStore, a plain reference store that can be made to break one clause of
// the contract at a time, and check that the cases meant to catch each fault
// do fail, while the faultless store passes every case.

// fault is one way for refStore to break the contract.
type fault int

const (
	faultNone fault = iota
	faultUpsertOnUpdate
	faultCreateOverwrites
	faultCreateRefusesExpired
	faultCreateKeepsOwnerOnReplace
	faultRetainsInput
	faultSharesOutput
	faultNilForEmpty
	faultVersionFrom0
	faultIgnoresVersion
	faultNonAtomicUpdate
	faultTornRead
	faultUpdateGreatestExpiry
	faultLiveAtExpiry
	faultWallClock
	faultSecondsPrecision
	faultTouchShortens
	faultTouchRevives
	faultTouchBumpsVersion
	faultTouchFalseWhenNotLater
	faultIgnoresContext
	faultUnwrappedCtxErr
	faultUpdateKeepsOwner
	faultIndexesEmptyOwner
	faultListsExpired
	faultDeleteOwnerCountsExpired
	faultCaseInsensitiveOwner
	faultSweepsLive
	faultSweepOneBatch
	faultSweepTwoSteps
	faultUpdateChecksVersionFirst
	faultHangs
)

// refStore is a deliberately simple store: a map under one mutex, with the
// owner index computed by scanning. With faultNone it meets the contract.
type refStore struct {
	fault fault
	mu    sync.Mutex
	recs  map[string]*refRecord
}

type refRecord struct {
	data    []byte
	version int64
	expiry  time.Time
	owner   string
}

func newRefStore(f fault) *refStore { return &refStore{fault: f, recs: map[string]*refRecord{}} }

func (s *refStore) has(f fault) bool { return s.fault == f }

func (s *refStore) live(r *refRecord, now time.Time) bool {
	if r == nil {
		return false
	}
	if s.has(faultWallClock) {
		now = time.Now()
	}
	if s.has(faultLiveAtExpiry) {
		return !now.After(r.expiry)
	}
	return now.Before(r.expiry)
}

func (s *refStore) ctxErr(ctx context.Context) error {
	if s.has(faultIgnoresContext) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		if s.has(faultUnwrappedCtxErr) {
			return errors.New("refstore: request cancelled")
		}
		return fmt.Errorf("refstore: %w", err)
	}
	return nil
}

func (s *refStore) in(b []byte) []byte {
	switch {
	case s.has(faultRetainsInput):
		return b
	case s.has(faultNilForEmpty) && len(b) == 0:
		return nil
	}
	return append([]byte{}, b...)
}

func (s *refStore) out(b []byte) []byte {
	switch {
	case s.has(faultSharesOutput):
		return b
	case s.has(faultNilForEmpty) && len(b) == 0:
		return nil
	}
	return append([]byte{}, b...)
}

func (s *refStore) exp(t time.Time) time.Time {
	if s.has(faultSecondsPrecision) {
		return t.Truncate(time.Second)
	}
	return t
}

func (s *refStore) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if err := s.ctxErr(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recs[id]
	if s.live(r, now) && !s.has(faultCreateOverwrites) {
		return false, nil
	}
	if r != nil && s.has(faultCreateRefusesExpired) {
		return false, nil
	}
	if r != nil && s.has(faultCreateKeepsOwnerOnReplace) {
		owner = r.owner
	}
	version := int64(1)
	if s.has(faultVersionFrom0) {
		version = 0
	}
	s.recs[id] = &refRecord{s.in(data), version, s.exp(expiry), owner}
	return true, nil
}

func (s *refStore) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if s.has(faultHangs) {
		<-ctx.Done()
	}
	if err := s.ctxErr(ctx); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recs[id]
	if !s.live(r, now) {
		return nil, 0, time.Time{}, false, nil
	}
	version := r.version
	if s.has(faultTornRead) {
		// Version and data read in two steps, as with two round trips.
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
		if r = s.recs[id]; r == nil {
			return nil, 0, time.Time{}, false, nil
		}
	}
	return s.out(r.data), version, r.expiry, true, nil
}

func (s *refStore) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if err := s.ctxErr(ctx); err != nil {
		return false, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recs[id]
	if r != nil && r.version != version && s.has(faultUpdateChecksVersionFirst) {
		return false, true, nil
	}
	if !s.live(r, now) {
		if s.has(faultUpsertOnUpdate) {
			s.recs[id] = &refRecord{s.in(data), version + 1, s.exp(expiry), owner}
			return true, true, nil
		}
		return false, false, nil
	}
	if r.version != version && !s.has(faultIgnoresVersion) {
		return false, true, nil
	}
	if s.has(faultNonAtomicUpdate) {
		// Check, then act in a second step, as with a SELECT then UPDATE.
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
	}
	r.data = s.in(data)
	r.version++
	if !s.has(faultUpdateGreatestExpiry) || expiry.After(r.expiry) {
		r.expiry = s.exp(expiry)
	}
	if !s.has(faultUpdateKeepsOwner) {
		r.owner = owner
	}
	return true, true, nil
}

func (s *refStore) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if err := s.ctxErr(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recs[id]
	if !s.live(r, now) {
		if r != nil && s.has(faultTouchRevives) {
			r.expiry = s.exp(expiry)
			return true, nil
		}
		return false, nil
	}
	if s.has(faultTouchFalseWhenNotLater) && !expiry.After(r.expiry) {
		return false, nil
	}
	if expiry.After(r.expiry) || s.has(faultTouchShortens) {
		r.expiry = s.exp(expiry)
	}
	if s.has(faultTouchBumpsVersion) {
		r.version++
	}
	return true, nil
}

func (s *refStore) Delete(ctx context.Context, id string) error {
	if err := s.ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, id)
	return nil
}

func (s *refStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := s.ctxErr(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if s.has(faultSweepTwoSteps) {
		// Select, then delete by id alone, as two statements.
		var ids []string
		for id, r := range s.recs {
			if !s.live(r, now) {
				ids = append(ids, id)
			}
		}
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
		for _, id := range ids {
			if s.recs[id] != nil {
				delete(s.recs, id)
				n++
			}
		}
		return n, nil
	}
	for id, r := range s.recs {
		if s.has(faultSweepOneBatch) && n == 1000 {
			break
		}
		if !s.live(r, now) || (s.has(faultSweepsLive) && !r.expiry.After(now.Add(time.Millisecond))) {
			delete(s.recs, id)
			n++
		}
	}
	return n, nil
}

func (s *refStore) owns(r *refRecord, owner string) bool {
	if owner == "" && !s.has(faultIndexesEmptyOwner) {
		return false
	}
	if s.has(faultCaseInsensitiveOwner) {
		return strings.EqualFold(r.owner, owner)
	}
	return r.owner == owner
}

func (s *refStore) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if err := s.ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, r := range s.recs {
		if s.owns(r, owner) && (s.live(r, now) || s.has(faultListsExpired)) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (s *refStore) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if err := s.ctxErr(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.recs {
		if s.owns(r, owner) {
			if s.live(r, now) || s.has(faultDeleteOwnerCountsExpired) {
				n++
			}
			delete(s.recs, id)
		}
	}
	return n, nil
}

var (
	_ sessions.ExpiredDeleter = (*refStore)(nil)
	_ sessions.OwnerIndex     = (*refStore)(nil)
)

// recorder stands in for *testing.T when a case runs against a store that
// is meant to fail it.
type recorder struct {
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Logf(string, ...any) {}

// runRecorded runs the named case ("Group/Case") on st and returns the
// failures it reported.
func runRecorded(t *testing.T, name string, st sessions.Store, precision time.Duration) (failed bool, msgs []string) {
	t.Helper()
	c, ok := caseByName(name)
	if !ok {
		t.Fatalf("no case named %q", name)
	}
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runCase(rec, name, func() sessions.Store { return st }, precision, nil, c.run)
	}()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.failed, rec.msgs
}

func caseByName(name string) (testCase, bool) {
	for _, g := range suite() {
		for _, c := range g.cases {
			if g.name+"/"+c.name == name {
				return c, true
			}
		}
	}
	return testCase{}, false
}

func allCaseNames() []string {
	var names []string
	for _, g := range suite() {
		for _, c := range g.cases {
			names = append(names, g.name+"/"+c.name)
		}
	}
	return names
}

// TestReferenceStorePasses: the faultless reference store passes every
// case, run through the recorder and through TestStore itself; so the
// failures below come from the faults, not from the suite.
func TestReferenceStorePasses(t *testing.T) {
	for _, name := range allCaseNames() {
		if failed, msgs := runRecorded(t, name, newRefStore(faultNone), 0); failed {
			t.Errorf("%s failed on the faultless reference store:\n%s", name, strings.Join(msgs, "\n"))
		}
	}
	TestStore(t, func(*testing.T) sessions.Store { return newRefStore(faultNone) }, nil)
}

// TestSuiteCatchesFaults: each fault fails every case listed for it, with a
// message that names the broken clause.
func TestSuiteCatchesFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  fault
		cases  []string
		phrase string // in at least one message of each case
	}{
		{"UpsertOnUpdate", faultUpsertOnUpdate, []string{"Update/UnknownID", "Update/ExpiredID", "Update/DeletedID"}, "no record is created"},
		{"CreateOverwrites", faultCreateOverwrites, []string{"Create/LiveIDIsNotOverwritten", "Concurrency/SameIDCreate", "OwnerIndex/TouchAndRefusedWritesKeepOwner"}, "Create"},
		{"CreateRefusesExpired", faultCreateRefusesExpired, []string{"Create/ExpiredIDIsReplaced", "Update/ExpiredID", "Touch/ExpiredID", "Expiry/AtOrBeforeNowIsAbsent"}, "Create"},
		{"CreateKeepsOwnerOnReplace", faultCreateKeepsOwnerOnReplace, []string{"OwnerIndex/ExpiredIDReplacedByNewOwner"}, "new owner"},
		{"RetainsInput", faultRetainsInput, []string{"Ownership/CreateInput", "Ownership/UpdateInput"}, "must not retain the data slice"},
		{"SharesOutput", faultSharesOutput, []string{"Ownership/LoadOutput"}, "may modify a slice returned by Load"},
		{"NilForEmpty", faultNilForEmpty, []string{"Data/Empty"}, "empty, non-nil slice"},
		{"VersionFrom0", faultVersionFrom0, []string{"Create/NewRecordHasVersion1", "Delete/RemovesRecord", "Update/MatchingVersion"}, "version"},
		{"IgnoresVersion", faultIgnoresVersion, []string{"Update/StaleVersion", "Concurrency/SameVersionUpdate"}, "version"},
		{"NonAtomicUpdate", faultNonAtomicUpdate, []string{"Concurrency/SameVersionUpdate", "Concurrency/IncrementRetryLoops"}, "Concurrency"},
		{"TornRead", faultTornRead, []string{"Concurrency/ConsistentLoads"}, "same write"},
		{"UpdateGreatestExpiry", faultUpdateGreatestExpiry, []string{"Update/MovesExpiryEarlier", "Update/PastExpiryEndsRecord"}, "Update"},
		{"LiveAtExpiry", faultLiveAtExpiry, []string{"Load/ExpiryBoundary", "Expiry/PreservedExactly", "Expiry/AtOrBeforeNowIsAbsent"}, "at or before now"},
		{"WallClock", faultWallClock, []string{"Load/ExpiryBoundary", "Touch/ExpiredID", "Update/ExpiredID"}, "expir"},
		{"SecondsPrecision", faultSecondsPrecision, []string{"Expiry/PreservedExactly"}, "Precision"},
		{"TouchShortens", faultTouchShortens, []string{"Touch/NeverShortens"}, "never move an expiry earlier"},
		{"TouchRevives", faultTouchRevives, []string{"Touch/ExpiredID"}, "never revive"},
		{"TouchBumpsVersion", faultTouchBumpsVersion, []string{"Touch/ExtendsExpiryOnly"}, "version"},
		{"TouchFalseWhenNotLater", faultTouchFalseWhenNotLater, []string{"Touch/NeverShortens"}, "found=true even when it leaves the expiry unchanged"},
		{"IgnoresContext", faultIgnoresContext, []string{"Context/Create", "Context/Load", "Context/Update", "Context/Touch", "Context/Delete", "ExpiredDeleter/Context", "OwnerIndex/Context"}, "must return an error"},
		{"UnwrappedCtxErr", faultUnwrappedCtxErr, []string{"Context/Load", "ExpiredDeleter/Context", "OwnerIndex/Context"}, "does not wrap"},
		{"UpdateKeepsOwner", faultUpdateKeepsOwner, []string{"OwnerIndex/UpdateMovesOwner", "OwnerIndex/ConcurrentOwnerChanges"}, "latest successful Create or Update"},
		{"IndexesEmptyOwner", faultIndexesEmptyOwner, []string{"OwnerIndex/EmptyOwnerNeverIndexed", "OwnerIndex/ListsLiveIDsOfOwner"}, "empty owner"},
		{"ListsExpired", faultListsExpired, []string{"OwnerIndex/ExpiredNotListed"}, "must not list expired records"},
		{"DeleteOwnerCountsExpired", faultDeleteOwnerCountsExpired, []string{"OwnerIndex/ExpiredNotListed"}, "were live at now"},
		{"CaseInsensitiveOwner", faultCaseInsensitiveOwner, []string{"OwnerIndex/OpaqueOwnerText"}, "opaque text"},
		{"SweepsLive", faultSweepsLive, []string{"ExpiredDeleter/RemovesOnlyExpired"}, "nothing that is live"},
		{"SweepTwoSteps", faultSweepTwoSteps, []string{"ExpiredDeleter/RacingReplacements"}, "must not delete the new, live records"},
		{"UpdateChecksVersionFirst", faultUpdateChecksVersionFirst, []string{"Update/ExpiredID"}, "not \"changed\""},
		{"SweepOneBatch", faultSweepOneBatch, []string{"ExpiredDeleter/ManyRecords"}, "in as many batches as it needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range tc.cases {
				failed, msgs := runRecorded(t, name, newRefStore(tc.fault), 0)
				if !failed {
					t.Errorf("%s passed on a store with fault %s; it must fail", name, tc.name)
					continue
				}
				if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tc.phrase) }) {
					t.Errorf("%s failed on fault %s, but no message contains %q:\n%s", name, tc.name, tc.phrase, strings.Join(msgs, "\n"))
				}
				// Each message must name the part of the contract it checks.
				for _, m := range msgs {
					if !hasClausePrefix(m) {
						t.Errorf("%s: message does not start with the method or capability it checks: %q", name, m)
					}
				}
			}
		})
	}
}

// hasClausePrefix reports whether a failure message starts with the name of
// what it checks, as "Update: …" or "OwnerIndex: …", or with the call that
// failed.
func hasClausePrefix(m string) bool {
	for _, p := range []string{"Create", "Load", "Update", "Touch", "Delete", "Data", "Ownership", "Expiry", "Context", "Concurrency", "ExpiredDeleter", "OwnerIndex", "ListOwner", "DeleteOwner", "DeleteExpired", "sessiontest"} {
		if strings.HasPrefix(m, p+":") || strings.HasPrefix(m, p+"(") || strings.HasPrefix(m, p+" ") {
			return true
		}
	}
	return false
}

// TestPrecisionAllowsCoarseStores: a store that keeps whole seconds passes
// the expiry cases once it declares a Precision of one second.
func TestPrecisionAllowsCoarseStores(t *testing.T) {
	for _, name := range allCaseNames() {
		if failed, msgs := runRecorded(t, name, newRefStore(faultSecondsPrecision), time.Second); failed {
			t.Errorf("%s failed on a whole-second store with Precision 1s:\n%s", name, strings.Join(msgs, "\n"))
		}
	}
}

// TestWatchdog: a case blocked in a store call fails with an explanation,
// and the cancelled context releases the call.
func TestWatchdog(t *testing.T) {
	saved := watchdogTimeout
	watchdogTimeout = 50 * time.Millisecond
	defer func() { watchdogTimeout = saved }()
	failed, msgs := runRecorded(t, "Load/UnknownID", newRefStore(faultHangs), 0)
	if !failed || !strings.Contains(msgs[0], "did not finish within") {
		t.Fatalf("a hanging Load must fail the case through the watchdog; got failed=%v, messages %q", failed, msgs)
	}
}

// TestAdvance: Advance is called with each forward move of the virtual
// clock, and the moves add up to the distance the case covered.
func TestAdvance(t *testing.T) {
	var moved time.Duration
	calls := 0
	c, _ := caseByName("Load/ExpiryBoundary")
	rec := &recorder{}
	var h *harness
	done := make(chan struct{})
	go func() {
		defer close(done)
		runCase(rec, "Load/ExpiryBoundary", func() sessions.Store { return newRefStore(faultNone) }, 0,
			func(d time.Duration) {
				if d <= 0 {
					rec.Errorf("sessiontest: Advance called with %v", d)
				}
				moved += d
				calls++
			},
			func(hh *harness) { h = hh; c.run(hh) })
	}()
	<-done
	if rec.failed {
		t.Fatal(rec.msgs)
	}
	if calls == 0 || moved != h.cur.Sub(h.base) {
		t.Fatalf("Advance was called %d times for %v in all; the virtual clock moved %v", calls, moved, h.cur.Sub(h.base))
	}
}

// capabilityless hides the optional interfaces of the store it wraps.
type capabilityless struct{ sessions.Store }

// TestHelperProcess is run by TestTestStoreReportsFailures in a child
// process; it does nothing otherwise.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("SESSIONTEST_HELPER") != "1" {
		t.Skip("helper for TestTestStoreReportsFailures")
	}
	TestStore(t, func(*testing.T) sessions.Store {
		return capabilityless{newRefStore(faultUpsertOnUpdate)}
	}, nil)
}

// TestTestStoreReportsFailures runs TestStore, through the real testing
// package, on a broken store without optional capabilities, and checks what
// go test reports.
func TestTestStoreReportsFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child test process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "SESSIONTEST_HELPER=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the child test run must fail; got err=%v, output:\n%s", err, out)
	}
	for _, want := range []string{
		"--- FAIL: TestHelperProcess/Update/UnknownID",
		"--- FAIL: TestHelperProcess/Update/DeletedID",
		"Update: with no live record under the id, Update must report \"gone\"",
		"--- PASS: TestHelperProcess/Update/StaleVersion",
		"--- SKIP: TestHelperProcess/ExpiredDeleter",
		"store does not implement sessions.ExpiredDeleter",
		"--- SKIP: TestHelperProcess/OwnerIndex",
		"store does not implement sessions.OwnerIndex",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("child output lacks %q; output:\n%s", want, out)
		}
	}
}
