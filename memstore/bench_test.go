package memstore_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/sessionkit/sessions/memstore"
)

// benchData is a typical small encoded session.
var benchData = bytes.Repeat([]byte("x"), 256)

func benchStore(b *testing.B) (*memstore.Store, string) {
	b.Helper()
	s := newStore(b, nil)
	// A populated store, so map operations are not on a toy map.
	for i := range 10000 {
		if _, err := s.Create(bg, testID("fill"+strconv.Itoa(i)), benchData, base.Add(time.Hour), "", base); err != nil {
			b.Fatal(err)
		}
	}
	id := testID("bench")
	if created, err := s.Create(bg, id, benchData, base.Add(time.Hour), "owner", base); !created || err != nil {
		b.Fatal(created, err)
	}
	return s, id
}

func BenchmarkLoad(b *testing.B) {
	s, id := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, found, err := s.Load(bg, id, base); !found || err != nil {
			b.Fatal(found, err)
		}
	}
}

func BenchmarkLoadParallel(b *testing.B) {
	s, id := benchStore(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, _, found, err := s.Load(bg, id, base); !found || err != nil {
				b.Error(found, err)
				return
			}
		}
	})
}

func BenchmarkUpdate(b *testing.B) {
	s, id := benchStore(b)
	version := int64(1)
	b.ReportAllocs()
	for b.Loop() {
		if updated, _, err := s.Update(bg, id, version, benchData, base.Add(time.Hour), "owner", base); !updated || err != nil {
			b.Fatal(updated, err)
		}
		version++
	}
}

func BenchmarkTouch(b *testing.B) {
	s, id := benchStore(b)
	exp := base.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		exp = exp.Add(time.Millisecond)
		if found, err := s.Touch(bg, id, exp, base); !found || err != nil {
			b.Fatal(found, err)
		}
	}
}

// BenchmarkCreate creates a fresh id per iteration under churn: each session
// lives 10000 iterations, so the store stays at its steady size. The id
// string (which the Manager allocates anyway) counts in the allocations.
func BenchmarkCreate(b *testing.B) {
	s := newStore(b, nil)
	prefix := testID("create")[:48]
	buf := []byte(prefix)
	var n [8]byte
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		buf = hex.AppendEncode(buf[:48], binary.BigEndian.AppendUint64(n[:0], uint64(i)))
		id := string(buf)
		now := base.Add(time.Duration(i) * time.Millisecond)
		if created, err := s.Create(bg, id, benchData, now.Add(10*time.Second), "", now); !created || err != nil {
			b.Fatal(created, err)
		}
		i++
	}
}
