package main

import (
	"strings"
	"testing"
)

const benchOutput = `goos: linux
BenchmarkSessions/store=none/work=untouched-nocookie/lib=baseline-2   100   1000 ns/op   1328 B/op   10 allocs/op
BenchmarkSessions/store=none/work=untouched-nocookie/lib=baseline-2   100   1200 ns/op   1328 B/op   10 allocs/op
BenchmarkSessions/store=none/work=untouched-nocookie/lib=baseline-2   100   3000 ns/op   1328 B/op   10 allocs/op
BenchmarkSessions/store=memory/work=untouched-nocookie/lib=sessionkit-2   100   1100 ns/op   2000 B/op   12 allocs/op
BenchmarkSessions/store=memory/work=untouched-nocookie/lib=sessionkit-2   100   1300 ns/op   2000 B/op   12 allocs/op
BenchmarkSessions/store=memory/work=read/lib=sessionkit-2   100   4000 ns/op   2000 B/op   20 allocs/op
BenchmarkSessions/store=memory/work=read/lib=floor-2   100   1000 ns/op   2000 B/op   12 allocs/op
BenchmarkSessions/store=memory/work=read/lib=scs-2   100   50000 ns/op   2000 B/op   200 allocs/op
BenchmarkSessions/store=memory/work=read/lib=scs   100   30000 ns/op   2000 B/op   200 allocs/op
PASS
`

func TestParseAndMedians(t *testing.T) {
	res := results{}
	if err := res.parse(strings.NewReader(benchOutput)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		k          key
		ns, allocs float64
	}{
		{key{"none", "untouched-nocookie", "baseline"}, 1200, 10},     // odd count: the middle one
		{key{"memory", "untouched-nocookie", "sessionkit"}, 1200, 12}, // even count: the mean of the middle two
		{key{"memory", "read", "scs"}, 40000, 200},                    // with and without the -P suffix
	}
	for _, tt := range tests {
		ns, _, allocs, ok := res.med(tt.k)
		if !ok || ns != tt.ns || allocs != tt.allocs {
			t.Errorf("%v: median %v ns, %v allocs, ok %v; want %v, %v", tt.k, ns, allocs, ok, tt.ns, tt.allocs)
		}
	}
	if _, _, _, ok := res.med(key{"redis", "read", "sessionkit"}); ok {
		t.Error("unmeasured benchmark reported as measured")
	}
}

func TestSpread(t *testing.T) {
	// Quartiles of 1..5 are 2 and 4, the median 3: (4-2)/2/3.
	if got, want := spread([]float64{5, 1, 4, 2, 3}), 100.0/3; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("spread = %v, want %v", got, want)
	}
	if got := spread([]float64{7}); got != 0 {
		t.Errorf("spread of one run = %v, want 0", got)
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name string
		want key
		ok   bool
	}{
		{"BenchmarkSessions/store=redis/work=parallel-incr/lib=floor-16", key{"redis", "parallel-incr", "floor"}, true},
		{"BenchmarkSessions/store=redis/work=read/lib=scs", key{"redis", "read", "scs"}, true},
		{"BenchmarkSessions/store=redis/work=read", key{"redis", "read", ""}, false},
		{"BenchmarkSessions/redis/read/scs", key{}, false},
	}
	for _, tt := range tests {
		got, ok := parseName(tt.name)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseName(%q) = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTargets(t *testing.T) {
	res := results{}
	if err := res.parse(strings.NewReader(benchOutput)); err != nil {
		t.Fatal(err)
	}
	probe, err := parseProbe(strings.NewReader("store\tlib\trounds\trequests\tok\trefused\tlost\nmemory\tsessionkit\t2\t100\t100\t0\t0\nmemory\tscs\t2\t100\t100\t0\t96\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]target{}
	for _, tg := range res.targets(probe) {
		got[tg.name] = tg
	}
	want := map[string]bool{
		"memory untouched-nocookie: time vs baseline":  true,  // 1200/1200
		"memory untouched-nocookie: extra allocations": true,  // 2
		"memory read: vs memory floor":                 false, // 4x
		"memory read: vs scs":                          true,  // 0.1x
		"memory read: faster than scs":                 true,
		"memory lost-update probe":                     true,
	}
	for name, met := range want {
		tg, ok := got[name]
		if !ok {
			t.Errorf("target %q not evaluated", name)
			continue
		}
		if tg.met != met {
			t.Errorf("target %q: met %v (measured %s), want %v", name, tg.met, tg.measured, met)
		}
	}
	if len(got) != len(want) {
		t.Errorf("evaluated %d targets, want %d: %v", len(got), len(want), got)
	}

	var sb strings.Builder
	if err := write(&sb, res, probe); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| read | sessionkit | 4000 | 0% | 2000 | 20 | – | – | 4.00x | 4.00x | 0.10x |", "| memory | scs | 2 | 100 | 0 | 96 | 96.0% |", "**missed**"} {
		if !strings.Contains(sb.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, sb.String())
		}
	}
}

func TestPairedRatiosStayWithinAProcess(t *testing.T) {
	// Two processes: in each, sessionkit takes twice the baseline's time,
	// although the machine was three times slower during the second.
	const out = `goos: linux
BenchmarkSessions/store=none/work=read/lib=baseline-2 1 1000 ns/op
BenchmarkSessions/store=memory/work=read/lib=floor-2 1 1500 ns/op
BenchmarkSessions/store=memory/work=read/lib=sessionkit-2 1 2000 ns/op
goos: linux
BenchmarkSessions/store=memory/work=read/lib=sessionkit-2 1 6000 ns/op
BenchmarkSessions/store=memory/work=read/lib=floor-2 1 4500 ns/op
BenchmarkSessions/store=none/work=read/lib=baseline-2 1 3000 ns/op
`
	res := results{}
	if err := res.parse(strings.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	sk := res[key{"memory", "read", "sessionkit"}]
	if got := paired(sk.vsBase); got != "2.00x" {
		t.Errorf("paired vs baseline = %s, want 2.00x (%v)", got, sk.vsBase)
	}
	if got := paired(sk.vsFloor); got != "1.33x" {
		t.Errorf("paired vs floor = %s, want 1.33x (%v)", got, sk.vsFloor)
	}
	if fl := res[key{"memory", "read", "floor"}]; len(fl.vsFloor) != 0 {
		t.Errorf("the floor is paired with itself: %v", fl.vsFloor)
	}
}

func TestParseProbeRejectsShortLines(t *testing.T) {
	if _, err := parseProbe(strings.NewReader("header\nmemory\tsessionkit\t2\n")); err == nil {
		t.Error("no error for a line with 3 fields")
	}
}
