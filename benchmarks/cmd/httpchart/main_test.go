package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

const sampleOutput = `# process HTTP memory round 0
BenchmarkHTTP/store=none/work=read/lib=baseline-2   1000  100000 ns/op  5000 B/op  60 allocs/op
BenchmarkHTTP/store=memory/work=read/lib=sessionkit-2   1000  110000 ns/op  7000 B/op  76 allocs/op
# process HTTP memory round 1
BenchmarkHTTP/store=memory/work=read/lib=sessionkit-2   1000  300000 ns/op  7000 B/op  76 allocs/op
BenchmarkHTTP/store=none/work=read/lib=baseline-2   1000  250000 ns/op  5000 B/op  60 allocs/op
# process HTTP postgres-near round 0
BenchmarkHTTP/store=none/work=read/lib=baseline-2   1000  90000 ns/op  5000 B/op  60 allocs/op
BenchmarkHTTP/store=postgres-near/work=read/lib=sessionkit-2   1000  120000 ns/op  7000 B/op  76 allocs/op
BenchmarkSessions/store=memory/work=read/lib=sessionkit-2   1000  2000 ns/op  7000 B/op  23 allocs/op
PASS
`

func TestParsePaired(t *testing.T) {
	r := results{}
	if err := r.parse(strings.NewReader(sampleOutput)); err != nil {
		t.Fatal(err)
	}
	sk := key{"HTTP", "memory", "read", "sessionkit"}
	if m, n := r.median(sk); m != 205000 || n != 2 {
		t.Errorf("median %v over %d, want 205000 over 2", m, n)
	}
	// The baseline's median pools every store's processes.
	if m, n := r.median(key{"HTTP", "none", "read", "baseline"}); m != 100000 || n != 3 {
		t.Errorf("baseline median %v over %d, want 100000 over 3", m, n)
	}
	// Paired: 1.1 and 1.2 in the two processes of the memory store.
	if p, n := r.paired(sk, key{"HTTP", "none", "read", "baseline"}); n != 2 || p < 1.149 || p > 1.151 {
		t.Errorf("paired %v over %d, want 1.15 over 2", p, n)
	}
	// Stores measured in different processes do not pair.
	if _, n := r.paired(key{"HTTP", "postgres-near", "read", "sessionkit"}, sk); n != 0 {
		t.Errorf("postgres-near paired with memory over %d processes, want none", n)
	}
	if m, n := r.median(key{"Sessions", "memory", "read", "sessionkit"}); m != 2000 || n != 1 {
		t.Errorf("in-process median %v over %d", m, n)
	}
}

func TestOutputs(t *testing.T) {
	r := results{}
	if err := r.parse(strings.NewReader(sampleOutput)); err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	writeSummary(&md, r)
	for _, want := range []string{"| read | sessionkit on memory | 2 | 205.0 | 2.050x | 1.150x | 2.0 |", "read on postgres-near vs on memory"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, md.String())
		}
	}
	var svg bytes.Buffer
	writeSVG(&svg, r)
	d := xml.NewDecoder(&svg)
	rects := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if rects != 4 { // the background and three bars
		t.Errorf("%d rects, want 4", rects)
	}
}
