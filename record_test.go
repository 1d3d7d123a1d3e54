package sessions

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func sampleRecord() record {
	return record{
		start:    1_700_000_000_000,
		idle:     30_000,
		deadline: 1_700_000_600_000,
		browser:  browserOn,
		owner:    "user-42",
		values: valuesOf(map[string]json.RawMessage{
			"count": json.RawMessage(`3`),
			"flash": json.RawMessage(`"saved"`),
			"":      json.RawMessage(`null`),
			"user":  json.RawMessage(`{"id":42,"roles":["admin"]}`),
		}),
	}
}

// sampleRecordV2 is sampleRecord as written by this release.
func sampleRecordV2() record {
	r := sampleRecord()
	r.active = 1_700_000_300_000
	r.idleUsed = 30_000
	return r
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  record
	}{
		{"empty", record{values: valuesOf(map[string]json.RawMessage{})}},
		{"start only", record{start: 1, values: valuesOf(map[string]json.RawMessage{})}},
		{"everything, version 1", sampleRecord()},
		{"everything", sampleRecordV2()},
		{"version 2 without idle in force", record{start: 7, active: 9, values: valuesOf(map[string]json.RawMessage{"a": json.RawMessage(`1`)})}},
		{"remembered", record{start: 7, active: 9, lifetime: 90 * 86_400_000, browser: browserOff, values: valuesOf(map[string]json.RawMessage{})}},
		{"big value", record{start: 5, values: valuesOf(map[string]json.RawMessage{"k": json.RawMessage(`"` + string(bytes.Repeat([]byte("x"), 70000)) + `"`)})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.rec.encode()
			if len(b) != tt.rec.size() {
				t.Errorf("size() = %d, encoding has %d bytes", tt.rec.size(), len(b))
			}
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatalf("decodeRecord(encode()) failed: %v", err)
			}
			// A decoded record's size bound is exact.
			if n := len(b) - tt.rec.fixedSize(); got.valBound != n {
				t.Errorf("decoded valBound = %d, want %d", got.valBound, n)
			}
			got.valBound = 0
			if !reflect.DeepEqual(got, tt.rec) {
				t.Errorf("round trip changed the record:\n got %+v\nwant %+v", got, tt.rec)
			}
			if again := got.encode(); !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs:\n%x\n%x", again, b)
			}
		})
	}
}

// TestRecordGolden pins the record formats: records written by earlier
// releases must keep decoding. Add a file for a new format; never
// regenerate an existing one.
func TestRecordGolden(t *testing.T) {
	tests := []struct {
		file string
		rec  record
	}{
		{"testdata/record-v1.bin", sampleRecord()},
		{"testdata/record-v2.bin", sampleRecordV2()},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.rec.encode(); !bytes.Equal(got, want) {
				t.Errorf("encoding changed:\n got %x\nwant %x", got, want)
			}
			dec, err := decodeRecord(want)
			if err != nil {
				t.Fatalf("golden record does not decode: %v", err)
			}
			dec.valBound = 0
			if !reflect.DeepEqual(dec, tt.rec) {
				t.Errorf("golden record decodes to %+v", dec)
			}
		})
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	sample := sampleRecord()
	good := sample.encode()
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"unknown version", append([]byte{3}, good[1:]...)},
		{"version 1 with an idle-in-force flag", []byte{1, flagIdleUsed, 0, 5, 0, 0}},
		{"version 2 with zero active", []byte{2, 0, 0, 0, 0, 0}},
		{"version 2 with zero idle in force", []byte{2, flagIdleUsed, 0, 1, 0, 0, 0}},
		{"version 2 unknown flag", []byte{2, 0x40, 0, 1, 0, 0}},
		{"version 2 browser-session and persistent", []byte{2, flagBrowser | flagCookie, 0, 1, 0, 0}},
		{"version 2 zero lifetime", []byte{2, flagLifetime, 0, 1, 0, 0, 0}},
		{"version 1 with a lifetime flag", []byte{1, flagLifetime, 0, 5, 0, 0}},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"unknown flag", []byte{1, 0x08, 0, 0, 0}},
		{"zero idle override", []byte{1, flagIdle, 0, 0, 0, 0}},
		{"overlong varint", []byte{1, 0x80, 0x00, 0, 0, 0}},
		{"huge count", []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"duplicate key", []byte{1, 0, 0, 0, 2, 1, 'a', 1, '1', 1, 'a', 1, '2'}},
		{"unsorted keys", []byte{1, 0, 0, 0, 2, 1, 'b', 1, '1', 1, 'a', 1, '2'}},
		{"value past end", []byte{1, 0, 0, 0, 1, 1, 'a', 5, '1'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeRecord(tt.b); !errors.Is(err, errCorrupt) {
				t.Errorf("decodeRecord(%x) = %v, want errCorrupt", tt.b, err)
			}
		})
	}
}

// FuzzDecodeRecord checks that any stored bytes either fail with errCorrupt
// or decode to a record that re-encodes to exactly the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	sample := sampleRecord()
	f.Add(sample.encode())
	v2 := sampleRecordV2()
	f.Add(v2.encode())
	f.Add((&record{values: valuesOf(map[string]json.RawMessage{})}).encode())
	f.Add([]byte{1, 0, 0, 0, 2, 1, 'a', 1, '1', 1, 'b', 1, '2'})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if again := rec.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decoded record re-encodes differently:\n in %x\nout %x", b, again)
		}
	})
}

func TestUvarintLen(t *testing.T) {
	for _, x := range []uint64{0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 1<<35 - 1, 1 << 35, 1<<62 + 5, 1<<63 - 1, 1 << 63, ^uint64(0)} {
		if got, want := uvarintLen(x), len(binary.AppendUvarint(nil, x)); got != want {
			t.Errorf("uvarintLen(%#x) = %d, want %d", x, got, want)
		}
	}
}

// TestSizeBound checks that sizeBound never falls below the exact size,
// through decoding and every kind of change, and that encode's single
// pass produces size() bytes.
func TestSizeBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"a", "counter", "k3", strings.Repeat("x", 200)}
	for round := range 200 {
		r := record{values: valuesOf(map[string]json.RawMessage{})}
		if round%2 == 1 { // start from a decoded record
			seed := record{start: 1, active: 2, values: valuesOf(map[string]json.RawMessage{"counter": json.RawMessage("41"), "b": json.RawMessage(`"x"`)})}
			var err error
			if r, err = decodeRecord(seed.encode()); err != nil {
				t.Fatal(err)
			}
		}
		for step := range 30 {
			k := keys[rng.IntN(len(keys))]
			v := json.RawMessage(strconv.Itoa(rng.IntN(1 << (rng.IntN(60) + 1))))
			var o op
			switch rng.IntN(8) {
			case 0, 1:
				o = op{kind: opSet, key: k, val: v}
			case 2:
				o = op{kind: opDelete, key: k}
			case 3:
				o = op{kind: opClear}
			case 4:
				o = op{kind: opOwner, key: strings.Repeat("o", rng.IntN(300))}
			case 5:
				o = op{kind: opStart, n: rng.Int64N(1 << 62)}
			case 6:
				o = op{kind: opFunc, key: k, fn: func(cur json.RawMessage, ok bool) (json.RawMessage, bool, error) {
					return append(cur, '1'), rng.IntN(4) != 0, nil
				}}
			case 7:
				cur, ok := r.values.get(k)
				o = op{kind: opCAS, key: k, base: cur, val: v, n: map[bool]int64{false: 0, true: 1}[ok]}
			}
			if err := r.apply(o); err != nil {
				t.Fatalf("round %d step %d: apply: %v", round, step, err)
			}
			r.active, r.idle, r.deadline = rng.Int64N(1<<62), rng.Int64N(1<<40), rng.Int64N(1<<62)
			if b, n := r.sizeBound(), r.size(); b < n {
				t.Fatalf("round %d step %d: sizeBound() = %d < size() = %d", round, step, b, n)
			}
			if enc := r.encode(); len(enc) != r.size() {
				t.Fatalf("round %d step %d: encode() has %d bytes, size() = %d", round, step, len(enc), r.size())
			}
		}
	}
}

// valuesOf returns m as a record's values (sorted; nil when empty).
func valuesOf(m map[string]json.RawMessage) values {
	var vs values
	for k, v := range m {
		vs = append(vs, entry{k, v})
	}
	slices.SortFunc(vs, func(a, b entry) int { return strings.Compare(a.k, b.k) })
	return vs
}

// TestValuesModel checks the sorted values against a map: random sets and
// deletes over up to 40 keys (the scan below 9 values, binary search
// above), and the order encode relies on.
func TestValuesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		var r record
		model := map[string]json.RawMessage{}
		nkeys := 1 + rng.IntN(40)
		for step := range 400 {
			k := fmt.Sprintf("k%02d", rng.IntN(nkeys))
			switch rng.IntN(10) {
			case 0:
				r.deleteValue(k)
				delete(model, k)
			case 1:
				if err := r.apply(op{kind: opClear}); err != nil {
					t.Fatal(err)
				}
				clear(model)
			default:
				v := json.RawMessage(strconv.Itoa(step))
				r.setValue(k, v)
				model[k] = v
			}
			if len(r.values) != len(model) {
				t.Fatalf("round %d step %d: %d values, model has %d", round, step, len(r.values), len(model))
			}
			for i, e := range r.values {
				if i > 0 && r.values[i-1].k >= e.k {
					t.Fatalf("round %d step %d: values out of order at %d: %q >= %q", round, step, i, r.values[i-1].k, e.k)
				}
			}
			for i := range nkeys {
				k := fmt.Sprintf("k%02d", i)
				got, ok := r.values.get(k)
				want, wok := model[k]
				if ok != wok || !bytes.Equal(got, want) {
					t.Fatalf("round %d step %d: get(%q) = %s, %v; want %s, %v", round, step, k, got, ok, want, wok)
				}
			}
		}
		dec, err := decodeRecord(r.encode())
		if err != nil {
			t.Fatalf("round %d: decode(encode()): %v", round, err)
		}
		if !reflect.DeepEqual([]entry(dec.values), []entry(r.values)) && (len(dec.values) != 0 || len(r.values) != 0) {
			t.Fatalf("round %d: round trip changed the values", round)
		}
	}
}
