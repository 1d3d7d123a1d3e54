package redisstore

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The benchmarks pair each Store operation ("store") with the commands a
// minimal hand-written Redis session store would send for it through the
// same client ("raw"), measured in the same run: the floor the Store is
// compared with. Compare the pairs with benchstat or by ratio.

var benchData = bytes.Repeat([]byte("x"), 200)

func benchSetup(b *testing.B) (*Store, *redis.Client, context.Context) {
	b.Helper()
	c := newClient(b)
	s := newStore(b, c, nil)
	return s, c, context.Background()
}

// pair holds one operation done by the Store and by the raw floor; each
// func performs the operation once more (with fresh arguments when needed).
type pair struct {
	store, raw func(b *testing.B)
}

// runPair runs the store and raw sub-benchmarks, then "paired", which
// alternates the two in one loop (so that load from other processes hits
// both alike) and reports store-ns/op, raw-ns/op and their ratio.
func runPair(b *testing.B, p pair) {
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.store(b)
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.raw(b)
		}
	})
	b.Run("paired", func(b *testing.B) {
		var st, rt time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			p.store(b)
			t1 := time.Now()
			p.raw(b)
			rt += time.Since(t1)
			st += t1.Sub(t0)
			n++
		}
		b.ReportMetric(float64(st.Nanoseconds())/float64(n), "store-ns/op")
		b.ReportMetric(float64(rt.Nanoseconds())/float64(n), "raw-ns/op")
		b.ReportMetric(float64(st)/float64(rt), "ratio")
	})
}

func BenchmarkLoad(b *testing.B) {
	s, c, ctx := benchSetup(b)
	now := time.Now()
	id := newID(b)
	if ok, err := s.Create(ctx, id, benchData, now.Add(time.Hour), "", now); !ok || err != nil {
		b.Fatal(ok, err)
	}
	key := s.sessionKey(id)
	runPair(b, pair{
		store: func(b *testing.B) {
			if _, _, _, found, err := s.Load(ctx, id, now); !found || err != nil {
				b.Fatal(found, err)
			}
		},
		// GET, as a store without an embedded expiry would.
		raw: func(b *testing.B) {
			if _, err := c.Get(ctx, key).Bytes(); err != nil {
				b.Fatal(err)
			}
		},
	})
}

func BenchmarkCreate(b *testing.B) {
	s, c, ctx := benchSetup(b)
	now := time.Now()
	exp := now.Add(time.Minute)
	pxat := exp.UnixMilli()
	val := encodeRecord(1, pxat, 0, "", benchData)
	base := newID(b)[:48]
	var si, ri int64
	runPair(b, pair{
		store: func(b *testing.B) {
			si++
			id := base + strconv.FormatInt(si|1<<62, 16)
			if ok, err := s.Create(ctx, id, benchData, exp, "", now); !ok || err != nil {
				b.Fatal(ok, err)
			}
		},
		// SET key value PXAT ms NX.
		raw: func(b *testing.B) {
			ri++
			key := s.prefix + "raw:" + base + strconv.FormatInt(ri|1<<62, 16)
			if err := c.Do(ctx, "set", key, val, "pxat", pxat, "nx").Err(); err != nil {
				b.Fatal(err)
			}
		},
	})
}

// rawCAS is the minimal version compare-and-set a hand-written store would
// run: compare an 8-byte version prefix, write the new value with PXAT.
var rawCAS = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if string.sub(v, 1, 8) ~= ARGV[1] then return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return 2
`)

func BenchmarkUpdate(b *testing.B) {
	s, c, ctx := benchSetup(b)
	now := time.Now()
	exp := now.Add(time.Hour)
	id := newID(b)
	if ok, err := s.Create(ctx, id, benchData, exp, "", now); !ok || err != nil {
		b.Fatal(ok, err)
	}
	key := s.prefix + "raw:" + newID(b)
	pxat := exp.UnixMilli()
	if err := c.Set(ctx, key, append(be64(1), benchData...), time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	sv, rv := int64(1), int64(1)
	runPair(b, pair{
		store: func(b *testing.B) {
			if ok, _, err := s.Update(ctx, id, sv, benchData, exp, "", now); !ok || err != nil {
				b.Fatal(ok, err)
			}
			sv++
		},
		raw: func(b *testing.B) {
			val := append(be64(rv+1), benchData...)
			if n, err := rawCAS.Run(ctx, c, []string{key}, be64(rv), val, pxat).Int64(); n != 2 || err != nil {
				b.Fatal(n, err)
			}
			rv++
		},
	})
}

// rawTouch is the minimal touch that never creates: tell "missing" apart
// from "not later", and move the TTL with PEXPIREAT GT.
var rawTouch = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[1], 'GT')
return 1
`)

func BenchmarkTouch(b *testing.B) {
	s, c, ctx := benchSetup(b)
	now := time.Now()
	id := newID(b)
	sexp := now.Add(time.Hour)
	if ok, err := s.Create(ctx, id, benchData, sexp, "", now); !ok || err != nil {
		b.Fatal(ok, err)
	}
	key := s.prefix + "raw:" + newID(b)
	rexp := now.Add(time.Hour)
	if err := c.Set(ctx, key, benchData, time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	runPair(b, pair{
		store: func(b *testing.B) {
			sexp = sexp.Add(time.Millisecond) // always later: the writing path
			if found, err := s.Touch(ctx, id, sexp, now); !found || err != nil {
				b.Fatal(found, err)
			}
		},
		raw: func(b *testing.B) {
			rexp = rexp.Add(time.Millisecond)
			if n, err := rawTouch.Run(ctx, c, []string{key}, rexp.UnixMilli()).Int64(); n != 1 || err != nil {
				b.Fatal(n, err)
			}
		},
	})
}
