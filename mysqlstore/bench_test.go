package mysqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/sessionkit/sessions/mysqlstore"
)

// The benchmarks run each store operation and, as its floor, the very same
// SQL statement with the same arguments, prepared once and executed straight
// through database/sql (impl=raw), in the same run and on the same table.
// impl=paired runs both in every iteration, in alternating order, and
// reports their ratio (store-ns/raw-ns), which is robust to the machine's
// load drifting during the run:
//
//	go test -run '^$' -bench . -benchtime 2000x -count 3

// benchData is a typical encoded session of about a hundred bytes.
var benchData = fmt.Appendf(nil, `{"user":"u-1234567","csrf":"%064d","cart":[1,2,3],"theme":"dark"}`, 0)

// benchID returns the n-th benchmark id as hex and as the raw key.
func benchID(prefix string, n int) (string, []byte) {
	var buf [len("create-raw-") + 8]byte
	copy(buf[:], prefix)
	binary.BigEndian.PutUint64(buf[len(buf)-8:], uint64(n))
	sum := sha256.Sum256(buf[:])
	return hex.EncodeToString(sum[:]), sum[:]
}

type benchOp struct {
	name  string
	store func(i int) error
	raw   func(i int) error
}

func benchOps(b *testing.B, s *mysqlstore.Store, db *sql.DB) []benchOp {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	exp := now.Add(time.Hour)
	nowMS, expMS := now.UnixMilli(), exp.UnixMilli()

	prepare := func(op string) *sql.Stmt {
		st, err := db.PrepareContext(ctx, s.Query(op))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	}
	loadStmt, updateStmt, touchStmt, createStmt := prepare("Load"), prepare("Update"), prepare("Touch"), prepare("Create")

	storeID, _ := benchID("store", 0)
	rawHex, rawKey := benchID("raw", 0)
	for _, id := range []string{storeID, rawHex} {
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
	insertID := func(res sql.Result, err error) (int64, error) {
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
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
				var data []byte
				var version, expiry int64
				return loadStmt.QueryRowContext(ctx, rawKey, nowMS).Scan(&data, &version, &expiry)
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
				v := rawVersion
				rawVersion++
				id, err := insertID(updateStmt.ExecContext(ctx, v, benchData, v, expMS, v, "bench-owner", v, rawKey, nowMS))
				if err != nil {
					return err
				}
				return check(id == 1, "update")
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
				id, err := insertID(touchStmt.ExecContext(ctx, nowMS, expMS+int64(i), rawKey, nowMS))
				if err != nil {
					return err
				}
				return check(id == 1, "touch")
			},
		},
		{
			name: "Create",
			store: func(int) error {
				storeCreates++
				id, _ := benchID("create-store", storeCreates)
				created, err := s.Create(ctx, id, benchData, exp, "", now)
				if err != nil {
					return err
				}
				return check(created, "create")
			},
			raw: func(int) error {
				rawCreates++
				_, key := benchID("create-raw-", rawCreates)
				id, err := insertID(createStmt.ExecContext(ctx, key, benchData, expMS, "", nowMS, nowMS, nowMS, nowMS))
				if err != nil {
					return err
				}
				return check(id == 0, "create")
			},
		},
	}
}

func BenchmarkStore(b *testing.B) {
	db := testDB(b)
	s, _ := newStore(b, db, nil)
	for _, op := range benchOps(b, s, db) {
		b.Run(op.name+"/impl=store", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := op.store(i); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(op.name+"/impl=raw", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := op.raw(i); err != nil {
					b.Fatal(err)
				}
			}
		})
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
