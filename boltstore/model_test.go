package boltstore_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sessionkit/sessions/boltstore"
	"github.com/sessionkit/sessions/memstore"
)

// TestAgainstMemstore runs random operations on the store and on memstore,
// the contract's reference implementation, and compares every result and,
// after each step, what both hold; it also checks the bolt indexes after
// every step. Few ids and owners, and expiries close to a slowly moving
// now, make collisions, expiries and owner moves frequent.
func TestAgainstMemstore(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			bs := newStore(t, &boltstore.Options{SweepBatch: 2, UnsafeNoSync: true})
			ms, err := memstore.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(seed, 15))
			ids := []string{testID(t, 0), testID(t, 1), testID(t, 2), testID(t, 3)}
			owners := []string{"", "a", "b", "a\x00"}
			now := t0
			for step := range 400 {
				id, owner := ids[r.IntN(len(ids))], owners[r.IntN(len(owners))]
				exp := now.Add(time.Duration(r.IntN(20)-2) * time.Millisecond)
				if r.IntN(30) == 0 {
					exp = time.UnixMilli(1) // a renewal's retirement
				}
				data := fmt.Appendf(nil, "%d", step)
				var what string
				var got, want any
				switch op := r.IntN(8); op {
				case 0:
					what = "Create"
					got = results(bs.Create(bg, id, data, exp, owner, now))
					want = results(ms.Create(bg, id, data, exp, owner, now))
				case 1, 2:
					what = "Update"
					v := int64(r.IntN(4))
					if _, mv, _, found, _ := ms.Load(bg, id, now); found && r.IntN(3) > 0 {
						v = mv
					}
					got = results(bs.Update(bg, id, v, data, exp, owner, now))
					want = results(ms.Update(bg, id, v, data, exp, owner, now))
				case 3:
					what = "Touch"
					got = results(bs.Touch(bg, id, exp, now))
					want = results(ms.Touch(bg, id, exp, now))
				case 4:
					what = "Delete"
					got, want = bs.Delete(bg, id), ms.Delete(bg, id)
				case 5:
					what = "DeleteOwner"
					got = results(bs.DeleteOwner(bg, owner, now))
					want = results(ms.DeleteOwner(bg, owner, now))
				case 6:
					// Sweep counts differ (the store removes records an
					// Update expires at once); what remains is compared
					// below.
					what = "DeleteExpired"
					_, errB := bs.DeleteExpired(bg, now)
					_, errM := ms.DeleteExpired(bg, now)
					got, want = errB, errM
				case 7:
					what = "advance"
					now = now.Add(time.Duration(r.IntN(5)) * time.Millisecond)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("step %d: %s(%s, owner %q) = %v; memstore says %v", step, what, id[:8], owner, got, want)
				}
				checkIndexes(t, bs, fmt.Sprintf("step %d (%s)", step, what))
				for _, id := range ids {
					bd, bv, be, bf, berr := bs.Load(bg, id, now)
					md, mv, me, mf, merr := ms.Load(bg, id, now)
					if berr != nil || merr != nil || bf != mf || bf && (!bytes.Equal(bd, md) || bv != mv || !be.Equal(me)) {
						t.Fatalf("step %d (%s): Load(%s) = %q v%d %v %v %v; memstore %q v%d %v %v %v",
							step, what, id[:8], bd, bv, be, bf, berr, md, mv, me, mf, merr)
					}
				}
				for _, o := range owners {
					bl, berr := bs.ListOwner(bg, o, now)
					ml, merr := ms.ListOwner(bg, o, now)
					slices.Sort(bl)
					slices.Sort(ml)
					if berr != nil || merr != nil || !slices.Equal(bl, ml) {
						t.Fatalf("step %d (%s): ListOwner(%q) = %v %v; memstore %v %v", step, what, o, bl, berr, ml, merr)
					}
				}
			}
		})
	}
}

// results formats a method's results for comparison.
func results(vals ...any) string { return fmt.Sprint(vals...) }
