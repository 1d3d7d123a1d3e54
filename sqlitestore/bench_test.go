package sqlitestore_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sessionkit/sessions/sqlitestore"
)

// The benchmarks run each store operation and, as a floor, the same SQL
// statement with the same arguments straight through database/sql, each on
// a fresh database of the same kind, in the same run. Compare the
// impl=Store and impl=Raw lines:
//
//	go test -run '^$' -bench . -count 5 | benchstat -col /impl -
//
// (or by eye, without benchstat).

// Statements identical to the store's, for the default table.
const (
	rawLoad   = `SELECT data, version, expiry FROM "sessions" WHERE id = ? AND expiry > ?`
	rawUpdate = `UPDATE "sessions" SET data = ?, expiry = ?, owner = ?, version = version + 1 WHERE id = ? AND version = ? AND expiry > ?`
	rawTouch  = `UPDATE "sessions" SET expiry = max(expiry, ?) WHERE id = ? AND expiry > ?`
	rawCreate = `INSERT INTO "sessions" (id, data, version, expiry, owner) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (id) DO UPDATE SET data = excluded.data, version = 1, expiry = excluded.expiry, owner = excluded.owner
WHERE "sessions".expiry <= ?`
)

// benchData is a typical encoded session of about a hundred bytes.
var benchData = []byte(fmt.Sprintf(`{"user":"u-1234567","csrf":"%064d","cart":[1,2,3],"theme":"dark"}`, 0))

// benchDBs are the databases the benchmarks run on: a file with the
// recommended pragmas (what an application runs; disk-bound writes make
// it noisy), and an in-memory database on one connection, which leaves
// only CPU cost and so shows the store's overhead most clearly.
var benchDBs = []struct {
	name string
	open func(testing.TB) (*sqlitestore.Store, *sql.DB)
}{
	{"file", func(tb testing.TB) (*sqlitestore.Store, *sql.DB) { return newStore(tb, nil) }},
	{"memory", func(tb testing.TB) (*sqlitestore.Store, *sql.DB) {
		db, err := sql.Open("sqlite", "file::memory:?_pragma=busy_timeout(5000)")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		db.SetMaxOpenConns(1)
		s, err := sqlitestore.New(db, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.CreateTable(context.Background()); err != nil {
			tb.Fatal(err)
		}
		return s, db
	}},
}

// benchOp is one store operation and its raw floor. Both closures are
// called with an iteration number i; store uses the record "bench-store"
// and raw the record "bench-raw", so that the two can run side by side on
// one database.
type benchOp struct {
	name  string
	store func(b *testing.B, s *sqlitestore.Store, i int)
	raw   func(b *testing.B, db *sql.DB, i int)
}

func benchOps() []benchOp {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	exp := now.Add(time.Hour)
	ks := id("bench-store")
	kr, _ := hex.DecodeString(id("bench-raw"))

	// Create inserts a new row per iteration; the ids are made here so
	// that hashing is not measured.
	const maxCreates = 1 << 18
	createIDs := make([]string, maxCreates)
	createKeys := make([][]byte, maxCreates)
	for i := range maxCreates {
		createIDs[i] = id(fmt.Sprint("create-store-", i))
		createKeys[i], _ = hex.DecodeString(id(fmt.Sprint("create-raw-", i)))
	}

	exec := func(b *testing.B, db *sql.DB, query string, args ...any) {
		res, err := db.ExecContext(ctx, query, args...)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := res.RowsAffected(); n != 1 || err != nil {
			b.Fatal(n, err)
		}
	}
	return []benchOp{{
		name: "Load",
		store: func(b *testing.B, s *sqlitestore.Store, _ int) {
			if _, _, _, found, err := s.Load(ctx, ks, now); !found || err != nil {
				b.Fatal(found, err)
			}
		},
		raw: func(b *testing.B, db *sql.DB, _ int) {
			var (
				data        []byte
				ver, expiry int64
			)
			if err := db.QueryRowContext(ctx, rawLoad, kr, now.UnixMilli()).Scan(&data, &ver, &expiry); err != nil {
				b.Fatal(err)
			}
		},
	}, {
		// Iteration i writes version i+1, which the previous one produced.
		name: "Update",
		store: func(b *testing.B, s *sqlitestore.Store, i int) {
			if up, _, err := s.Update(ctx, ks, int64(i+1), benchData, exp, "owner", now); !up || err != nil {
				b.Fatal(up, err)
			}
		},
		raw: func(b *testing.B, db *sql.DB, i int) {
			exec(b, db, rawUpdate, benchData, exp.UnixMilli(), "owner", kr, int64(i+1), now.UnixMilli())
		},
	}, {
		name: "Touch",
		store: func(b *testing.B, s *sqlitestore.Store, _ int) {
			if found, err := s.Touch(ctx, ks, exp, now); !found || err != nil {
				b.Fatal(found, err)
			}
		},
		raw: func(b *testing.B, db *sql.DB, _ int) {
			exec(b, db, rawTouch, exp.UnixMilli(), kr, now.UnixMilli())
		},
	}, {
		name: "Create",
		store: func(b *testing.B, s *sqlitestore.Store, i int) {
			if i >= maxCreates {
				b.Fatal("out of ids")
			}
			if ok, err := s.Create(ctx, createIDs[i], benchData, exp, "owner", now); !ok || err != nil {
				b.Fatal(ok, err)
			}
		},
		raw: func(b *testing.B, db *sql.DB, i int) {
			if i >= maxCreates {
				b.Fatal("out of ids")
			}
			exec(b, db, rawCreate, createKeys[i], benchData, exp.UnixMilli(), "owner", now.UnixMilli())
		},
	}}
}

// benchSetup opens a fresh database of the kind and stores the records the
// benchOps closures use.
func benchSetup(b *testing.B, open func(testing.TB) (*sqlitestore.Store, *sql.DB)) (*sqlitestore.Store, *sql.DB) {
	s, db := open(b)
	now := time.Now()
	for _, name := range []string{"bench-store", "bench-raw"} {
		if ok, err := s.Create(context.Background(), id(name), benchData, now.Add(2*time.Hour), "owner", now); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	return s, db
}

// BenchmarkOps measures each operation through the Store (impl=Store) and
// its statement through database/sql (impl=Raw), each on its own fresh
// database.
func BenchmarkOps(b *testing.B) {
	for _, kind := range benchDBs {
		for _, op := range benchOps() {
			b.Run("db="+kind.name+"/op="+op.name+"/impl=Store", func(b *testing.B) {
				s, _ := benchSetup(b, kind.open)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					op.store(b, s, i)
					i++
				}
			})
			b.Run("db="+kind.name+"/op="+op.name+"/impl=Raw", func(b *testing.B) {
				_, db := benchSetup(b, kind.open)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					op.raw(b, db, i)
					i++
				}
			})
		}
	}
}

// BenchmarkPaired interleaves the Store call and its raw statement in every
// iteration, on one database, in random order, and reports each one's time
// and their ratio (store/raw). Interleaving cancels the drift of a busy
// machine, which separate runs suffer from; the random order spreads costs
// that fall on every n-th write, such as WAL checkpoints, over both sides
// (a strict alternation would pin them on one).
func BenchmarkPaired(b *testing.B) {
	for _, kind := range benchDBs {
		for _, op := range benchOps() {
			b.Run("db="+kind.name+"/op="+op.name, func(b *testing.B) {
				s, db := benchSetup(b, kind.open)
				var inStore, inRaw time.Duration
				i := 0
				order := rand.New(rand.NewPCG(1, 2))
				for b.Loop() {
					if order.IntN(2) == 0 {
						t := time.Now()
						op.store(b, s, i)
						inStore += time.Since(t)
						t = time.Now()
						op.raw(b, db, i)
						inRaw += time.Since(t)
					} else {
						t := time.Now()
						op.raw(b, db, i)
						inRaw += time.Since(t)
						t = time.Now()
						op.store(b, s, i)
						inStore += time.Since(t)
					}
					i++
				}
				b.ReportMetric(float64(inStore.Nanoseconds())/float64(i), "store-ns/op")
				b.ReportMetric(float64(inRaw.Nanoseconds())/float64(i), "raw-ns/op")
				b.ReportMetric(float64(inStore)/float64(inRaw), "store/raw")
			})
		}
	}
}

// The statements above must stay identical to the store's: a store with
// the default table runs them with the same results.
func TestBenchmarkStatementsMatchStore(t *testing.T) {
	s, db := newStore(t, nil)
	ctx := context.Background()
	k := id("same")
	key, _ := hex.DecodeString(k)
	res, err := db.ExecContext(ctx, rawCreate, key, []byte("raw"), t0.Add(time.Hour).UnixMilli(), "o", t0.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("raw create affected %d rows", n)
	}
	if _, err := db.ExecContext(ctx, rawUpdate, []byte("raw2"), t0.Add(time.Hour).UnixMilli(), "o", key, 1, t0.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, rawTouch, t0.Add(2*time.Hour).UnixMilli(), key, t0.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	data, ver, exp, found, err := s.Load(ctx, k, t0)
	if !found || err != nil || string(data) != "raw2" || ver != 2 || !exp.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("store Load after raw statements = %q, %d, %v, %v, %v", data, ver, exp, found, err)
	}
	var d []byte
	var v, e int64
	if err := db.QueryRowContext(ctx, rawLoad, key, t0.UnixMilli()).Scan(&d, &v, &e); err != nil || v != 2 {
		t.Fatalf("raw load = %d, %v", v, err)
	}
}
