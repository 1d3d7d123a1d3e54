package boltstore_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sessionkit/sessions/boltstore"
)

// The benchmarks run each store operation and, as its floor, the same work
// done straight through bbolt (impl=raw): the same transaction, the same
// bucket reads and writes, the same bytes (the raw code uses the store's
// record and key layout), without the store's id decoding, context checks
// and error wrapping. impl=paired runs both in every iteration, in
// alternating order, and reports the ratio of their median times
// (store/raw), which is robust to the machine's load drifting during the
// run. sync=on is the
// default (an fsync per commit, which dominates writes); sync=off
// (Options.UnsafeNoSync) shows the store's own CPU cost:
//
//	go test -run '^$' -bench . -benchtime 300x -count 3

// benchData is a typical encoded session of about a hundred bytes.
var benchData = fmt.Appendf(nil, `{"user":"u-1234567","csrf":"%064d","cart":[1,2,3],"theme":"dark"}`, 0)

// benchID returns the n-th benchmark id of a kind, as hex and raw.
func benchID(kind string, n int) (string, []byte) {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(kind), uint64(n)))
	return hex.EncodeToString(sum[:]), sum[:]
}

// rawBuckets opens the store's buckets straight through bbolt.
func rawBuckets(tx *bbolt.Tx) (records, expiry, owners *bbolt.Bucket) {
	top := tx.Bucket([]byte(boltstore.DefaultBucket))
	return top.Bucket(boltstore.RecordsName), top.Bucket(boltstore.ExpiryName), top.Bucket(boltstore.OwnersName)
}

var errBench = errors.New("unexpected result")

type benchOp struct {
	name       string
	store, raw func(i int) error
}

func benchOps(b *testing.B, s *boltstore.Store) []benchOp {
	db := s.DB()
	now := time.Now().Truncate(time.Millisecond)
	exp := now.Add(time.Hour)
	nowMS, expMS := now.UnixMilli(), exp.UnixMilli()
	const owner = "bench-owner"

	// One long-lived record per impl for Load, Update and Touch.
	storeID, _ := benchID("store", 0)
	rawHex, rawKey := benchID("raw", 0)
	for _, id := range []string{storeID, rawHex} {
		if ok, err := s.Create(bg, id, benchData, exp, owner, now); err != nil || !ok {
			b.Fatalf("seed: %v, %v", ok, err)
		}
	}
	var storeVersion, rawVersion int64 = 1, 1
	storeExp, rawExp := expMS, expMS
	var storeCreates, rawCreates int

	return []benchOp{
		{
			name: "Load",
			store: func(int) error {
				data, _, _, found, err := s.Load(bg, storeID, now)
				if err == nil && (!found || len(data) != len(benchData)) {
					err = errBench
				}
				return err
			},
			raw: func(int) error {
				var data []byte
				var version int64
				err := db.View(func(tx *bbolt.Tx) error {
					records := tx.Bucket([]byte(boltstore.DefaultBucket)).Bucket(boltstore.RecordsName)
					v := records.Get(rawKey)
					if v == nil || int64(binary.BigEndian.Uint64(v)) <= nowMS {
						return errBench
					}
					version = int64(binary.BigEndian.Uint64(v[8:]))
					n, w := binary.Uvarint(v[16:])
					data = bytes.Clone(v[16+w+int(n):])
					return nil
				})
				if err == nil && (version == 0 || len(data) != len(benchData)) {
					err = errBench
				}
				return err
			},
		},
		{
			name: "Update",
			store: func(int) error {
				updated, _, err := s.Update(bg, storeID, storeVersion, benchData, exp, owner, now)
				storeVersion++
				if err == nil && !updated {
					err = errBench
				}
				return err
			},
			raw: func(int) error {
				return db.Update(func(tx *bbolt.Tx) error {
					records, expiry, owners := rawBuckets(tx)
					v := records.Get(rawKey)
					oldExp := int64(binary.BigEndian.Uint64(v))
					if v == nil || oldExp <= nowMS || int64(binary.BigEndian.Uint64(v[8:])) != rawVersion {
						return errBench
					}
					n, w := binary.Uvarint(v[16:])
					oldOwner := string(v[16+w : 16+w+int(n)])
					if err := expiry.Delete(boltstore.ExpiryKey(oldExp, rawKey)); err != nil {
						return err
					}
					if err := owners.Delete(boltstore.OwnerKey(oldOwner, rawKey)); err != nil {
						return err
					}
					rawVersion++
					if err := records.Put(rawKey, boltstore.EncodeRecord(expMS, rawVersion, owner, benchData)); err != nil {
						return err
					}
					if err := expiry.Put(boltstore.ExpiryKey(expMS, rawKey), []byte{}); err != nil {
						return err
					}
					return owners.Put(boltstore.OwnerKey(owner, rawKey), []byte{})
				})
			},
		},
		{
			name: "Touch",
			store: func(int) error {
				storeExp++
				found, err := s.Touch(bg, storeID, time.UnixMilli(storeExp), now)
				if err == nil && !found {
					err = errBench
				}
				return err
			},
			raw: func(int) error {
				rawExp++
				return db.Update(func(tx *bbolt.Tx) error {
					records, expiry, _ := rawBuckets(tx)
					v := records.Get(rawKey)
					oldExp := int64(binary.BigEndian.Uint64(v))
					if v == nil || oldExp <= nowMS || rawExp <= oldExp {
						return errBench
					}
					nv := bytes.Clone(v)
					binary.BigEndian.PutUint64(nv, uint64(rawExp))
					if err := expiry.Delete(boltstore.ExpiryKey(oldExp, rawKey)); err != nil {
						return err
					}
					if err := expiry.Put(boltstore.ExpiryKey(rawExp, rawKey), []byte{}); err != nil {
						return err
					}
					return records.Put(rawKey, nv)
				})
			},
		},
		{
			name: "Create",
			store: func(int) error {
				storeCreates++
				id, _ := benchID("create-store", storeCreates)
				created, err := s.Create(bg, id, benchData, exp, owner, now)
				if err == nil && !created {
					err = errBench
				}
				return err
			},
			raw: func(int) error {
				rawCreates++
				_, key := benchID("create-raw", rawCreates)
				return db.Update(func(tx *bbolt.Tx) error {
					records, expiry, owners := rawBuckets(tx)
					if records.Get(key) != nil {
						return errBench
					}
					if err := records.Put(key, boltstore.EncodeRecord(expMS, 1, owner, benchData)); err != nil {
						return err
					}
					if err := expiry.Put(boltstore.ExpiryKey(expMS, key), []byte{}); err != nil {
						return err
					}
					return owners.Put(boltstore.OwnerKey(owner, key), []byte{})
				})
			},
		},
	}
}

func BenchmarkStore(b *testing.B) {
	for _, sync := range []string{"on", "off"} {
		s := newStore(b, &boltstore.Options{UnsafeNoSync: sync == "off"})
		for _, op := range benchOps(b, s) {
			for _, impl := range []struct {
				name string
				run  func(i int) error
			}{{"store", op.store}, {"raw", op.raw}} {
				b.Run(op.name+"/sync="+sync+"/impl="+impl.name, func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						i++
						if err := impl.run(i); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run(op.name+"/sync="+sync+"/impl=paired", func(b *testing.B) {
				var storeTimes, rawTimes []time.Duration
				i := 0
				for b.Loop() {
					i++
					first, second := op.store, op.raw
					firstTimes, secondTimes := &storeTimes, &rawTimes
					if i%2 == 0 {
						first, second = second, first
						firstTimes, secondTimes = secondTimes, firstTimes
					}
					start := time.Now()
					if err := first(i); err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if err := second(i); err != nil {
						b.Fatal(err)
					}
					end := time.Now()
					*firstTimes = append(*firstTimes, mid.Sub(start))
					*secondTimes = append(*secondTimes, end.Sub(mid))
				}
				// Medians: a stray GC pause or a neighbour's burst on a
				// shared machine moves a mean of microsecond operations
				// far more than the store's overhead does.
				b.ReportMetric(float64(median(storeTimes))/float64(median(rawTimes)), "store/raw")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// median returns the median of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}
