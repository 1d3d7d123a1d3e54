package sqlitestore_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"
)

// The benchmarks run each store operation and, as a floor, the same SQL
// statement with the same arguments straight through database/sql, on the
// same database in the same run. Compare the Store/… and Raw/… lines:
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

// benchData is a typical encoded session of a few hundred bytes.
var benchData = []byte(fmt.Sprintf(`{"user":"u-1234567","csrf":"%064d","cart":[1,2,3],"theme":"dark"}`, 0))

func BenchmarkOps(b *testing.B) {
	s, db := newStore(b, nil)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	exp := now.Add(time.Hour)
	k := id("bench")
	key, _ := hex.DecodeString(k)
	if ok, err := s.Create(ctx, k, benchData, exp, "owner", now); !ok || err != nil {
		b.Fatal(ok, err)
	}

	b.Run("op=Load/impl=Store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, found, err := s.Load(ctx, k, now); !found || err != nil {
				b.Fatal(found, err)
			}
		}
	})
	b.Run("op=Load/impl=Raw", func(b *testing.B) {
		b.ReportAllocs()
		var (
			data         []byte
			ver, expiryM int64
		)
		for b.Loop() {
			if err := db.QueryRowContext(ctx, rawLoad, key, now.UnixMilli()).Scan(&data, &ver, &expiryM); err != nil {
				b.Fatal(err)
			}
		}
	})

	// Update: version-checked write. Each iteration writes the version the
	// previous one produced.
	_, ver, _, _, _ := s.Load(ctx, k, now)
	b.Run("op=Update/impl=Store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if up, _, err := s.Update(ctx, k, ver, benchData, exp, "owner", now); !up || err != nil {
				b.Fatal(up, err)
			}
			ver++
		}
	})
	b.Run("op=Update/impl=Raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := db.ExecContext(ctx, rawUpdate, benchData, exp.UnixMilli(), "owner", key, ver, now.UnixMilli())
			if err != nil {
				b.Fatal(err)
			}
			if n, err := res.RowsAffected(); n != 1 || err != nil {
				b.Fatal(n, err)
			}
			ver++
		}
	})

	b.Run("op=Touch/impl=Store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if found, err := s.Touch(ctx, k, exp, now); !found || err != nil {
				b.Fatal(found, err)
			}
		}
	})
	b.Run("op=Touch/impl=Raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := db.ExecContext(ctx, rawTouch, exp.UnixMilli(), key, now.UnixMilli())
			if err != nil {
				b.Fatal(err)
			}
			if n, err := res.RowsAffected(); n != 1 || err != nil {
				b.Fatal(n, err)
			}
		}
	})

	// Create: each iteration inserts a new row. Each side gets a fresh
	// database so that both insert into tables of the same sizes, and the
	// ids are made before the loop so that hashing is not measured.
	const maxCreates = 1 << 18
	ids := make([]string, maxCreates)
	keys := make([][]byte, maxCreates)
	for i := range ids {
		ids[i] = id(fmt.Sprint("create-", i))
		keys[i], _ = hex.DecodeString(ids[i])
	}
	b.Run("op=Create/impl=Store", func(b *testing.B) {
		s, _ := newStore(b, nil)
		b.ReportAllocs()
		next := 0
		for b.Loop() {
			if next == maxCreates {
				b.Fatal("out of ids")
			}
			if ok, err := s.Create(ctx, ids[next], benchData, exp, "owner", now); !ok || err != nil {
				b.Fatal(ok, err)
			}
			next++
		}
	})
	b.Run("op=Create/impl=Raw", func(b *testing.B) {
		_, db := newStore(b, nil)
		b.ReportAllocs()
		next := 0
		for b.Loop() {
			if next == maxCreates {
				b.Fatal("out of ids")
			}
			res, err := db.ExecContext(ctx, rawCreate, keys[next], benchData, exp.UnixMilli(), "owner", now.UnixMilli())
			if err != nil {
				b.Fatal(err)
			}
			if n, err := res.RowsAffected(); n != 1 || err != nil {
				b.Fatal(n, err)
			}
			next++
		}
	})
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
