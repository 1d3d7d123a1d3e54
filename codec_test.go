package sessions

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"testing"
)

// The fast path must agree with encoding/json on every input: the same
// value, an error exactly when json.Unmarshal errs, the same bytes out.
var codecSeeds = []string{
	`0`, `-0`, `1`, `-1`, `42`, `007`, `1.0`, `1e2`, ` 1`, `1 `, `+1`, `-`, ``,
	`999999999999999999`, `-999999999999999999`, `9223372036854775807`, `9223372036854775808`,
	`-9223372036854775808`, `true`, `false`, `null`, `"x"`, `""`, `"a\"b"`, `"\u00e9"`, `"<>&"`,
	`"é"`, `"a b"`, `"\n"`, `"`, `"abc`, `[1]`, `{}`, `tru`, `"\u003c"`,
}

func checkDecode[T comparable](t *testing.T, raw string) {
	t.Helper()
	var fast, slow T
	errFast := decodeValue([]byte(raw), &fast)
	errSlow := json.Unmarshal([]byte(raw), &slow)
	if (errFast == nil) != (errSlow == nil) || fast != slow {
		t.Errorf("decode %q into %T: fast %v (%v), encoding/json %v (%v)", raw, slow, fast, errFast, slow, errSlow)
	}
}

func checkEncode[T any](t *testing.T, v T) {
	t.Helper()
	fast, errFast := encodeValue(&v)
	slow, errSlow := json.Marshal(v)
	if (errFast == nil) != (errSlow == nil) || !bytes.Equal(fast, slow) {
		t.Errorf("encode %#v: fast %q (%v), encoding/json %q (%v)", v, fast, errFast, slow, errSlow)
	}
}

func checkAll(t *testing.T, raw string) {
	checkDecode[int](t, raw)
	checkDecode[int64](t, raw)
	checkDecode[bool](t, raw)
	checkDecode[string](t, raw)
	checkDecode[float64](t, raw)
	var s string
	if json.Unmarshal([]byte(raw), &s) == nil {
		checkEncode(t, s)
	}
	var n int64
	if json.Unmarshal([]byte(raw), &n) == nil {
		checkEncode(t, n)
		checkEncode(t, int(n))
	}
}

func TestCodecFastPath(t *testing.T) {
	for _, raw := range codecSeeds {
		checkAll(t, raw)
	}
	for _, n := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 40} {
		checkEncode(t, n)
		checkAll(t, strconv.FormatInt(n, 10))
	}
	checkEncode(t, true)
	checkEncode(t, false)
	checkEncode(t, "\xff")
	checkEncode(t, "<script>")
	checkEncode(t, 1.5)
}

func FuzzCodecFastPath(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkAll(t, raw)
		checkEncode(t, raw)
	})
}

// A read and an increment of an int take no encoding/json allocation.
func TestCodecFastPathAllocs(t *testing.T) {
	raw := []byte("12345")
	var n int
	if a := testing.AllocsPerRun(100, func() { _ = decodeValue(raw, &n) }); a != 0 {
		t.Errorf("decodeValue(int): %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = encodeValue(&n) }); a != 1 {
		t.Errorf("encodeValue(int): %v allocations, want 1 (the result)", a)
	}
}
