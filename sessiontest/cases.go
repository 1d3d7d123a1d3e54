package sessiontest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionkit/sessions"
)

// Expiry distances used by the cases. short is well beyond any allowed
// Precision, so boundary checks around base+short never cross base.
const (
	short = 5 * time.Minute
	long  = 2 * time.Hour
)

// Concurrency levels.
const (
	contenders = 16 // goroutines racing on one id
	rounds     = 8  // rounds of each race
)

// suite returns every group of cases, in the order they run.
func suite() []group {
	return []group{
		{name: "Create", cases: []testCase{
			{"NewRecordHasVersion1", createNewRecord},
			{"LiveIDIsNotOverwritten", createLiveCollision},
			{"ExpiredIDIsReplaced", createReplacesExpired},
			{"IndependentIDs", createIndependentIDs},
		}},
		{name: "Load", cases: []testCase{
			{"UnknownID", loadUnknown},
			{"DoesNotChangeRecord", loadDoesNotChange},
			{"ExpiryBoundary", loadExpiryBoundary},
		}},
		{name: "Update", cases: []testCase{
			{"MatchingVersion", updateMatching},
			{"StaleVersion", updateStale},
			{"UnknownID", updateUnknown},
			{"ExpiredID", updateExpired},
			{"DeletedID", updateDeleted},
			{"MovesExpiryEarlier", updateMovesExpiryEarlier},
			{"PastExpiryEndsRecord", updatePastExpiry},
			{"RetireAtEpoch", updateRetire},
		}},
		{name: "Touch", cases: []testCase{
			{"ExtendsExpiryOnly", touchExtends},
			{"NeverShortens", touchNeverShortens},
			{"UnknownID", touchUnknown},
			{"ExpiredID", touchExpired},
			{"DeletedID", touchDeleted},
		}},
		{name: "Delete", cases: []testCase{
			{"RemovesRecord", deleteRemoves},
			{"Idempotent", deleteIdempotent},
			{"ExpiredRecord", deleteExpiredRecord},
			{"OnlyThatID", deleteOnlyThatID},
		}},
		{name: "Data", cases: []testCase{
			{"Empty", dataEmpty},
			{"AllByteValues", dataAllBytes},
			{"Large", dataLarge},
			{"AwkwardValues", dataAwkward},
		}},
		{name: "Ownership", cases: []testCase{
			{"CreateInput", ownCreateInput},
			{"UpdateInput", ownUpdateInput},
			{"LoadOutput", ownLoadOutput},
		}},
		{name: "Expiry", cases: []testCase{
			{"PreservedExactly", expiryPreserved},
			{"TimeZones", expiryTimeZones},
			{"AtOrBeforeNowIsAbsent", expiryAtNow},
		}},
		{name: "Context", cases: []testCase{
			{"Create", ctxCreate},
			{"Load", ctxLoad},
			{"Update", ctxUpdate},
			{"Touch", ctxTouch},
			{"Delete", ctxDelete},
		}},
		{name: "Concurrency", cases: []testCase{
			{"SameVersionUpdate", concSameVersionUpdate},
			{"SameIDCreate", concSameIDCreate},
			{"IncrementRetryLoops", concIncrements},
			{"DistinctIDs", concDistinctIDs},
			{"DeleteVersusUpdate", concDeleteVersusUpdate},
			{"TouchVersusUpdate", concTouchVersusUpdate},
			{"ConsistentLoads", concConsistentLoads},
		}},
		{name: "ExpiredDeleter", needs: capExpiredDeleter, cases: []testCase{
			{"RemovesOnlyExpired", sweepRemovesOnlyExpired},
			{"EmptyStore", sweepEmpty},
			{"ManyRecords", sweepMany},
			{"RacingReplacements", sweepRacingReplacements},
			{"Context", sweepContext},
		}},
		{name: "OwnerIndex", needs: capOwnerIndex, cases: []testCase{
			{"ListsLiveIDsOfOwner", ownerLists},
			{"EmptyOwnerNeverIndexed", ownerEmpty},
			{"UpdateMovesOwner", ownerUpdateMoves},
			{"TouchAndRefusedWritesKeepOwner", ownerKept},
			{"ExpiredIDReplacedByNewOwner", ownerReplacedExpired},
			{"DeleteRemovesFromList", ownerDelete},
			{"ExpiredNotListed", ownerExpired},
			{"DeleteOwner", ownerDeleteOwner},
			{"OpaqueOwnerText", ownerOpaque},
			{"ConcurrentOwnerChanges", ownerConcurrent},
			{"Context", ownerContext},
		}},
	}
}

// ---- Create ----

func createNewRecord(h *harness) {
	id, data, exp := h.newID(), []byte("new record"), h.at(long)
	h.mustCreate(id, data, exp, h.newOwner("owner"))
	h.wantRecord(`Create: a new record must load with the data and expiry written and version 1 (store.go: "Create stores a new record with version 1")`, id, data, 1, exp)
}

func createLiveCollision(h *harness) {
	id, exp, owner := h.newID(), h.at(long), h.newOwner("a")
	first, second := []byte("first"), []byte("second")
	h.mustCreate(id, first, exp, owner)
	h.mustUpdate(id, 1, second, exp, owner)
	for _, now := range []time.Time{h.now(), h.justBefore(exp)} {
		h.setNow(now)
		if h.create(id, []byte("intruder"), h.at(3*long), h.newOwner("b")) {
			h.t.Errorf(`Create: with a live record under the id, Create must report created=false with a nil error and never overwrite it (store.go: "It reports created == false, with a nil error, when a live record already has the id; it never overwrites one"); got created=true at now %s`, h.fmt(now))
		}
		h.wantRecord("Create: a refused Create must leave the live record untouched (data, version and expiry)", id, second, 2, exp)
	}
}

func createReplacesExpired(h *harness) {
	id, exp := h.newID(), h.at(short)
	h.mustCreate(id, []byte("old"), exp, "")
	h.mustUpdate(id, 1, []byte("old, updated"), exp, "")
	h.setNow(h.expiredAt(exp))
	data, exp2 := []byte("new"), h.now().Add(long)
	if !h.create(id, data, exp2, "") {
		h.t.Fatalf(`Create: an expired record counts as absent, so Create must store the new record and report created=true (store.go: "an expired record counts as absent and may be replaced"; created=false is reserved for "a live record already has the id"); got created=false at now %s for a record that expired at %s`, h.fmt(h.now()), h.fmt(exp))
	}
	h.wantRecord("Create: a record that replaced an expired one must load with the new data and expiry and version 1", id, data, 1, exp2)
}

func createIndependentIDs(h *harness) {
	ids := []string{h.newID(), h.newID(), h.newID()}
	for i, id := range ids {
		h.mustCreate(id, []byte("record "+strconv.Itoa(i)), h.at(long+time.Duration(i)*time.Minute), "")
	}
	h.mustUpdate(ids[1], 1, []byte("record 1, updated"), h.at(long), "")
	h.wantRecord("Create: records under different ids are independent", ids[0], []byte("record 0"), 1, h.at(long))
	h.wantRecord("Create: records under different ids are independent", ids[1], []byte("record 1, updated"), 2, h.at(long))
	h.wantRecord("Create: records under different ids are independent", ids[2], []byte("record 2"), 1, h.at(long+2*time.Minute))
}

// ---- Load ----

func loadUnknown(h *harness) {
	id := h.newID()
	h.wantAbsent(`Load: an id that was never written must report found=false with a nil error (store.go: "found is false, with a nil error, when no record has the id")`, id)
	h.wantAbsent("Load: loading an unknown id must not create a record", id)
	if updated, found := h.update(id, 1, []byte("x"), h.at(long), ""); updated || found {
		h.t.Errorf("Load: loading an unknown id must not create a record; a later Update reported updated=%v, found=%v, want false, false", updated, found)
	}
}

func loadDoesNotChange(h *harness) {
	id, data, exp := h.newID(), []byte("load me"), h.at(long+123*time.Millisecond)
	h.mustCreate(id, data, exp, "")
	for range 3 {
		h.wantRecord("Load: loading must not change the record (version, data and expiry stay as written)", id, data, 1, exp)
	}
	h.mustUpdate(id, 1, []byte("then updated"), exp, "")
	h.wantRecord("Load: loading must not change the record (version, data and expiry stay as written)", id, []byte("then updated"), 2, exp)
}

func loadExpiryBoundary(h *harness) {
	id, data, exp := h.newID(), []byte("boundary"), h.at(long)
	h.mustCreate(id, data, exp, "")
	h.setNow(h.justBefore(exp))
	h.wantRecord("Load: a record is live while now is before its expiry (allowing Options.Precision)", id, data, 1, exp)
	h.setNow(h.expiredAt(exp))
	h.wantAbsent(`Load: a record whose expiry is at or before now is expired and must report found=false (store.go: "A record whose expiry is at or before now is expired: it behaves exactly as an absent record"; allowing Options.Precision)`, id)
	h.wait(24 * time.Hour)
	h.wantAbsent("Load: an expired record must stay absent at a later now", id)
}

// ---- Update ----

func updateMatching(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("v1"), h.at(long), h.newOwner("a"))
	data2, exp2 := []byte("v2"), h.at(long+time.Hour)
	if updated, found := h.update(id, 1, data2, exp2, h.newOwner("b")); !updated || !found {
		h.t.Fatalf(`Update: a live record whose version matches must be written and reported as updated=true, found=true (store.go: "updated == true: the record was written"); got updated=%v, found=%v`, updated, found)
	}
	h.wantRecord("Update: after a successful Update the record must load with the new data and expiry and the version plus one", id, data2, 2, exp2)
	data3, exp3 := []byte("v3"), h.at(long+2*time.Hour)
	if updated, found := h.update(id, 2, data3, exp3, ""); !updated || !found {
		h.t.Fatalf("Update: a second Update with the new version must be written; got updated=%v, found=%v", updated, found)
	}
	h.wantRecord("Update: each successful Update must store the given version plus one", id, data3, 3, exp3)
}

func updateStale(h *harness) {
	id, exp := h.newID(), h.at(long)
	owner := h.newOwner("a")
	h.mustCreate(id, []byte("v1"), exp, owner)
	h.mustUpdate(id, 1, []byte("v2"), exp, owner)
	for _, v := range []int64{1, 0, 3, 99, -1} {
		updated, found := h.update(id, v, []byte("stale write"), h.at(3*long), h.newOwner("b"))
		if updated || !found {
			h.t.Errorf(`Update: a live record whose version differs must report "changed meanwhile": updated=false, found=true, and nothing written (store.go); got updated=%v, found=%v for version %d against stored version 2`, updated, found, v)
		}
		h.wantRecord("Update: an Update with a stale version must write nothing", id, []byte("v2"), 2, exp)
	}
}

func updateUnknown(h *harness) {
	id := h.newID()
	if updated, found := h.update(id, 1, []byte("ghost"), h.at(long), h.newOwner("a")); updated || found {
		h.t.Errorf(`Update: with no live record under the id, Update must report "gone": updated=false, found=false (store.go: "nothing was written and no record is created"); got updated=%v, found=%v`, updated, found)
	}
	h.wantAbsent(`Update: an Update of an unknown id must not create a record (store.go: "no record is created")`, id)
	h.wait(time.Hour)
	h.wantAbsent(`Update: an Update of an unknown id must not create a record, even one found at a later now`, id)
	data := []byte("created later")
	if !h.create(id, data, h.now().Add(long), "") {
		h.t.Fatalf("Update: an Update of an unknown id must not create a record; a later Create of the id reported created=false (a live record exists)")
	}
	h.wantRecord("Update: after a refused Update, Create must start the record at version 1", id, data, 1, h.now().Add(long))
}

func updateExpired(h *harness) {
	id, exp := h.newID(), h.at(short)
	h.mustCreate(id, []byte("old"), exp, "")
	h.setNow(h.expiredAt(exp))
	if updated, found := h.update(id, 99, []byte("resurrected"), h.now().Add(long), ""); updated || found {
		h.t.Errorf(`Update: an expired record counts as absent, so Update with a differing version must still report "gone" (updated=false, found=false), not "changed" (store.go: "found == true: the record is live but its version differs"); got updated=%v, found=%v`, updated, found)
	}
	if updated, found := h.update(id, 1, []byte("resurrected"), h.now().Add(long), ""); updated || found {
		h.t.Errorf(`Update: an expired record counts as absent, so Update must report "gone": updated=false, found=false and write nothing (store.go: "there is no live record (\"gone\"); nothing was written and no record is created"); got updated=%v, found=%v`, updated, found)
	}
	h.wantAbsent("Update: an Update of an expired record must not bring it back", id)
	h.wait(time.Minute)
	h.wantAbsent("Update: an Update of an expired record must not bring it back, even at a later now", id)
	data := []byte("new")
	if !h.create(id, data, h.now().Add(long), "") {
		h.t.Fatalf("Update: an Update of an expired record must not bring it back; a later Create of the id reported created=false (a live record exists)")
	}
	h.wantRecord("Update: after a refused Update, Create must start the record at version 1", id, data, 1, h.now().Add(long))
}

func updateDeleted(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("doomed"), h.at(long), "")
	h.del(id)
	if updated, found := h.update(id, 1, []byte("resurrected"), h.at(long), ""); updated || found {
		h.t.Errorf(`Update: after Delete, Update must report "gone": updated=false, found=false; a store that writes here resurrects logged-out sessions (store.go: "no record is created"); got updated=%v, found=%v`, updated, found)
	}
	h.wantAbsent("Update: an Update after Delete must not bring the record back", id)
}

func updateMovesExpiryEarlier(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("long-lived"), h.at(3*long), "")
	exp := h.at(short)
	h.mustUpdate(id, 1, []byte("short-lived"), exp, "")
	h.wantRecord(`Update: Update replaces the expiry, even with an earlier one (store.go: "Update replaces the data, expiry and owner"; only Touch never moves an expiry earlier)`, id, []byte("short-lived"), 2, exp)
	h.setNow(h.expiredAt(exp))
	h.wantAbsent("Update: a record must expire at the expiry its latest Update wrote, even an earlier one", id)
}

func updatePastExpiry(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("alive"), h.at(long), "")
	h.setNow(h.at(time.Minute))
	past := h.now().Add(-time.Minute - h.p)
	if updated, found := h.update(id, 1, []byte("ended"), past, ""); !updated || !found {
		h.t.Errorf("Update: a live record whose version matches must be written, whatever the new expiry; got updated=%v, found=%v for an expiry before now", updated, found)
	}
	h.wantAbsent("Update: a record updated with an expiry before now is expired at once and must report found=false", id)
	if updated, found := h.update(id, 2, []byte("again"), h.now().Add(long), ""); updated || found {
		h.t.Errorf(`Update: a record updated with an expiry before now is expired, so a further Update must report "gone" (false, false); got updated=%v, found=%v`, updated, found)
	}
	h.wantAbsent("Update: a record updated with an expiry before now must not come back", id)
}

// updateRetire checks the Update a renewal retires the old record with:
// empty data, an expiry 1 ms after the Unix epoch, no owner. It must obey
// the version check like any Update and leave the record absent for every
// operation, and out of its owner's list.
func updateRetire(h *harness) {
	id := h.newID()
	owner := h.newOwner("retiring")
	epoch := time.UnixMilli(1)
	h.mustCreate(id, []byte("renewing"), h.at(long), owner)
	if updated, found := h.update(id, 7, []byte{}, epoch, ""); updated || !found {
		h.t.Errorf(`Update: retiring a record at a stale version must report "changed" (false, true) and write nothing; got updated=%v, found=%v`, updated, found)
	}
	h.wantRecord("Update: a refused retirement must leave the record untouched", id, []byte("renewing"), 1, h.at(long))
	if updated, found := h.update(id, 1, []byte{}, epoch, ""); !updated || !found {
		h.t.Fatalf("Update: retiring a live record at its version (expiry 1 ms after the Unix epoch) must succeed; got updated=%v, found=%v", updated, found)
	}
	h.wantAbsent("Update: a record retired with an expiry at the Unix epoch must be absent", id)
	if h.touch(id, h.at(2*long)) {
		h.t.Errorf("Touch: a retired record must not be found (or revived) by Touch")
	}
	if updated, found := h.update(id, 2, []byte("back?"), h.at(long), owner); updated || found {
		h.t.Errorf(`Update: a retired record is absent, so Update must report "gone" (false, false); got updated=%v, found=%v`, updated, found)
	}
	h.wantAbsent("Update: a retired record must stay absent", id)
	if capOwnerIndex.in(h.st) {
		h.wantOwner("OwnerIndex: a retired record must not be listed for its former owner", owner)
	}
	if !h.create(id, []byte("reborn"), h.at(long), "") {
		h.t.Errorf("Create: a retired record is absent, so Create of its id must succeed")
	}
}

// ---- Touch ----

func touchExtends(h *harness) {
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, []byte("v1"), exp, "")
	h.mustUpdate(id, 1, []byte("v2"), exp, "")
	later := exp.Add(time.Hour)
	if !h.touch(id, later) {
		h.t.Fatalf(`Touch: Touch of a live record must report found=true (store.go: "found is false when there is no live record at now"); got false`)
	}
	h.wantRecord(`Touch: Touch must move the expiry later and change nothing else (store.go: "never changes the data, version or owner")`, id, []byte("v2"), 2, later)
	h.setNow(h.expiredAt(exp))
	h.wantRecord("Touch: a touched record must stay live past its former expiry", id, []byte("v2"), 2, later)
	h.mustUpdate(id, 2, []byte("v3"), later, "")
	h.wantRecord("Touch: Touch must leave the version as it was, so an Update with that version succeeds", id, []byte("v3"), 3, later)
	h.setNow(h.expiredAt(later))
	h.wantAbsent("Touch: a touched record must expire at its new expiry", id)
}

func touchNeverShortens(h *harness) {
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, []byte("data"), exp, "")
	for _, e := range []time.Time{h.at(short), exp, h.now().Add(-time.Hour)} {
		if !h.touch(id, e) {
			h.t.Errorf(`Touch: Touch of a live record must report found=true even when it leaves the expiry unchanged (store.go: "found is false when there is no live record at now"); got false for expiry %s`, h.fmt(e))
		}
		h.wantRecord(`Touch: Touch must never move an expiry earlier (store.go: "it never moves an expiry earlier")`, id, []byte("data"), 1, exp)
	}
	h.setNow(h.justBefore(exp))
	h.wantRecord("Touch: a record touched with an earlier expiry must stay live until its own expiry", id, []byte("data"), 1, exp)
}

func touchUnknown(h *harness) {
	id := h.newID()
	if h.touch(id, h.at(long)) {
		h.t.Errorf(`Touch: Touch of an unknown id must report found=false (store.go: "It never creates a record: found is false when there is no live record at now"); got true`)
	}
	h.wantAbsent(`Touch: Touch must never create a record (store.go: "It never creates a record")`, id)
	if !h.create(id, []byte("x"), h.at(long), "") {
		h.t.Errorf("Touch: Touch must never create a record; a later Create of the id reported created=false (a live record exists)")
	}
}

func touchExpired(h *harness) {
	id, exp := h.newID(), h.at(short)
	h.mustCreate(id, []byte("old"), exp, "")
	h.setNow(h.expiredAt(exp))
	if h.touch(id, h.now().Add(long)) {
		h.t.Errorf(`Touch: an expired record counts as absent, so Touch must report found=false and never revive it (store.go: "found is false when there is no live record at now"); got true`)
	}
	h.wantAbsent("Touch: Touch must never revive an expired record", id)
	h.wait(time.Minute)
	h.wantAbsent("Touch: Touch must never revive an expired record, even for a later now", id)
	if !h.create(id, []byte("new"), h.now().Add(long), "") {
		h.t.Errorf("Touch: Touch must never revive an expired record; a later Create of the id reported created=false (a live record exists)")
	}
}

func touchDeleted(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("doomed"), h.at(long), "")
	h.del(id)
	if h.touch(id, h.at(2*long)) {
		h.t.Errorf("Touch: after Delete, Touch must report found=false; got true")
	}
	h.wantAbsent("Touch: Touch after Delete must not bring the record back", id)
}

// ---- Delete ----

func deleteRemoves(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("old"), h.at(long), "")
	h.mustUpdate(id, 1, []byte("old, updated"), h.at(long), "")
	h.del(id)
	h.wantAbsent("Delete: after Delete the record must not load", id)
	data := []byte("new")
	if !h.create(id, data, h.at(long), "") {
		h.t.Fatalf("Delete: after Delete, Create of the id must report created=true; got false")
	}
	h.wantRecord("Delete: a record created after Delete must start again at version 1", id, data, 1, h.at(long))
}

func deleteIdempotent(h *harness) {
	h.del(h.newID())
	id := h.newID()
	h.mustCreate(id, []byte("x"), h.at(long), "")
	h.del(id)
	h.del(id)
	h.wantAbsent("Delete: a record deleted twice must not load", id)
}

func deleteExpiredRecord(h *harness) {
	id, exp := h.newID(), h.at(short)
	h.mustCreate(id, []byte("x"), exp, "")
	h.setNow(h.expiredAt(exp))
	h.del(id)
	h.wantAbsent("Delete: a deleted expired record must not load", id)
	h.mustCreate(id, []byte("y"), h.now().Add(long), "")
}

func deleteOnlyThatID(h *harness) {
	a, b := h.newID(), h.newID()
	h.mustCreate(a, []byte("a"), h.at(long), "")
	h.mustCreate(b, []byte("b"), h.at(long), "")
	h.del(a)
	h.wantAbsent("Delete: the deleted record must not load", a)
	h.wantRecord("Delete: Delete must remove only the record with the id", b, []byte("b"), 1, h.at(long))
}

// ---- Data ----

// roundTrips writes each value through Create (the first) and Update (all)
// and checks that it loads byte for byte.
func roundTrips(h *harness, what string, values ...[]byte) {
	h.t.Helper()
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, values[0], exp, "")
	h.wantRecord("Data: "+what+" must round-trip byte for byte through Create", id, values[0], 1, exp)
	version := int64(1)
	for _, v := range values {
		h.mustUpdate(id, version, v, exp, "")
		version++
		h.wantRecord("Data: "+what+" must round-trip byte for byte through Update", id, v, version, exp)
	}
	// Create with the last value too, under a fresh id.
	id2 := h.newID()
	last := values[len(values)-1]
	h.mustCreate(id2, last, exp, "")
	h.wantRecord("Data: "+what+" must round-trip byte for byte through Create", id2, last, 1, exp)
}

func dataEmpty(h *harness) {
	roundTrips(h, "empty data (an empty, non-nil slice)", []byte{}, []byte("not empty"), []byte{})
}

func dataAllBytes(h *harness) {
	up, down := make([]byte, 256), make([]byte, 256)
	for i := range 256 {
		up[i], down[i] = byte(i), byte(255-i)
	}
	roundTrips(h, "data holding every byte value", up, down, append(bytes.Repeat([]byte{0}, 16), up...))
}

func dataLarge(h *harness) {
	const mib = 1 << 20
	roundTrips(h, "1 MiB of random data", randomData(mib), randomData(mib), randomData(100), randomData(mib))
}

func dataAwkward(h *harness) {
	roundTrips(h, "data that text columns or escaping would alter",
		[]byte(" "), []byte("\x00"), []byte("trailing spaces   "), []byte("trailing NULs\x00\x00"),
		[]byte("\r\n"), []byte("'; DROP TABLE sessions; --"), []byte(`"\\%_*?`), []byte("\xff\xfe invalid UTF-8 \xc3"),
		[]byte("null"), []byte("0"))
}

// ---- Ownership ----

func ownCreateInput(h *harness) {
	id, exp := h.newID(), h.at(long)
	data := []byte("as passed to Create")
	want := bytes.Clone(data)
	h.mustCreate(id, data, exp, "")
	for i := range data {
		data[i] = 'X'
	}
	h.wantRecord(`Ownership: changing the slice passed to Create after the call must not change the record (store.go: "A store must not retain the data slice passed to Create or Update after the call returns")`, id, want, 1, exp)
}

func ownUpdateInput(h *harness) {
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, []byte("created"), exp, "")
	data := []byte("as passed to Update")
	want := bytes.Clone(data)
	h.mustUpdate(id, 1, data, exp, "")
	for i := range data {
		data[i] = 'X'
	}
	h.wantRecord(`Ownership: changing the slice passed to Update after the call must not change the record (store.go: "A store must not retain the data slice passed to Create or Update after the call returns")`, id, want, 2, exp)
}

func ownLoadOutput(h *harness) {
	id, exp := h.newID(), h.at(long)
	want := []byte("as stored")
	h.mustCreate(id, want, exp, "")
	first := h.load(id)
	second := h.load(id)
	for i := range first.data {
		first.data[i] = 'X'
	}
	if !bytes.Equal(second.data, want) {
		h.t.Errorf(`Ownership: each Load must return its own copy; changing one returned slice changed another to %s (store.go: "the caller may modify a slice returned by Load: each call deals in its own copy")`, describe(second.data))
	}
	h.wantRecord(`Ownership: changing the slice returned by Load must not change the record (store.go: "the caller may modify a slice returned by Load")`, id, want, 1, exp)
}

// ---- Expiry ----

func expiryPreserved(h *harness) {
	// Several millisecond offsets, so that a store that silently keeps
	// coarser time than its Precision cannot pass by luck.
	offsets := []time.Duration{
		long + time.Millisecond,
		long + 500*time.Millisecond,
		long + 999*time.Millisecond,
		25*time.Hour + 7*time.Millisecond,
		30*24*time.Hour + 250*time.Millisecond,
	}
	exps := make([]time.Time, 0, len(offsets)+1)
	for _, d := range offsets {
		exps = append(exps, h.at(d))
	}
	// Past 2038-01-19, where 32-bit Unix seconds (MySQL TIMESTAMP) end.
	exps = append(exps, h.base.AddDate(20, 0, 0).Add(42*time.Millisecond))
	ids := make([]string, len(exps))
	for i, e := range exps {
		ids[i] = h.newID()
		h.mustCreate(ids[i], []byte("x"), e, "")
	}
	for i, e := range exps {
		h.wantRecord("Expiry: Load must return the expiry as written (within Options.Precision)", ids[i], []byte("x"), 1, e)
	}
	// The expiries are in increasing order: walk the clock over each
	// boundary, skipping those closer to the previous one than the
	// Precision slack allows.
	for i, e := range exps {
		if h.justBefore(e).Before(h.now()) {
			continue
		}
		h.setNow(h.justBefore(e))
		h.wantRecord("Expiry: a record must be live until just before its expiry", ids[i], []byte("x"), 1, e)
		h.setNow(h.expiredAt(e))
		h.wantAbsent("Expiry: a record must be expired from its expiry on (store.go: \"A record whose expiry is at or before now is expired\")", ids[i])
	}
}

func expiryTimeZones(h *harness) {
	east := time.FixedZone("UTC+14", 14*3600)
	west := time.FixedZone("UTC-12", -12*3600)
	id, exp := h.newID(), h.at(long).In(east)
	h.mustCreate(id, []byte("zoned"), exp, "")
	h.wantRecord("Expiry: expiries are instants; their time zone must not matter", id, []byte("zoned"), 1, exp)
	load := func(now time.Time) bool {
		h.t.Helper()
		_, _, _, found, err := h.st.Load(h.ctx, id, now)
		if err != nil {
			h.t.Fatalf("Load(id %s) at now %s returned error %v (%s)", shortID(id), h.fmt(now), err, errNote)
		}
		return found
	}
	h.setNow(h.justBefore(exp))
	if !load(h.now().In(west)) {
		h.t.Errorf("Expiry: expiries and now are instants; their time zones must not matter: a record with expiry %s (UTC+14) must be live at now %s given in UTC-12", h.fmt(exp), h.fmt(h.now()))
	}
	h.setNow(h.expiredAt(exp))
	if load(h.now().In(west)) {
		h.t.Errorf("Expiry: expiries and now are instants; their time zones must not matter: a record with expiry %s (UTC+14) must be expired at now %s given in UTC-12", h.fmt(exp), h.fmt(h.now()))
	}
}

func expiryAtNow(h *harness) {
	for _, e := range []time.Time{h.now().Add(-h.p), h.now().Add(-time.Hour)} {
		id := h.newID()
		h.create(id, []byte("born expired"), e, "")
		h.wantAbsent(`Expiry: a record created with an expiry at or before now is expired at once (store.go: "A record whose expiry is at or before now is expired: it behaves exactly as an absent record")`, id)
		if !h.create(id, []byte("alive"), h.now().Add(long), "") {
			h.t.Errorf("Expiry: a record created with an expiry at or before now is absent, so a later Create of the id must report created=true; got false")
		}
	}
}

// ---- Context ----

// wantCtxErr checks that a call made with a done context failed as the
// contract requires.
func (h *harness) wantCtxErr(call, ctxName string, ctx context.Context, err error) {
	h.t.Helper()
	if err == nil {
		h.t.Errorf(`Context: %s with %s must return an error (store.go: "Every method honours ctx: when it is cancelled or its deadline passes, the method returns promptly with an error wrapping ctx.Err()"); got a nil error`, call, ctxName)
		return
	}
	if !errors.Is(err, ctx.Err()) {
		h.t.Errorf(`Context: %s with %s returned %q, which does not wrap %v; the suite requires errors.Is(err, ctx.Err()) so that callers can tell a cancelled request from a store failure (store.go: "an error wrapping ctx.Err() or the driver's equivalent": wrap the driver's error with %%w, or return ctx.Err() when it is set)`, call, ctxName, err, ctx.Err())
	}
}

func ctxCreate(h *harness) {
	for _, c := range doneContexts() {
		id := h.newID()
		_, err := h.st.Create(c.ctx, id, []byte("x"), h.at(long), h.newOwner("a"), h.now())
		h.wantCtxErr("Create", c.name, c.ctx, err)
		h.wantAbsent("Context: a Create that returned an error because its context was done must not have stored the record", id)
	}
}

func ctxLoad(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("x"), h.at(long), "")
	for _, c := range doneContexts() {
		_, _, _, _, err := h.st.Load(c.ctx, id, h.now())
		h.wantCtxErr("Load", c.name, c.ctx, err)
	}
}

func ctxUpdate(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("x"), h.at(long), "")
	for _, c := range doneContexts() {
		_, _, err := h.st.Update(c.ctx, id, 1, []byte("y"), h.at(2*long), "", h.now())
		h.wantCtxErr("Update", c.name, c.ctx, err)
		h.wantRecord("Context: an Update that returned an error because its context was done must not have written", id, []byte("x"), 1, h.at(long))
	}
}

func ctxTouch(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("x"), h.at(long), "")
	for _, c := range doneContexts() {
		_, err := h.st.Touch(c.ctx, id, h.at(2*long), h.now())
		h.wantCtxErr("Touch", c.name, c.ctx, err)
		h.wantRecord("Context: a Touch that returned an error because its context was done must not have moved the expiry", id, []byte("x"), 1, h.at(long))
	}
}

func ctxDelete(h *harness) {
	id := h.newID()
	h.mustCreate(id, []byte("x"), h.at(long), "")
	for _, c := range doneContexts() {
		err := h.st.Delete(c.ctx, id)
		h.wantCtxErr("Delete", c.name, c.ctx, err)
		h.wantRecord("Context: a Delete that returned an error because its context was done must not have deleted", id, []byte("x"), 1, h.at(long))
	}
}

// ---- Concurrency ----

func concSameVersionUpdate(h *harness) {
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, []byte("start"), exp, "")
	for round := range rounds {
		version := int64(round + 1)
		var (
			mu      sync.Mutex
			winners []int
		)
		goroutines(contenders, func(i int) {
			updated, found, err := h.st.Update(h.ctx, id, version, []byte(fmt.Sprintf("round %d writer %d", round, i)), exp, "", h.now())
			switch {
			case err != nil:
				h.t.Errorf("Concurrency: Update returned error %v (%s)", err, errNote)
			case updated:
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
			case !found:
				h.t.Errorf(`Concurrency: %d concurrent Updates of a live record with the same version: a loser must report "changed" (updated=false, found=true); got found=false`, contenders)
			}
		})
		if len(winners) != 1 {
			h.t.Fatalf("Concurrency: %d concurrent Updates of one record with the same loaded version must write exactly once (optimistic locking: store.go \"only if ... its version equals version\"); %d reported updated=true in round %d", contenders, len(winners), round)
		}
		h.wantRecord("Concurrency: after concurrent Updates with one version, the record must hold the winner's data and the version plus one", id, []byte(fmt.Sprintf("round %d writer %d", round, winners[0])), version+1, exp)
	}
}

func concSameIDCreate(h *harness) {
	exp := h.at(long)
	for round := range rounds {
		id := h.newID()
		var (
			mu      sync.Mutex
			winners []int
		)
		goroutines(contenders, func(i int) {
			created, err := h.st.Create(h.ctx, id, []byte(fmt.Sprintf("creator %d", i)), exp, "", h.now())
			switch {
			case err != nil:
				h.t.Errorf("Concurrency: Create returned error %v (%s)", err, errNote)
			case created:
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
			}
		})
		if len(winners) != 1 {
			h.t.Fatalf(`Concurrency: %d concurrent Creates of one new id must store exactly one record (store.go: "it never overwrites one"); %d reported created=true in round %d`, contenders, len(winners), round)
		}
		h.wantRecord("Concurrency: after concurrent Creates of one id, the record must hold the winner's data at version 1", id, []byte(fmt.Sprintf("creator %d", winners[0])), 1, exp)
	}
}

// increment adds one to the counter held in the record's data with a
// load/update retry loop, as the Manager does on conflicts. It returns false
// after reporting a failure.
func (h *harness) increment(id string, exp time.Time, encode func(n, version int64) []byte, decode func([]byte) (int64, error)) bool {
	for range 10000 {
		data, version, _, found, err := h.st.Load(h.ctx, id, h.now())
		if err != nil {
			h.t.Errorf("Concurrency: Load returned error %v (%s)", err, errNote)
			return false
		}
		if !found {
			h.t.Errorf("Concurrency: a live record must stay loadable while others update it; Load reported found=false")
			return false
		}
		n, err := decode(data)
		if err != nil {
			h.t.Errorf("Concurrency: Load returned data %s that no writer wrote (%v): a torn or mixed-up read", describe(data), err)
			return false
		}
		updated, found, err := h.st.Update(h.ctx, id, version, encode(n+1, version+1), exp, "", h.now())
		switch {
		case err != nil:
			h.t.Errorf("Concurrency: Update returned error %v (%s)", err, errNote)
			return false
		case updated:
			return true
		case !found:
			h.t.Errorf(`Concurrency: Update of a live record reported "gone" (found=false) while others update it`)
			return false
		}
	}
	h.t.Errorf("Concurrency: an increment did not succeed within 10000 load/update attempts")
	return false
}

func counterData(n, _ int64) []byte { return []byte("n=" + strconv.FormatInt(n, 10)) }

func counterValue(b []byte) (int64, error) {
	s, ok := bytes.CutPrefix(b, []byte("n="))
	if !ok {
		return 0, errors.New(`missing "n=" prefix`)
	}
	return strconv.ParseInt(string(s), 10, 64)
}

func concIncrements(h *harness) {
	const workers, each = 8, 25
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, counterData(0, 1), exp, "")
	goroutines(workers, func(int) {
		for range each {
			if !h.increment(id, exp, counterData, counterValue) {
				return
			}
		}
	})
	h.wantRecord(fmt.Sprintf("Concurrency: %d goroutines each adding %d through load/update retry loops must end at exactly %d, at version %d (no lost update)", workers, each, workers*each, workers*each+1),
		id, counterData(workers*each, 0), workers*each+1, exp)
}

func concDistinctIDs(h *harness) {
	const loops = 5
	goroutines(contenders, func(g int) {
		for l := range loops {
			id := h.newID()
			data := func(step string) []byte { return []byte(fmt.Sprintf("goroutine %d loop %d %s", g, l, step)) }
			exp := h.at(long + time.Duration(g)*time.Second)
			fail := func(format string, args ...any) {
				h.t.Errorf("Concurrency: operations on distinct ids must not interfere (goroutine %d, id %s): "+format, append([]any{g, shortID(id)}, args...)...)
			}
			if created, err := h.st.Create(h.ctx, id, data("created"), exp, "", h.now()); err != nil || !created {
				fail("Create = %v, %v; want true, nil", created, err)
				return
			}
			if updated, found, err := h.st.Update(h.ctx, id, 1, data("updated"), exp, "", h.now()); err != nil || !updated || !found {
				fail("Update = %v, %v, %v; want true, true, nil", updated, found, err)
				return
			}
			if found, err := h.st.Touch(h.ctx, id, exp.Add(time.Minute), h.now()); err != nil || !found {
				fail("Touch = %v, %v; want true, nil", found, err)
				return
			}
			got, version, expiry, found, err := h.st.Load(h.ctx, id, h.now())
			if err != nil || !found || !bytes.Equal(got, data("updated")) || version != 2 || !h.near(expiry, exp.Add(time.Minute)) {
				fail("Load = %s, version %d, expiry %s, found %v, err %v; want %s, version 2, expiry %s", describe(got), version, h.fmt(expiry), found, err, describe(data("updated")), h.fmt(exp.Add(time.Minute)))
				return
			}
			if err := h.st.Delete(h.ctx, id); err != nil {
				fail("Delete: %v", err)
				return
			}
			if _, _, _, found, err := h.st.Load(h.ctx, id, h.now()); err != nil || found {
				fail("Load after Delete = found %v, err %v; want false, nil", found, err)
				return
			}
		}
	})
}

func concDeleteVersusUpdate(h *harness) {
	const updaters = 8
	exp := h.at(long)
	for round := range rounds {
		id := h.newID()
		h.mustCreate(id, counterData(0, 1), exp, "")
		var deleted atomic.Bool // set once Delete has returned
		goroutines(updaters+1, func(g int) {
			if g == updaters {
				// Let the updaters get going, then delete.
				for range 1000 {
					_, version, _, found, err := h.st.Load(h.ctx, id, h.now())
					if err != nil || !found || version >= 4 {
						break
					}
				}
				if err := h.st.Delete(h.ctx, id); err != nil {
					h.t.Errorf("Concurrency: Delete returned error %v", err)
				}
				deleted.Store(true)
				return
			}
			for range 1000 {
				after := deleted.Load()
				data, version, _, found, err := h.st.Load(h.ctx, id, h.now())
				if err != nil {
					h.t.Errorf("Concurrency: Load returned error %v (%s)", err, errNote)
					return
				}
				if !found {
					return
				}
				if after {
					h.t.Errorf("Concurrency: a Load that started after Delete returned must report found=false; got version %d (round %d)", version, round)
					return
				}
				n, err := counterValue(data)
				if err != nil {
					h.t.Errorf("Concurrency: Load returned data %s that no writer wrote", describe(data))
					return
				}
				after = deleted.Load()
				updated, found, err := h.st.Update(h.ctx, id, version, counterData(n+1, 0), exp, "", h.now())
				if err != nil {
					h.t.Errorf("Concurrency: Update returned error %v (%s)", err, errNote)
					return
				}
				if after && (updated || found) {
					h.t.Errorf(`Concurrency: an Update that started after Delete returned must report "gone" (false, false); got updated=%v, found=%v: the store resurrects deleted sessions (round %d)`, updated, found, round)
					return
				}
				if !found {
					return
				}
			}
		})
		h.wantAbsent(fmt.Sprintf(`Concurrency: after Delete raced with Updates, the record must stay deleted: an Update must never recreate it (store.go: "no record is created") (round %d)`, round), id)
	}
}

func concTouchVersusUpdate(h *harness) {
	const updaters, each, touchers, touches = 4, 20, 4, 25
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, counterData(0, 1), exp, "")
	goroutines(updaters+touchers, func(g int) {
		if g >= updaters {
			for i := range touches {
				found, err := h.st.Touch(h.ctx, id, exp.Add(time.Duration(g*touches+i)*time.Millisecond), h.now())
				if err != nil || !found {
					h.t.Errorf("Concurrency: Touch of a live record while others update it = %v, %v; want true, nil", found, err)
					return
				}
			}
			return
		}
		for range each {
			if !h.increment(id, exp, counterData, counterValue) {
				return
			}
		}
	})
	got := h.load(id)
	n, err := counterValue(got.data)
	if !got.found || err != nil || n != updaters*each || got.version != updaters*each+1 {
		h.t.Errorf(`Concurrency: Touch racing with Updates must never undo an Update (store.go: Touch "never changes the data, version or owner"): want counter %d at version %d, got %s at version %d (found %v)`, updaters*each, updaters*each+1, describe(got.data), got.version, got.found)
	}
}

func versionData(_, version int64) []byte { return []byte("v=" + strconv.FormatInt(version, 10)) }

func versionValue(b []byte) (int64, error) {
	s, ok := bytes.CutPrefix(b, []byte("v="))
	if !ok {
		return 0, errors.New(`missing "v=" prefix`)
	}
	return strconv.ParseInt(string(s), 10, 64)
}

func concConsistentLoads(h *harness) {
	const writers, each, readers = 4, 25, 4
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, versionData(0, 1), exp, "")
	var done atomic.Bool
	var writersLeft atomic.Int32
	writersLeft.Store(writers)
	goroutines(writers+readers, func(g int) {
		if g < writers {
			defer func() {
				if writersLeft.Add(-1) == 0 {
					done.Store(true)
				}
			}()
			for range each {
				// The data names the version it is written at; the counter
				// decoding is irrelevant here.
				if !h.increment(id, exp, versionData, func([]byte) (int64, error) { return 0, nil }) {
					return
				}
			}
			return
		}
		for i := 0; i < 100000 && !done.Load(); i++ {
			data, version, _, found, err := h.st.Load(h.ctx, id, h.now())
			if err != nil || !found {
				h.t.Errorf("Concurrency: Load of a live record while others update it = found %v, err %v; want found, nil", found, err)
				return
			}
			if v, err := versionValue(data); err != nil || v != version {
				h.t.Errorf("Concurrency: Load must return data and version from the same write: got data %s with version %d", describe(data), version)
				return
			}
		}
	})
	h.wantRecord("Concurrency: after concurrent writers, the record must hold the last write", id, versionData(0, writers*each+1), writers*each+1, exp)
}

// ---- ExpiredDeleter ----

func sweepRemovesOnlyExpired(h *harness) {
	// Everything is written before the clock moves: a store may remove
	// expired records during other writes, and DeleteExpired counts only
	// what it removes itself.
	soon := h.at(short)
	sweepAt := h.expiredAt(soon)
	var expired, live []string
	for i := range 3 {
		id := h.newID()
		h.mustCreate(id, []byte("expiring"), soon.Add(-time.Duration(i)*time.Minute), h.newOwner("o"))
		expired = append(expired, id)
	}
	// Live at sweepAt by one millisecond beyond the Precision slack, and
	// comfortably.
	justLive, wellLive := sweepAt.Add(h.p+time.Millisecond), sweepAt.Add(long)
	for _, e := range []time.Time{justLive, wellLive} {
		id := h.newID()
		h.mustCreate(id, []byte("live"), e, "")
		live = append(live, id)
	}
	h.mustUpdate(live[1], 1, []byte("live, updated"), wellLive, "")
	h.setNow(sweepAt)

	n := h.deleteExpired()
	h.wantDeletedExpired("ExpiredDeleter: DeleteExpired must remove exactly the expired records (expiry at or before now) and count them", n, len(expired))
	h.wantRecord(`ExpiredDeleter: DeleteExpired must remove nothing that is live at now (sessions.ExpiredDeleter: "removes nothing that is live at now")`, live[0], []byte("live"), 1, justLive)
	h.wantRecord(`ExpiredDeleter: DeleteExpired must remove nothing that is live at now (sessions.ExpiredDeleter: "removes nothing that is live at now")`, live[1], []byte("live, updated"), 2, wellLive)
	if n := h.deleteExpired(); n != 0 {
		h.t.Errorf("ExpiredDeleter: a second DeleteExpired at the same now must find nothing left to remove; got %d", n)
	}
	for _, id := range expired {
		h.wantAbsent("ExpiredDeleter: a swept record must not load", id)
		h.mustCreate(id, []byte("reborn"), h.now().Add(long), "")
	}
}

func sweepEmpty(h *harness) {
	if n := h.deleteExpired(); n != 0 {
		h.t.Errorf("ExpiredDeleter: DeleteExpired on an empty store must return 0; got %d", n)
	}
}

func sweepMany(h *harness) {
	// More than one batch of any reasonable batch size (the contract asks
	// for bounded batches); the sweep must still remove them all.
	const expiredN, liveN, workers = 1500, 20, 8
	soon := h.at(short)
	ids := make([]string, expiredN+liveN)
	for i := range ids {
		ids[i] = h.newID()
	}
	goroutines(workers, func(g int) {
		for i := g; i < len(ids); i += workers {
			exp := soon
			if i >= expiredN {
				exp = h.at(long)
			}
			if created, err := h.st.Create(h.ctx, ids[i], []byte("x"), exp, "", h.now()); err != nil || !created {
				h.t.Errorf("Create: Create of a new id = %v, %v; want true, nil", created, err)
				return
			}
		}
	})
	h.setNow(h.expiredAt(soon))
	n := h.deleteExpired()
	h.wantDeletedExpired(fmt.Sprintf("ExpiredDeleter: DeleteExpired must remove all %d expired records, in as many batches as it needs", expiredN), n, expiredN)
	if n := h.deleteExpired(); n != 0 {
		h.t.Errorf("ExpiredDeleter: a second DeleteExpired at the same now must find nothing left to remove; got %d", n)
	}
	for _, id := range ids[expiredN:] {
		h.wantRecord("ExpiredDeleter: DeleteExpired must remove nothing that is live at now", id, []byte("x"), 1, h.at(long))
	}
}

func sweepRacingReplacements(h *harness) {
	// Creates that replace expired records race with DeleteExpired; a sweep
	// that selects expired ids and then deletes them by id alone deletes
	// the new, live records.
	const n, creators = 100, 4
	ed := h.st.(sessions.ExpiredDeleter)
	for round := range rounds {
		soon := h.now().Add(short)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = h.newID()
			h.mustCreate(ids[i], []byte("old"), soon, "")
		}
		h.setNow(h.expiredAt(soon))
		exp := h.now().Add(long)
		created := make([]bool, n) // each element written by one goroutine
		goroutines(creators+1, func(g int) {
			if g == creators {
				if _, err := ed.DeleteExpired(h.ctx, h.now()); err != nil {
					h.t.Errorf("DeleteExpired at now %s returned error %v (%s)", h.fmt(h.now()), err, errNote)
				}
				return
			}
			for i := g; i < n; i += creators {
				ok, err := h.st.Create(h.ctx, ids[i], []byte("new"), exp, "", h.now())
				if err != nil {
					h.t.Errorf("Create(id %s) at now %s returned error %v (%s)", shortID(ids[i]), h.fmt(h.now()), err, errNote)
					return
				}
				created[i] = ok
			}
		})
		for i, id := range ids {
			if !created[i] {
				h.t.Fatalf("Create: an expired record counts as absent, so Create of its id must report created=true, also while DeleteExpired runs; got false for id %s", shortID(id))
			}
			h.wantRecord(fmt.Sprintf(`ExpiredDeleter: DeleteExpired racing with Creates that replace expired records must not delete the new, live records (sessions.ExpiredDeleter: "removes nothing that is live at now"; round %d)`, round), id, []byte("new"), 1, exp)
		}
	}
}

func sweepContext(h *harness) {
	soon := h.at(short)
	id := h.newID()
	h.mustCreate(id, []byte("x"), soon, "")
	h.setNow(h.expiredAt(soon))
	ed := h.st.(sessions.ExpiredDeleter)
	for _, c := range doneContexts() {
		_, err := ed.DeleteExpired(c.ctx, h.now())
		h.wantCtxErr("DeleteExpired", c.name, c.ctx, err)
	}
	h.wantDeletedExpired("ExpiredDeleter: a DeleteExpired whose context was done must not have removed anything, so a later one still counts the record", h.deleteExpired(), 1)
}

// ---- OwnerIndex ----

func ownerLists(h *harness) {
	a, b := h.newOwner("a"), h.newOwner("b")
	var as, bs []string
	for range 3 {
		id := h.newID()
		h.mustCreate(id, []byte("a"), h.at(long), a)
		as = append(as, id)
	}
	for range 2 {
		id := h.newID()
		h.mustCreate(id, []byte("b"), h.at(long), b)
		bs = append(bs, id)
	}
	h.mustCreate(h.newID(), []byte("nobody's"), h.at(long), "")
	h.wantOwner("OwnerIndex: ListOwner must list exactly the owner's live records, each once", a, as...)
	h.wantOwner("OwnerIndex: ListOwner must list exactly the owner's live records, each once", b, bs...)
	h.wantOwner(`OwnerIndex: an unknown owner must yield an empty list (sessions.OwnerIndex: "An unknown or empty owner yields an empty list")`, h.newOwner("nobody"))
	h.wantOwner(`OwnerIndex: the empty owner must yield an empty list (sessions.OwnerIndex: "the empty owner is never indexed")`, "")
}

func ownerEmpty(h *harness) {
	ids := []string{h.newID(), h.newID()}
	for _, id := range ids {
		h.mustCreate(id, []byte("anonymous"), h.at(long), "")
	}
	h.mustUpdate(ids[0], 1, []byte("still anonymous"), h.at(long), "")
	h.wantOwner(`OwnerIndex: the empty owner is never indexed, so ListOwner("") must be empty`, "")
	if n := h.deleteOwner(""); n != 0 {
		h.t.Errorf(`OwnerIndex: the empty owner owns nothing, so DeleteOwner("") must return 0; got %d`, n)
	}
	h.wantRecord(`OwnerIndex: DeleteOwner("") must not delete records without an owner (sessions.OwnerIndex: "the empty owner is never indexed")`, ids[0], []byte("still anonymous"), 2, h.at(long))
	h.wantRecord(`OwnerIndex: DeleteOwner("") must not delete records without an owner (sessions.OwnerIndex: "the empty owner is never indexed")`, ids[1], []byte("anonymous"), 1, h.at(long))
}

func ownerUpdateMoves(h *harness) {
	a, b := h.newOwner("a"), h.newOwner("b")
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, []byte("x"), exp, a)
	h.mustUpdate(id, 1, []byte("x"), exp, b)
	const moved = `OwnerIndex: the owner is the one given to the latest successful Create or Update (sessions.OwnerIndex), so an Update that changes it moves the record between lists`
	h.wantOwner(moved, a)
	h.wantOwner(moved, b, id)
	h.mustUpdate(id, 2, []byte("x"), exp, "")
	h.wantOwner(moved+"; an Update to the empty owner removes it from every list", a)
	h.wantOwner(moved+"; an Update to the empty owner removes it from every list", b)
	h.mustUpdate(id, 3, []byte("x"), exp, a)
	h.wantOwner(moved, a, id)
	if n := h.deleteOwner(b); n != 0 {
		h.t.Errorf("OwnerIndex: DeleteOwner of a former owner must not count (or delete) a record that has moved to another owner; got %d", n)
	}
	h.wantRecord("OwnerIndex: DeleteOwner of a former owner must not delete a record that has moved to another owner", id, []byte("x"), 4, exp)
}

func ownerKept(h *harness) {
	a := h.newOwner("a")
	id, exp := h.newID(), h.at(long)
	h.mustCreate(id, []byte("x"), exp, a)
	if !h.touch(id, exp.Add(time.Hour)) {
		h.t.Fatalf("Touch: Touch of a live record reported found=false")
	}
	h.wantOwner(`OwnerIndex: Touch must not change the owner (store.go: Touch "never changes the data, version or owner")`, a, id)
	b := h.newOwner("b")
	if updated, _ := h.update(id, 7, []byte("y"), exp, b); updated {
		h.t.Fatalf("Update: Update with a stale version reported updated=true")
	}
	h.wantOwner("OwnerIndex: an Update refused for a stale version must not change the owner", a, id)
	h.wantOwner("OwnerIndex: an Update refused for a stale version must not change the owner", b)
	if h.create(id, []byte("z"), exp, b) {
		h.t.Fatalf("Create: Create of a live id reported created=true")
	}
	h.wantOwner("OwnerIndex: a Create refused because the id is live must not change the owner", a, id)
	h.wantOwner("OwnerIndex: a Create refused because the id is live must not change the owner", b)
}

func ownerReplacedExpired(h *harness) {
	a, b := h.newOwner("a"), h.newOwner("b")
	id, soon := h.newID(), h.at(short)
	h.mustCreate(id, []byte("a's"), soon, a)
	h.setNow(h.expiredAt(soon))
	exp := h.now().Add(long)
	h.mustCreate(id, []byte("b's"), exp, b)
	h.wantOwner("OwnerIndex: a record that replaced an expired one belongs to the new owner only", a)
	h.wantOwner("OwnerIndex: a record that replaced an expired one belongs to the new owner only", b, id)
	if n := h.deleteOwner(a); n != 0 {
		h.t.Errorf("OwnerIndex: DeleteOwner of the owner of an expired, replaced record must not count the new record; got %d", n)
	}
	h.wantRecord("OwnerIndex: DeleteOwner of the owner of an expired, replaced record must not delete the new owner's record", id, []byte("b's"), 1, exp)
}

func ownerDelete(h *harness) {
	a := h.newOwner("a")
	x, y := h.newID(), h.newID()
	h.mustCreate(x, []byte("x"), h.at(long), a)
	h.mustCreate(y, []byte("y"), h.at(long), a)
	h.del(x)
	h.wantOwner("OwnerIndex: a deleted record must leave its owner's list", a, y)
	if n := h.deleteOwner(a); n != 1 {
		h.t.Errorf("OwnerIndex: DeleteOwner must count only the owner's remaining live records (1 after a Delete); got %d", n)
	}
}

func ownerExpired(h *harness) {
	a := h.newOwner("a")
	soonID, lateID := h.newID(), h.newID()
	soon := h.at(short)
	h.mustCreate(soonID, []byte("soon"), soon, a)
	h.mustCreate(lateID, []byte("late"), h.at(long), a)
	h.wantOwner("OwnerIndex: ListOwner must list the owner's live records", a, soonID, lateID)
	h.setNow(h.expiredAt(soon))
	h.wantOwner(`OwnerIndex: ListOwner must not list expired records (sessions.OwnerIndex: "the records owned by owner that are live at now")`, a, lateID)
	if n := h.deleteOwner(a); n != 1 {
		h.t.Errorf(`OwnerIndex: DeleteOwner must return how many of the owner's records were live at now (sessions.OwnerIndex: "returns how many of them were live at now"); got %d, want 1`, n)
	}
	h.wantAbsent("OwnerIndex: DeleteOwner must delete the owner's live records", lateID)
	h.wantOwner("OwnerIndex: after DeleteOwner the owner's list must be empty", a)
	if ed, ok := h.st.(sessions.ExpiredDeleter); ok && h.advance == nil {
		n, err := ed.DeleteExpired(h.ctx, h.now())
		if err != nil {
			h.t.Fatalf("DeleteExpired at now %s returned error %v (%s)", h.fmt(h.now()), err, errNote)
		}
		if n != 0 {
			h.t.Errorf(`OwnerIndex: DeleteOwner must remove every record of the owner, expired ones included (sessions.OwnerIndex: "removes every record owned by owner"), yet a later DeleteExpired still found %d to remove`, n)
		}
	}
}

func ownerDeleteOwner(h *harness) {
	a, b := h.newOwner("a"), h.newOwner("b")
	var as, bs []string
	for range 3 {
		id := h.newID()
		h.mustCreate(id, []byte("a"), h.at(long), a)
		as = append(as, id)
	}
	for range 2 {
		id := h.newID()
		h.mustCreate(id, []byte("b"), h.at(long), b)
		bs = append(bs, id)
	}
	anon := h.newID()
	h.mustCreate(anon, []byte("anonymous"), h.at(long), "")
	if n := h.deleteOwner(a); n != len(as) {
		h.t.Errorf(`OwnerIndex: DeleteOwner must remove every record of the owner and return how many were live (sessions.OwnerIndex: "returns how many of them were live at now"); got %d, want %d`, n, len(as))
	}
	for _, id := range as {
		h.wantAbsent("OwnerIndex: a record removed by DeleteOwner must not load", id)
	}
	h.wantOwner("OwnerIndex: after DeleteOwner the owner's list must be empty", a)
	for _, id := range bs {
		h.wantRecord("OwnerIndex: DeleteOwner must not touch other owners' records", id, []byte("b"), 1, h.at(long))
	}
	h.wantOwner("OwnerIndex: DeleteOwner must not touch other owners' lists", b, bs...)
	h.wantRecord("OwnerIndex: DeleteOwner must not touch records without an owner", anon, []byte("anonymous"), 1, h.at(long))
	if n := h.deleteOwner(a); n != 0 {
		h.t.Errorf("OwnerIndex: a second DeleteOwner must find nothing; got %d", n)
	}
	h.mustCreate(as[0], []byte("again"), h.at(long), a)
	h.wantRecord("OwnerIndex: an id freed by DeleteOwner must be creatable again, at version 1", as[0], []byte("again"), 1, h.at(long))
	h.wantOwner("OwnerIndex: a record created after DeleteOwner must be listed under its owner", a, as[0])
}

func ownerOpaque(h *harness) {
	// Owners are opaque text: pairs that SQL LIKE patterns, glob patterns,
	// case-insensitive or space-padding collations, or careless quoting
	// would confuse must stay distinct.
	p := h.newOwner("u")
	owners := []string{
		p, p + "%", p + "x", p + "_", p + "y", p + "*", p + "?", p + "[a]", p + "a", p + "A",
		p + " ", p + "'\"; --", p + "\\", p + "{tag}", "ユーザー" + p, p + "é", p + "e",
		p + "/" + string(bytes.Repeat([]byte("long"), 20)),
	}
	ids := make(map[string]string, len(owners))
	for _, o := range owners {
		id := h.newID()
		h.mustCreate(id, []byte(o), h.at(long), o)
		ids[o] = id
	}
	for _, o := range owners {
		h.wantOwner("OwnerIndex: owners are opaque text; distinct strings (even ones differing only in case, trailing space or pattern characters) must be distinct owners", o, ids[o])
	}
	for _, o := range []string{p + "%", p + "*", p} {
		if n := h.deleteOwner(o); n != 1 {
			h.t.Errorf("OwnerIndex: DeleteOwner(%q) must delete only that owner's record (owners are opaque text, not patterns); got %d", o, n)
		}
		h.wantAbsent("OwnerIndex: DeleteOwner must delete the owner's record", ids[o])
		delete(ids, o)
	}
	for o, id := range ids {
		h.wantRecord("OwnerIndex: DeleteOwner must not delete records of owners that merely match it as a pattern or prefix", id, []byte(o), 1, h.at(long))
	}
}

func ownerConcurrent(h *harness) {
	const workers, steps = 8, 20
	a, b := h.newOwner("a"), h.newOwner("b")
	exp := h.at(long)
	ids := make([]string, workers)
	final := make([]string, workers)
	goroutines(workers, func(g int) {
		id := h.newID()
		ids[g] = id
		owner := a
		if created, err := h.st.Create(h.ctx, id, []byte(owner), exp, owner, h.now()); err != nil || !created {
			h.t.Errorf("Create: Create of a new id = %v, %v; want true, nil", created, err)
			return
		}
		for s := range steps {
			owner = []string{a, b, ""}[(g+s)%3]
			updated, found, err := h.st.Update(h.ctx, id, int64(s+1), []byte(owner), exp, owner, h.now())
			if err != nil || !updated || !found {
				h.t.Errorf("Update: Update of a record only this goroutine writes = %v, %v, %v; want true, true, nil", updated, found, err)
				return
			}
		}
		final[g] = owner
	})
	var wantA, wantB []string
	for g, o := range final {
		switch o {
		case a:
			wantA = append(wantA, ids[g])
		case b:
			wantB = append(wantB, ids[g])
		}
	}
	const clause = "OwnerIndex: after concurrent owner changes on distinct records, each owner must list exactly its records (sessions.OwnerIndex: the owner is the one given to the latest successful Create or Update)"
	h.wantOwner(clause, a, wantA...)
	h.wantOwner(clause, b, wantB...)
}

func ownerContext(h *harness) {
	a := h.newOwner("a")
	id := h.newID()
	h.mustCreate(id, []byte("x"), h.at(long), a)
	oi := h.st.(sessions.OwnerIndex)
	for _, c := range doneContexts() {
		_, err := oi.ListOwner(c.ctx, a, h.now())
		h.wantCtxErr("ListOwner", c.name, c.ctx, err)
		_, err = oi.DeleteOwner(c.ctx, a, h.now())
		h.wantCtxErr("DeleteOwner", c.name, c.ctx, err)
		h.wantRecord("Context: a DeleteOwner that returned an error because its context was done must not have deleted", id, []byte("x"), 1, h.at(long))
	}
}
