// Command httpchart turns the output of the end-to-end HTTP benchmarks
// (BenchmarkHTTP/store=S/work=W/lib=L lines, any number of runs), and of
// the in-process ones of the same run (BenchmarkSessions/...), into a
// Markdown summary of medians and ratios with the targets of issue 13, and
// an SVG chart of the HTTP medians.
//
// Usage:
//
//	httpchart -svg chart.svg bench.txt... > summary.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	svg := flag.String("svg", "", "write the chart to this `file`")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: httpchart [-svg chart.svg] bench.txt...")
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
	writeSummary(os.Stdout, res)
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			fatal(err)
		}
		writeSVG(f, res)
		if err := f.Close(); err != nil {
			fatal(err)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "httpchart:", err)
	os.Exit(1)
}

// A key names one benchmark: family ("HTTP" or "Sessions"), store, work,
// lib.
type key struct{ family, store, work, lib string }

// A sample is one measurement and the process that made it.
type sample struct {
	ns   float64
	proc int
}

// results holds every measurement per benchmark.
type results map[key][]sample

// parse reads go test -bench output. A line "# process" starts the output
// of a new process (run-http.sh writes one before each), so that a
// library can be paired with the baseline measured in the same process.
func (r results) parse(in io.Reader) error {
	sc := bufio.NewScanner(in)
	proc := len(r) * 1000 // distinct across files
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "# process") {
			proc++
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "ns/op" {
			continue
		}
		name, ok := strings.CutPrefix(f[0], "Benchmark")
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		parts := strings.Split(name, "/")
		if len(parts) != 4 {
			continue
		}
		k := key{family: parts[0]}
		for _, p := range parts[1:] {
			name, val, _ := strings.Cut(p, "=")
			switch name {
			case "store":
				k.store = val
			case "work":
				k.work = val
			case "lib":
				k.lib = val
			}
		}
		ns, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return fmt.Errorf("%q: %w", sc.Text(), err)
		}
		r[k] = append(r[k], sample{ns, proc})
	}
	return sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// paired returns the median over processes of k's time divided by den's
// in the same process (for the baseline: of the same family and work,
// whatever the store), and how many processes had both; 0, 0 without
// markers or pairs.
func (r results) paired(k, den key) (float64, int) {
	base := map[int]float64{}
	for kk, vv := range r {
		if kk == den || den.lib == "baseline" && kk.family == den.family && kk.work == den.work && kk.lib == "baseline" {
			for _, s := range vv {
				base[s.proc] = s.ns
			}
		}
	}
	var ratios []float64
	for _, s := range r[k] {
		if b, ok := base[s.proc]; ok && b > 0 {
			ratios = append(ratios, s.ns/b)
		}
	}
	return median(ratios), len(ratios)
}

// median returns the median of k's runs and how many there were; 0, 0 when
// there are none. For the baseline, which runs beside every store, the
// store is ignored.
func (r results) median(k key) (float64, int) {
	var v []float64
	for kk, vv := range r {
		if kk == k || (k.lib == "baseline" && kk.family == k.family && kk.work == k.work && kk.lib == "baseline") {
			for _, s := range vv {
				v = append(v, s.ns)
			}
		}
	}
	return median(v), len(v)
}

var (
	works     = []string{"untouched-cookie", "read", "incr"}
	storeRank = []string{"none", "memory", "postgres-near", "redis", "postgres", "mysql", "cookie", "filesystem"}
	libRank   = []string{"baseline", "sessionkit", "scs", "gorilla", "floor"}
)

func rank(list []string, s string) int {
	if i := slices.Index(list, s); i >= 0 {
		return i
	}
	return len(list)
}

// rows returns the HTTP benchmarks of work w in display order, the
// baseline first.
func (r results) rows(w string) []key {
	var ks []key
	seen := map[key]bool{}
	for k := range r {
		if k.family != "HTTP" || k.work != w {
			continue
		}
		if k.lib == "baseline" {
			k.store = "none"
		}
		if !seen[k] {
			seen[k] = true
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, func(a, b key) int {
		if d := rank(storeRank, a.store) - rank(storeRank, b.store); d != 0 {
			return d
		}
		if d := rank(libRank, a.lib) - rank(libRank, b.lib); d != 0 {
			return d
		}
		return strings.Compare(a.store+a.lib, b.store+b.lib)
	})
	return ks
}

func label(k key) string {
	if k.lib == "baseline" {
		return "baseline (bare handler)"
	}
	return k.lib + " on " + k.store
}

func us(ns float64) string { return strconv.FormatFloat(ns/1000, 'f', 1, 64) }

func pairedStr(r results, k key) string {
	if k.lib == "baseline" {
		return "-"
	}
	if p, n := r.paired(k, key{k.family, "none", k.work, "baseline"}); n > 0 {
		return fmt.Sprintf("%.3fx", p)
	}
	return "-"
}

func writeSummary(w io.Writer, r results) {
	fmt.Fprintln(w, "## End to end over HTTP (BenchmarkHTTP)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Medians per request (µs) over loopback TCP with a keep-alive client; *vs baseline*: ratio of medians to the bare handler of the same workload; *paired*: median over processes of the ratio to the bare handler measured in the same process, seconds apart; in-process medians (BenchmarkSessions, same run, same workload) beside.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| work | library on store | runs | HTTP µs | vs baseline | paired | in-process µs | in-process paired |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, wk := range works {
		base, _ := r.median(key{"HTTP", "none", wk, "baseline"})
		for _, k := range r.rows(wk) {
			m, n := r.median(k)
			ratio := "-"
			if base > 0 {
				ratio = fmt.Sprintf("%.3fx", m/base)
			}
			in := "-"
			ik := key{"Sessions", k.store, k.work, k.lib}
			if mi, ni := r.median(ik); ni > 0 {
				in = us(mi)
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", wk, label(k), n, us(m), ratio, pairedStr(r, k), in, pairedStr(r, ik))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Targets (issue 13, ratios of medians)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | verdict |")
	fmt.Fprintln(w, "|---|---:|---|")
	target := func(what string, num, den key, limit float64) {
		a, na := r.median(num)
		b, nb := r.median(den)
		if na == 0 || nb == 0 {
			fmt.Fprintf(w, "| %s | not measured | - |\n", what)
			return
		}
		ratio, how := a/b, "ratio of medians"
		if p, n := r.paired(num, den); n > 0 {
			ratio, how = p, fmt.Sprintf("paired, %d processes", n)
		}
		verdict := "met"
		if ratio > limit {
			verdict = "missed"
		}
		fmt.Fprintf(w, "| %s (at most %.2fx) | %.3fx (%s) | %s |\n", what, limit, ratio, how, verdict)
	}
	target("HTTP: sessionkit untouched on memory vs bare handler",
		key{"HTTP", "memory", "untouched-cookie", "sessionkit"}, key{"HTTP", "none", "untouched-cookie", "baseline"}, 1.03)
	target("HTTP: sessionkit read on memory vs bare handler",
		key{"HTTP", "memory", "read", "sessionkit"}, key{"HTTP", "none", "read", "baseline"}, 1.15)
	target("HTTP: sessionkit read on postgres-near vs on memory",
		key{"HTTP", "postgres-near", "read", "sessionkit"}, key{"HTTP", "memory", "read", "sessionkit"}, 2)
	target("in process: sessionkit read on postgres-near vs on memory",
		key{"Sessions", "postgres-near", "read", "sessionkit"}, key{"Sessions", "memory", "read", "sessionkit"}, 2)
	target("in process: sessionkit read on memory vs the floor",
		key{"Sessions", "memory", "read", "sessionkit"}, key{"Sessions", "memory", "read", "floor"}, 2)
	target("in process: sessionkit incr on memory vs the floor",
		key{"Sessions", "memory", "incr", "sessionkit"}, key{"Sessions", "memory", "incr", "floor"}, 2)
}

// writeSVG draws one panel per workload: a horizontal bar per library and
// store, its length the HTTP median, the baseline's median as a dashed
// line across the panel.
func writeSVG(w io.Writer, r results) {
	const (
		panelW, labelW, barH, gap, top, left = 330.0, 170.0, 16.0, 4.0, 46.0, 10.0
	)
	var maxRows int
	maxNS, minNS := 0.0, math.Inf(1)
	for _, wk := range works {
		rows := r.rows(wk)
		maxRows = max(maxRows, len(rows))
		for _, k := range rows {
			m, _ := r.median(k)
			maxNS, minNS = max(maxNS, m), min(minNS, m)
		}
	}
	if maxNS <= 0 || minNS <= 0 || math.IsInf(minNS, 1) {
		maxNS, minNS = 2, 1
	}
	// A log scale: times span four orders of magnitude. The axis starts
	// at half the smallest median, so that every bar is visible.
	lo, hi := math.Log(minNS/2), math.Log(maxNS)
	width := left + float64(len(works))*(labelW+panelW+20)
	height := top + float64(maxRows)*(barH+gap) + 40
	colors := map[string]string{"baseline": "#888888", "sessionkit": "#1f77b4", "scs": "#ff7f0e", "gorilla": "#2ca02c", "floor": "#9467bd"}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%.0f" y="16" font-size="14" font-weight="bold">Median time per HTTP request over loopback, keep-alive client (µs, log scale; generated by cmd/httpchart)</text>`+"\n", left)
	for i, wk := range works {
		x0 := left + float64(i)*(labelW+panelW+20)
		fmt.Fprintf(w, `<text x="%.1f" y="36" font-size="13" font-weight="bold">%s</text>`+"\n", x0, html.EscapeString(wk))
		scale := func(ns float64) float64 { return (math.Log(ns) - lo) / (hi - lo) * (panelW - 60) }
		rows := r.rows(wk)
		for j, k := range rows {
			m, _ := r.median(k)
			y := top + float64(j)*(barH+gap)
			c := colors[k.lib]
			if c == "" {
				c = "#444444"
			}
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0+labelW-4, y+barH-4, html.EscapeString(label(k)))
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x0+labelW, y, scale(m), barH, c)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f">%s</text>`+"\n", x0+labelW+scale(m)+3, y+barH-4, us(m))
		}
		if base, n := r.median(key{"HTTP", "none", wk, "baseline"}); n > 0 {
			bx := x0 + labelW + scale(base)
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-dasharray="3,3"/>`+"\n",
				bx, top-4, bx, top+float64(len(rows))*(barH+gap))
		}
	}
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" fill="#555">Dashed line: the bare handler (baseline) of the same workload. Bars: medians over the rounds of one run.</text>`+"\n",
		left, height-12)
	fmt.Fprintln(w, "</svg>")
}
