package redisstore

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The benchmarks measure each Store operation ("store") against two floors
// in the same run:
//
//   - "raw": the very commands the Store sends (GET; SET PXAT NX; EVALSHA of
//     its scripts with the same arguments), issued directly through the
//     same go-redis client with everything precomputed: the ratio
//     store/raw is the cost of the Store's Go code (encoding, timeouts,
//     error wrapping);
//   - "minimal" (Update and Touch): the simplest script a hand-written
//     store could use (a bare version compare-and-set; EXISTS + PEXPIREAT
//     GT without an embedded expiry): store/minimal adds the cost of the
//     Store's design (embedded expiry, owner-index bookkeeping).
//
// "paired" alternates all of them in one loop, so that load from other
// processes hits each alike, and reports ns/op of each and the ratios.

var benchData = bytes.Repeat([]byte("x"), 200)

func benchSetup(b *testing.B) (*Store, *redis.Client, context.Context) {
	b.Helper()
	c := newClient(b)
	s := newStore(b, c, nil)
	return s, c, context.Background()
}

// pair holds one operation done by the Store and by its floors; each func
// performs the operation once more (with fresh arguments when needed).
type pair struct {
	store, raw, minimal func(b *testing.B)
}

func runPair(b *testing.B, p pair) {
	sub := map[string]func(b *testing.B){"store": p.store, "raw": p.raw, "minimal": p.minimal}
	for _, name := range []string{"store", "raw", "minimal"} {
		f := sub[name]
		if f == nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f(b)
			}
		})
	}
	b.Run("paired", func(b *testing.B) {
		var st, rt, mt time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			p.store(b)
			t1 := time.Now()
			p.raw(b)
			t2 := time.Now()
			if p.minimal != nil {
				p.minimal(b)
				mt += time.Since(t2)
			}
			st += t1.Sub(t0)
			rt += t2.Sub(t1)
			n++
		}
		b.ReportMetric(float64(st.Nanoseconds())/float64(n), "store-ns/op")
		b.ReportMetric(float64(rt.Nanoseconds())/float64(n), "raw-ns/op")
		b.ReportMetric(float64(st)/float64(rt), "store/raw")
		if p.minimal != nil {
			b.ReportMetric(float64(mt.Nanoseconds())/float64(n), "minimal-ns/op")
			b.ReportMetric(float64(st)/float64(mt), "store/minimal")
		}
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
	pxat := s.pxat(exp.UnixMilli())
	val := encodeRecord(1, exp.UnixMilli(), 0, "", benchData)
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
		raw: func(b *testing.B) {
			ri++
			key := s.prefix + "raw:" + base + strconv.FormatInt(ri|1<<62, 16)
			if err := c.Do(ctx, "set", key, val, "pxat", pxat, "nx").Err(); err != nil {
				b.Fatal(err)
			}
		},
	})
}

// minimalCAS is the simplest version compare-and-set: compare an 8-byte
// version prefix, write the new value with PXAT.
var minimalCAS = redis.NewScript(`
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
	nowMs, expMs, pxat := now.UnixMilli(), exp.UnixMilli(), s.pxat(exp.UnixMilli())
	id := newID(b)
	rawKey := s.prefix + "raw:" + newID(b)
	minKey := s.prefix + "min:" + newID(b)
	for _, create := range []func() error{
		func() error { _, err := s.Create(ctx, id, benchData, exp, "", now); return err },
		func() error { return c.Set(ctx, rawKey, encodeRecord(1, expMs, 0, "", benchData), time.Hour).Err() },
		func() error { return c.Set(ctx, minKey, append(be64(1), benchData...), time.Hour).Err() },
	} {
		if err := create(); err != nil {
			b.Fatal(err)
		}
	}
	sv, rv, mv := int64(1), int64(1), int64(1)
	runPair(b, pair{
		store: func(b *testing.B) {
			if ok, _, err := s.Update(ctx, id, sv, benchData, exp, "", now); !ok || err != nil {
				b.Fatal(ok, err)
			}
			sv++
		},
		raw: func(b *testing.B) {
			val := encodeRecord(rv+1, expMs, 0, "", benchData)
			n, err := updateScript.Run(ctx, c, []string{rawKey}, nowMs, be64(rv), val, expMs, pxat, "", "0", DefaultTTLGrace.Milliseconds()).Int64()
			if n != 2 || err != nil {
				b.Fatal(n, err)
			}
			rv++
		},
		minimal: func(b *testing.B) {
			val := append(be64(mv+1), benchData...)
			if n, err := minimalCAS.Run(ctx, c, []string{minKey}, be64(mv), val, expMs).Int64(); n != 2 || err != nil {
				b.Fatal(n, err)
			}
			mv++
		},
	})
}

// minimalTouch is the simplest touch that never creates: tell "missing"
// apart, move the TTL with PEXPIREAT GT; no embedded expiry to rewrite.
var minimalTouch = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[1], 'GT')
return 1
`)

func BenchmarkTouch(b *testing.B) {
	s, c, ctx := benchSetup(b)
	now := time.Now()
	nowMs := now.UnixMilli()
	id := newID(b)
	rawKey := s.prefix + "raw:" + newID(b)
	minKey := s.prefix + "min:" + newID(b)
	sexp, rexp, mexp := now.Add(time.Hour), now.Add(time.Hour), now.Add(time.Hour)
	if ok, err := s.Create(ctx, id, benchData, sexp, "", now); !ok || err != nil {
		b.Fatal(ok, err)
	}
	if err := c.Set(ctx, rawKey, encodeRecord(1, rexp.UnixMilli(), 0, "", benchData), time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	if err := c.Set(ctx, minKey, benchData, time.Hour).Err(); err != nil {
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
			ms := rexp.UnixMilli()
			if n, err := touchScript.Run(ctx, c, []string{rawKey}, nowMs, ms, s.pxat(ms)).Int64(); n != 1 || err != nil {
				b.Fatal(n, err)
			}
		},
		minimal: func(b *testing.B) {
			mexp = mexp.Add(time.Millisecond)
			if n, err := minimalTouch.Run(ctx, c, []string{minKey}, mexp.UnixMilli()).Int64(); n != 1 || err != nil {
				b.Fatal(n, err)
			}
		},
	})
}
