package pgxstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionkit/sessions/pgxstore"
)

// The benchmarks run each store operation and, as its floor, the very same
// SQL statement with the same arguments issued straight through the pgx pool
// (impl=raw), in the same run and on the same table. impl=paired runs both in
// every iteration, in alternating order, and reports their ratio
// (store-ns/raw-ns), which is robust to the machine's load drifting during
// the run:
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

func benchOps(b *testing.B, s *pgxstore.Store, p *pgxpool.Pool) []benchOp {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	exp := now.Add(time.Hour)
	nowMS, expMS := now.UnixMilli(), exp.UnixMilli()

	// One long-lived record per impl for Load, Update and Touch.
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
				return p.QueryRow(ctx, s.Query("Load"), rawKey, nowMS).Scan(&data, &version, &expiry)
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
				tag, err := p.Exec(ctx, s.Query("Update"), benchData, expMS, "bench-owner", rawKey, rawVersion, nowMS)
				rawVersion++
				if err != nil {
					return err
				}
				return check(tag.RowsAffected() == 1, "update")
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
				tag, err := p.Exec(ctx, s.Query("Touch"), expMS+int64(i), rawKey, nowMS)
				if err != nil {
					return err
				}
				return check(tag.RowsAffected() == 1, "touch")
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
				tag, err := p.Exec(ctx, s.Query("Create"), key, benchData, expMS, "", nowMS)
				if err != nil {
					return err
				}
				return check(tag.RowsAffected() == 1, "create")
			},
		},
	}
}

func BenchmarkStore(b *testing.B) {
	s, p, _ := newStore(b, nil)
	for _, op := range benchOps(b, s, p) {
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

// BenchmarkLayout compares the partitioned layout with the plain table:
// each operation on each layout (layout=plain, layout=part1h: hour-wide
// partitions created 24 h ahead, so a load probes 25 partitions'
// primary keys; layout=part6h: 5), and, with impl=paired, both in every
// iteration in alternating order, reporting the ratio part/plain:
//
//	go test -run '^$' -bench Layout -benchtime 2000x -count 3
func BenchmarkLayout(b *testing.B) {
	p := testPool(b)
	schema := testSchema(b, p)
	ctx := context.Background()
	layouts := []struct {
		name string
		opts pgxstore.Options
	}{
		{"plain", pgxstore.Options{Schema: schema, Table: "plain"}},
		{"part1h", pgxstore.Options{Schema: schema, Table: "part1h", Partition: time.Hour}},
		{"part6h", pgxstore.Options{Schema: schema, Table: "part6h", Partition: 6 * time.Hour}},
	}
	ops := make([][]benchOp, len(layouts))
	for i, l := range layouts {
		s, err := pgxstore.New(p, &l.opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.CreateTable(ctx); err != nil {
			b.Fatal(err)
		}
		ops[i] = benchOps(b, s, p)
	}
	for k := range ops[0] {
		name := ops[0][k].name
		for i, l := range layouts {
			b.Run(name+"/layout="+l.name, func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					n++
					if err := ops[i][k].store(n); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		for i, l := range layouts[1:] {
			b.Run(name+"/impl=paired/layout="+l.name, func(b *testing.B) {
				plain, part := ops[0][k].store, ops[i+1][k].store
				var plainTime, partTime time.Duration
				n := 0
				for b.Loop() {
					n++
					first, second := plain, part
					firstTime, secondTime := &plainTime, &partTime
					if n%2 == 0 {
						first, second = second, first
						firstTime, secondTime = secondTime, firstTime
					}
					start := time.Now()
					if err := first(n); err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if err := second(n); err != nil {
						b.Fatal(err)
					}
					*firstTime += mid.Sub(start)
					*secondTime += time.Since(mid)
				}
				b.ReportMetric(float64(partTime)/float64(plainTime), "part/plain")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
