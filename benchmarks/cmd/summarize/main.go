// Command summarize turns the output of the sessionkit benchmarks
// (BenchmarkSessions/store=S/work=W/lib=L lines from go test -bench, any
// number of runs) and, optionally, the lost-update probe's counts into a
// Markdown summary: the median of every benchmark, its ratios against the
// baseline, the floor of the same store and scs, and the speed targets of
// issue 6 marked as met or missed.
//
// Usage:
//
//	summarize [-probe probe.tsv] bench.txt...
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	probe := flag.String("probe", "", "the lost-update probe's counts (TestLostUpdates -probe.out)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: summarize [-probe probe.tsv] bench.txt...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	res := results{}
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fatal(err)
		}
		err = res.parse(f)
		f.Close()
		if err != nil {
			fatal(fmt.Errorf("%s: %w", name, err))
		}
	}
	var rows []probeRow
	if *probe != "" {
		f, err := os.Open(*probe)
		if err != nil {
			fatal(err)
		}
		rows, err = parseProbe(f)
		f.Close()
		if err != nil {
			fatal(fmt.Errorf("%s: %w", *probe, err))
		}
	}
	if err := write(os.Stdout, res, rows); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "summarize:", err)
	os.Exit(1)
}

// A key names one benchmark.
type key struct{ store, work, lib string }

// samples are the measurements of one benchmark over the runs, and its
// paired ratios: ns/op divided by that of the baseline (same workload) and
// of the floor (same store and workload) measured in the same process,
// seconds apart.
type samples struct{ ns, bytes, allocs, vsBase, vsFloor []float64 }

type results map[key]*samples

// parse adds the BenchmarkSessions lines of r. Each "goos:" line starts
// the output of another process, within which results are paired.
func (res results) parse(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var proc map[key]float64 // ns/op of the current process's benchmarks
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] == "goos:" {
			res.pair(proc)
			proc = map[key]float64{}
			continue
		}
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkSessions/") {
			continue
		}
		k, ok := parseName(f[0])
		if !ok {
			continue
		}
		s := res[k]
		if s == nil {
			s = &samples{}
			res[k] = s
		}
		// f[1] is the iteration count, then value-unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("%s: value %q: %w", f[0], f[i], err)
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
				if proc != nil {
					proc[k] = v
				}
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
	}
	res.pair(proc)
	return sc.Err()
}

// pair adds the paired ratios of one process's results.
func (res results) pair(proc map[key]float64) {
	for k, ns := range proc {
		if k.lib == "baseline" {
			continue
		}
		base, bok := proc[key{"none", k.work, "baseline"}]
		if bok {
			res[k].vsBase = append(res[k].vsBase, ns/base)
		}
		floor, fok := proc[key{k.store, k.work, "floor"}]
		if strings.HasPrefix(k.work, "untouched") {
			floor, fok = base, bok
		}
		if fok && k.lib != "floor" {
			res[k].vsFloor = append(res[k].vsFloor, ns/floor)
		}
	}
}

// paired formats the median of paired ratios, "–" if there are none.
func paired(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", median(v))
}

// parseName reads store, work and lib from
// BenchmarkSessions/store=S/work=W/lib=L-P.
func parseName(name string) (key, bool) {
	var k key
	for _, part := range strings.Split(name, "/")[1:] {
		kv, val, ok := strings.Cut(part, "=")
		if !ok {
			return k, false
		}
		switch kv {
		case "store":
			k.store = val
		case "work":
			k.work = val
		case "lib":
			// Strip the -GOMAXPROCS suffix go test adds.
			if i := strings.LastIndexByte(val, '-'); i > 0 {
				if _, err := strconv.Atoi(val[i+1:]); err == nil {
					val = val[:i]
				}
			}
			k.lib = val
		}
	}
	return k, k.store != "" && k.work != "" && k.lib != ""
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// spread is half the interquartile range of v relative to its median, in
// percent: how far a typical run strays from the median.
func spread(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	q := func(p float64) float64 {
		x := p * float64(len(s)-1)
		i := int(x)
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (x-float64(i))*(s[i+1]-s[i])
	}
	m := median(s)
	if m == 0 {
		return 0
	}
	return 100 * (q(0.75) - q(0.25)) / 2 / m
}

// med returns the median ns/op, B/op and allocs/op of k, ok false if k was
// not measured.
func (res results) med(k key) (ns, bytes, allocs float64, ok bool) {
	s := res[k]
	if s == nil || len(s.ns) == 0 {
		return 0, 0, 0, false
	}
	return median(s.ns), median(s.bytes), median(s.allocs), true
}

// Orders of the axes in the output.
var (
	storeOrder = []string{"memory", "redis", "redis-near", "postgres", "mysql", "cookie", "filesystem"}
	workOrder  = []string{"untouched-nocookie", "untouched-cookie", "read", "incr", "create", "parallel-incr"}
	libOrder   = []string{"sessionkit", "scs", "gorilla", "floor"}
)

// ratio formats a/b, "–" when either is missing.
func ratio(a float64, aok bool, b float64, bok bool) string {
	if !aok || !bok || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func (res results) baseline(work string) (float64, float64, bool) {
	ns, _, allocs, ok := res.med(key{"none", work, "baseline"})
	return ns, allocs, ok
}

// floor returns the floor of store for work: the baseline for the
// untouched workloads, which the floor (a handler that never loads an
// untouched session) serves exactly as the baseline does.
func (res results) floor(store, work string) (float64, bool) {
	if strings.HasPrefix(work, "untouched") {
		ns, _, ok := res.baseline(work)
		return ns, ok
	}
	ns, _, _, ok := res.med(key{store, work, "floor"})
	return ns, ok
}

func write(w io.Writer, res results, probe []probeRow) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	runs, baseRuns := 0, 0
	for k, s := range res {
		if k.lib == "baseline" {
			baseRuns = max(baseRuns, len(s.ns))
		} else {
			runs = max(runs, len(s.ns))
		}
	}
	p("Medians of %d runs per benchmark (%d for the baseline, which runs beside every store); ± is half the interquartile range of the runs, relative to the median; ratios are of medians, paired ratios the medians of the ratios measured within one process (one workload and store, all libraries, seconds apart). Baseline: the same request served by a bare handler (no session library). Floor: a hand-written minimum on the same store (random token cookie, one store round trip per read and per write, no codec).\n\n", runs, baseRuns)

	p("| workload | baseline ns/op (allocs) |\n|---|---:|\n")
	for _, work := range workOrder {
		if ns, allocs, ok := res.baseline(work); ok {
			p("| %s | %s (%s) |\n", work, fmtNs(ns), fmtN(allocs))
		}
	}
	p("\n")

	for _, store := range storeOrder {
		if !res.hasStore(store) {
			continue
		}
		p("### %s\n\n", store)
		p("| workload | library | ns/op | ± | B/op | allocs/op | x baseline | paired | x floor | paired | x scs |\n")
		p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, work := range workOrder {
			bns, _, bok := res.baseline(work)
			fns, fok := res.floor(store, work)
			sns, _, _, sok := res.med(key{store, work, "scs"})
			for _, lib := range libOrder {
				ns, bytes, allocs, ok := res.med(key{store, work, lib})
				if !ok {
					continue
				}
				xs := ratio(ns, ok, sns, sok)
				if lib == "scs" {
					xs = "–"
				}
				xf := ratio(ns, ok, fns, fok)
				if lib == "floor" {
					xf = "–"
				}
				sm := res[key{store, work, lib}]
				p("| %s | %s | %s | %.0f%% | %s | %s | %s | %s | %s | %s | %s |\n", work, lib, fmtNs(ns), spread(sm.ns),
					fmtN(bytes), fmtN(allocs), ratio(ns, ok, bns, bok), paired(sm.vsBase), xf, paired(sm.vsFloor), xs)
			}
		}
		p("\n")
	}

	p("### Targets (issue 6)\n\n")
	p("Measured: the ratio of the medians (the issue's definition), which decides. Paired: the median over the rounds of the ratio measured within one process, seconds apart; less exposed to machine drift.\n\n")
	p("| target | measured | paired | threshold | |\n|---|---:|---:|---:|---|\n")
	for _, t := range res.targets(probe) {
		verdict := "met"
		if !t.met {
			verdict = "**missed**"
		}
		p("| %s | %s | %s | %s | %s |\n", t.name, t.measured, t.paired, t.threshold, verdict)
	}
	p("\n")

	if len(probe) > 0 {
		p("### Lost updates\n\n")
		p("%d concurrent increments of one session's counter per round, over HTTPS, each request holding the session 20 ms between read and write.\n\n", probeConcurrency(probe))
		p("| store | library | rounds | answered 200 | refused | lost | lost %% |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, r := range probe {
			pct := 0.0
			if r.ok > 0 {
				pct = 100 * float64(r.lost) / float64(r.ok)
			}
			p("| %s | %s | %d | %d | %d | %d | %.1f%% |\n", r.store, r.lib, r.rounds, r.ok, r.refused, r.lost, pct)
		}
		p("\n")
	}
	return bw.Flush()
}

func (res results) hasStore(store string) bool {
	for k := range res {
		if k.store == store {
			return true
		}
	}
	return false
}

func fmtNs(ns float64) string {
	if ns >= 100 {
		return strconv.FormatFloat(math.Round(ns), 'f', -1, 64)
	}
	return strconv.FormatFloat(ns, 'f', 1, 64)
}

func fmtN(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', -1, 64) }

// A target is one check of issue 6's table: measured is the ratio of
// medians, paired the median of the ratios measured in one process.
type target struct {
	name, measured, paired, threshold string
	met                               bool
}

func (res results) targets(probe []probeRow) []target {
	var out []target
	add := func(name, measured, threshold string, met bool) {
		out = append(out, target{name: name, measured: measured, paired: "–", threshold: threshold, met: met})
	}
	withPaired := func(v []float64) {
		out[len(out)-1].paired = paired(v)
	}
	for _, store := range storeOrder {
		for _, work := range []string{"untouched-nocookie", "untouched-cookie"} {
			ns, _, allocs, ok := res.med(key{store, work, "sessionkit"})
			bns, ballocs, bok := res.baseline(work)
			if !ok || !bok {
				continue
			}
			add(fmt.Sprintf("%s %s: time vs baseline", store, work), fmt.Sprintf("%.2fx", ns/bns), "≤ 1.10x", ns/bns <= 1.10)
			withPaired(res[key{store, work, "sessionkit"}].vsBase)
			add(fmt.Sprintf("%s %s: extra allocations", store, work), fmtN(allocs-ballocs), "≤ 2", allocs-ballocs <= 2)
		}
	}
	for _, store := range storeOrder {
		for _, work := range []string{"read", "incr", "create"} {
			ns, _, _, ok := res.med(key{store, work, "sessionkit"})
			fns, fok := res.floor(store, work)
			if !ok {
				continue
			}
			if store == "memory" {
				if fok {
					add(fmt.Sprintf("memory %s: vs memory floor", work), fmt.Sprintf("%.2fx", ns/fns), "≤ 2x", ns/fns <= 2)
					withPaired(res[key{store, work, "sessionkit"}].vsFloor)
				}
				if sns, _, _, sok := res.med(key{store, work, "scs"}); sok {
					add(fmt.Sprintf("memory %s: vs scs", work), fmt.Sprintf("%.2fx", ns/sns), "≤ 0.20x", ns/sns <= 0.2)
				}
				continue
			}
			if fok {
				add(fmt.Sprintf("%s %s: vs %s floor", store, work, store), fmt.Sprintf("%.2fx", ns/fns), "≤ 1.15x", ns/fns <= 1.15)
				withPaired(res[key{store, work, "sessionkit"}].vsFloor)
			}
		}
	}
	// Faster than scs on the same store, in every workload. gorilla has no
	// memory, Redis or SQL store of its own: its cookie and filesystem
	// stores are compared with sessionkit's memory store, the other
	// in-process option.
	for _, store := range storeOrder {
		for _, work := range workOrder {
			ns, _, _, ok := res.med(key{store, work, "sessionkit"})
			if !ok {
				continue
			}
			if sns, _, _, sok := res.med(key{store, work, "scs"}); sok {
				add(fmt.Sprintf("%s %s: faster than scs", store, work), fmt.Sprintf("%.2fx", ns/sns), "< 1x", ns < sns)
			}
			if store != "memory" {
				continue
			}
			for _, gs := range []string{"cookie", "filesystem"} {
				if gns, _, _, gok := res.med(key{gs, work, "gorilla"}); gok {
					add(fmt.Sprintf("memory %s: faster than gorilla %s", work, gs), fmt.Sprintf("%.2fx", ns/gns), "< 1x", ns < gns)
				}
			}
		}
	}
	for _, r := range probe {
		if r.lib == "sessionkit" {
			add(fmt.Sprintf("%s lost-update probe", r.store), fmt.Sprintf("%d lost of %d", r.lost, r.ok), "0", r.lost == 0 && r.ok > 0)
		}
	}
	return out
}

// probeRow is one line of the probe's counts.
type probeRow struct {
	store, lib                          string
	rounds, requests, ok, refused, lost int
}

func parseProbe(r io.Reader) ([]probeRow, error) {
	var rows []probeRow
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		if line == 1 || len(f) == 1 && f[0] == "" {
			continue // header, blank
		}
		if len(f) != 7 {
			return nil, fmt.Errorf("line %d: %d fields, want 7", line, len(f))
		}
		row := probeRow{store: f[0], lib: f[1]}
		for i, dst := range []*int{&row.rounds, &row.requests, &row.ok, &row.refused, &row.lost} {
			v, err := strconv.Atoi(f[2+i])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			*dst = v
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

func probeConcurrency(rows []probeRow) int {
	for _, r := range rows {
		if r.rounds > 0 {
			return r.requests / r.rounds
		}
	}
	return 0
}
