package benchmarks

import (
	"context"
	"net/http"
	"testing"
)

// TestWorkloads runs every benchmark's setup and checks with a handful of
// requests, so that CI (which only compiles the benchmarks) still proves
// that each library answers every workload correctly.
func TestWorkloads(t *testing.T) {
	const requests = 5
	for _, c := range contestants {
		t.Run(c.store+"/"+c.lib, func(t *testing.T) {
			if c.service != "" {
				requireService(t, c.service)
			}
			for _, wl := range workloads {
				if !wl.runs(c) {
					continue
				}
				t.Run(wl.name, func(t *testing.T) {
					l, err := c.open("t_" + c.lib + "_" + wl.name)
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					t.Cleanup(func() {
						if err := l.close(); err != nil {
							t.Errorf("close: %v", err)
						}
					})
					if wl.parallel {
						for range 2 {
							left := requests
							if err := parallelWorker(c, l, func() bool { left--; return left >= 0 }); err != nil {
								t.Fatal(err)
							}
						}
						return
					}
					st, err := newStage(c, l, wl)
					if err != nil {
						t.Fatal(err)
					}
					if err := st.first(); err != nil {
						t.Fatalf("first response: %v", err)
					}
					for i := range requests {
						if w := serve(context.Background(), st.h, st.req); w.Code != http.StatusOK {
							t.Fatalf("request %d: status %d %q", i+2, w.Code, w.Body)
						}
					}
					if st.after != nil {
						if err := st.after(requests); err != nil {
							t.Fatal(err)
						}
					}
				})
			}
		})
	}
}
