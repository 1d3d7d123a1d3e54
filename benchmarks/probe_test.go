package benchmarks

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	probeRounds = flag.Int("probe.rounds", 2, "rounds of the lost-update probe")
	probeOut    = flag.String("probe.out", "", "write the lost-update counts to this file (tab-separated)")
)

const (
	// probeConcurrency increments of one session's counter race in each
	// round.
	probeConcurrency = 50
	// probePause is how long each request holds the session between
	// reading the counter and writing it back, so that the requests overlap.
	probePause = 20 * time.Millisecond
)

// probeResult counts, over every round, the increments that were answered
// 200 (ok), answered with an error (refused: the client knows), and lost:
// answered 200 but missing from the final counter.
type probeResult struct {
	store, lib            string
	rounds, requests      int
	ok, refused, lost     int
	firstRefusal, elapsed string
}

// TestLostUpdates is the lost-update probe: in each round a client creates
// a session (counter 1), then sends probeConcurrency increments of it at
// once over real HTTPS (httptest TLS server, the client's cookie jar), and
// reads the counter back. sessionkit, whose Update is a versioned
// compare-and-set, must lose none; the others are reported.
//
// go test -run TestLostUpdates -v -args -probe.rounds=5 -probe.out=FILE
// writes the counts for run.sh.
func TestLostUpdates(t *testing.T) {
	var (
		mu      sync.Mutex
		results []probeResult
	)
	for _, c := range contestants {
		if c.lib == "baseline" {
			continue
		}
		t.Run(c.store+"/"+c.lib, func(t *testing.T) {
			if c.service != "" {
				requireService(t, c.service)
			}
			l, err := c.open("probe_" + c.lib)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer func() {
				if err := l.close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			res := probe(t, l, *probeRounds)
			res.store, res.lib = c.store, c.lib
			t.Logf("%d concurrent increments x %d rounds: %d answered 200, %d refused, %d lost (%.1f%% of the answered), %s",
				probeConcurrency, res.rounds, res.ok, res.refused, res.lost, pct(res.lost, res.ok), res.elapsed)
			if res.firstRefusal != "" {
				t.Logf("first refusal: %s", res.firstRefusal)
			}
			if c.lib == "sessionkit" && c.store != "cookie" { // client-side: last-writer-wins by design
				if res.lost != 0 {
					t.Errorf("sessionkit lost %d of %d answered increments", res.lost, res.ok)
				}
				if res.ok == 0 {
					t.Errorf("sessionkit answered no increment: %s", res.firstRefusal)
				}
			}
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
		})
	}
	if *probeOut != "" {
		var sb strings.Builder
		sb.WriteString("store\tlib\trounds\trequests\tok\trefused\tlost\n")
		for _, r := range results {
			fmt.Fprintf(&sb, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", r.store, r.lib, r.rounds, r.requests, r.ok, r.refused, r.lost)
		}
		if err := os.WriteFile(*probeOut, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// probe runs rounds rounds of the lost-update probe against l.
func probe(t *testing.T, l lib, rounds int) probeResult {
	mux := http.NewServeMux()
	mux.Handle("/incr", l.middleware(incrHandler(l, probePause)))
	mux.Handle("/read", l.middleware(readHandler(l)))
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = probeConcurrency

	start := time.Now()
	var res probeResult
	for round := range rounds {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: tr, Jar: jar, Timeout: time.Minute}
		get := func(path string) (int, string, error) {
			resp, err := client.Get(srv.URL + path)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return resp.StatusCode, strings.TrimSpace(string(b)), err
		}
		if code, body, err := get("/incr"); err != nil || code != http.StatusOK || body != "1" {
			t.Fatalf("round %d: creating the session: %d %q %v", round, code, body, err)
		}

		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			ok    int
			fire  = make(chan struct{})
			first string
		)
		for range probeConcurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-fire
				code, body, err := get("/incr")
				mu.Lock()
				defer mu.Unlock()
				if err == nil && code == http.StatusOK {
					ok++
					return
				}
				res.refused++
				if first == "" {
					first = fmt.Sprintf("%d %q %v", code, body, err)
				}
			}()
		}
		close(fire)
		wg.Wait()

		code, body, err := get("/read")
		if err != nil || code != http.StatusOK {
			t.Fatalf("round %d: reading the counter: %d %q %v", round, code, body, err)
		}
		final, err := strconv.Atoi(body)
		if err != nil {
			t.Fatalf("round %d: counter %q: %v", round, body, err)
		}
		res.rounds++
		res.requests += probeConcurrency
		res.ok += ok
		res.lost += ok - (final - 1)
		if res.firstRefusal == "" {
			res.firstRefusal = first
		}
	}
	res.elapsed = time.Since(start).Round(time.Millisecond).String()
	return res
}
