package mongostore_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionkit/sessions/mongostore"
)

// The benchmarks run each store operation and, as its floor, the very same
// driver call with the same filter and document (impl=raw), in the same run
// and on the same collection. impl=paired runs both in every iteration, in
// alternating order, and reports their ratio (store-ns/raw-ns), which is
// robust to the machine's load drifting during the run:
//
//	go test -run '^$' -bench . -benchtime 2000x -count 3

// benchData is a typical encoded session of about a hundred bytes.
var benchData = fmt.Appendf(nil, `{"user":"u-1234567","csrf":"%064d","cart":[1,2,3],"theme":"dark"}`, 0)

// benchID returns the n-th benchmark id of a prefix.
func benchID(prefix string, n int) string {
	var buf [len("create-raw-") + 8]byte
	copy(buf[:], prefix)
	binary.BigEndian.PutUint64(buf[len(buf)-8:], uint64(n))
	sum := sha256.Sum256(buf[:])
	return hex.EncodeToString(sum[:])
}

type benchOp struct {
	name  string
	store func(i int) error
	raw   func(i int) error
}

func benchOps(b *testing.B, s *mongostore.Store, coll *mongo.Collection) []benchOp {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	exp := now.Add(time.Hour)

	// One long-lived record per impl for Load, Update and Touch.
	storeID, rawID := benchID("store", 0), benchID("raw", 0)
	for _, id := range []string{storeID, rawID} {
		if ok, err := s.Create(ctx, id, benchData, exp, "bench-owner", now); err != nil || !ok {
			b.Fatalf("seed: %v, %v", ok, err)
		}
	}
	var storeVersion, rawVersion int64 = 1, 1
	var storeCreates, rawCreates int

	check := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("%s: unexpected result", what)
		}
		return nil
	}
	return []benchOp{
		{
			name: "Load",
			store: func(int) error {
				_, _, _, found, err := s.Load(ctx, storeID, now)
				if err != nil {
					return err
				}
				return check(found, "load")
			},
			raw: func(int) error {
				var r mongostore.Record
				return coll.FindOne(ctx, mongostore.LiveFilter(rawID, now), mongostore.LoadProjection).Decode(&r)
			},
		},
		{
			name: "Update",
			store: func(int) error {
				updated, _, err := s.Update(ctx, storeID, storeVersion, benchData, exp, "bench-owner", now)
				storeVersion++
				if err != nil {
					return err
				}
				return check(updated, "update")
			},
			raw: func(int) error {
				res, err := coll.ReplaceOne(ctx, mongostore.UpdateFilter(rawID, rawVersion, now), mongostore.NewDoc(benchData, rawVersion+1, exp, "bench-owner"))
				rawVersion++
				if err != nil {
					return err
				}
				return check(res.MatchedCount == 1, "update")
			},
		},
		{
			name: "Touch",
			store: func(i int) error {
				found, err := s.Touch(ctx, storeID, exp.Add(time.Duration(i)*time.Millisecond), now)
				if err != nil {
					return err
				}
				return check(found, "touch")
			},
			raw: func(i int) error {
				res, err := coll.UpdateOne(ctx, mongostore.LiveFilter(rawID, now), mongostore.TouchUpdate(exp.Add(time.Duration(i)*time.Millisecond)))
				if err != nil {
					return err
				}
				return check(res.MatchedCount == 1, "touch")
			},
		},
		{
			name: "Create",
			store: func(int) error {
				storeCreates++
				created, err := s.Create(ctx, benchID("create-store", storeCreates), benchData, exp, "", now)
				if err != nil {
					return err
				}
				return check(created, "create")
			},
			raw: func(int) error {
				rawCreates++
				id := benchID("create-raw-", rawCreates)
				_, err := coll.ReplaceOne(ctx, mongostore.CreateFilter(id, now), mongostore.NewDoc(benchData, 1, exp, ""), mongostore.Upsert)
				return err
			},
		},
	}
}

func BenchmarkStore(b *testing.B) {
	s, coll := newStore(b, nil)
	for _, op := range benchOps(b, s, coll) {
		b.Run(op.name+"/impl=store", func(b *testing.B) { loop(b, op.store) })
		b.Run(op.name+"/impl=raw", func(b *testing.B) { loop(b, op.raw) })
		b.Run(op.name+"/impl=paired", func(b *testing.B) {
			var storeTime, rawTime time.Duration
			i := 0
			for b.Loop() {
				i++
				// Alternate which goes first, so that neither always
				// runs on the connection the other just warmed.
				first, second := op.store, op.raw
				firstTime, secondTime := &storeTime, &rawTime
				if i%2 == 0 {
					first, second = second, first
					firstTime, secondTime = secondTime, firstTime
				}
				start := time.Now()
				if err := first(i); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := second(i); err != nil {
					b.Fatal(err)
				}
				*firstTime += mid.Sub(start)
				*secondTime += time.Since(mid)
			}
			b.ReportMetric(float64(storeTime)/float64(rawTime), "store/raw")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// loop runs f once per iteration, numbering the calls from 1.
func loop(b *testing.B, f func(i int) error) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := f(i); err != nil {
			b.Fatal(err)
		}
	}
}
