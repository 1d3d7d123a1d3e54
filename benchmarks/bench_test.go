package benchmarks

import (
	"context"
	"flag"
	"net/http"
	"sync"
	"testing"
)

// reverse runs the stores, and the libraries of each workload, in reverse
// order (the baseline last instead of first); run.sh
// alternates it between rounds, so that no library always runs first.
var reverse = flag.Bool("bench.reverse", false, "run the libraries of each workload in reverse order")

// stores is the order of the store axis; "none" holds the baseline.
var stores = []string{"none", "memory", "redis", "postgres", "mysql", "cookie", "filesystem"}

// BenchmarkSessions runs every workload on every library and store:
//
//	BenchmarkSessions/store=S/work=W/lib=L
//
// Requests are served in process through ServeHTTP; the request template
// is built, and the first response checked, before the timer starts.
// run.sh runs one workload of one store (with the baseline) per process,
// round-robin, so that the libraries compared are measured within seconds
// of each other.
func BenchmarkSessions(b *testing.B) { eachLeaf(b, workloads, benchContestant) }

// eachLeaf runs leaf for every contestant that runs each of wls, on every
// store, as store=S/work=W; the stores and the contestants in reverse
// order under -bench.reverse.
func eachLeaf(b *testing.B, wls []workload, leaf func(b *testing.B, c contestant, wl workload)) {
	for i := range stores {
		store := stores[i]
		if *reverse {
			store = stores[len(stores)-1-i]
		}
		b.Run("store="+store, func(b *testing.B) {
			for _, wl := range wls {
				b.Run("work="+wl.name, func(b *testing.B) {
					for i := range contestants {
						c := contestants[i]
						if *reverse {
							c = contestants[len(contestants)-1-i]
						}
						if c.store != store || !wl.runs(c) {
							continue
						}
						leaf(b, c, wl)
					}
				})
			}
		})
	}
}

// benchContestant runs one leaf benchmark. Its lib is opened once and
// closed when the workload's benchmarks end (b.RunParallel calls the leaf
// several times).
func benchContestant(parent *testing.B, c contestant, wl workload) {
	runLeaf(parent, c, c.lib+"_"+wl.name, func(b *testing.B, l lib) {
		if wl.parallel {
			benchParallel(b, c, l)
			return
		}
		st, err := newStage(c, l, wl)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.first(); err != nil {
			b.Fatalf("first response: %v", err)
		}
		h, req := st.h, st.req
		conn, closeConn := context.WithCancel(context.Background())
		defer closeConn()
		n, bad := 0, 0
		b.ReportAllocs()
		for b.Loop() {
			if serve(conn, h, req).Code != http.StatusOK {
				bad++
			}
			n++
		}
		b.StopTimer()
		if bad > 0 {
			b.Fatalf("%d of %d responses were not 200", bad, n)
		}
		if st.after != nil {
			if err := st.after(n); err != nil {
				b.Fatalf("after %d requests: %v", n, err)
			}
		}
	})
}

// runLeaf runs body as parent's leaf "lib=<c.lib>", with the lib opened
// once (purpose names its data) and closed when parent's benchmarks end:
// b.RunParallel and the b.Loop ramp-up call a leaf several times.
func runLeaf(parent *testing.B, c contestant, purpose string, body func(b *testing.B, l lib)) {
	var (
		l       lib
		openErr error
		once    sync.Once
	)
	parent.Cleanup(func() {
		if l != nil {
			if err := l.close(); err != nil {
				parent.Errorf("close %s/%s: %v", c.store, c.lib, err)
			}
		}
	})
	parent.Run("lib="+c.lib, func(b *testing.B) {
		if c.service != "" {
			requireService(b, c.service)
		}
		once.Do(func() { l, openErr = c.open(purpose) })
		if openErr != nil {
			b.Fatalf("open %s/%s: %v", c.store, c.lib, openErr)
		}
		body(b, l)
	})
}

func benchParallel(b *testing.B, c contestant, l lib) {
	var (
		mu   sync.Mutex
		errs []error
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		if err := parallelWorker(c, l, pb.Next); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	b.StopTimer()
	if len(errs) > 0 {
		b.Fatal(errs[0])
	}
}
