package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	_ "modernc.org/sqlite"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/redisstore"
	"github.com/sessionkit/sessions/sqlitestore"
)

// The soak: steady mixed traffic (create, increment, read, renew, logout,
// abandon) on memory, SQLite, PostgreSQL and Redis at once, with an idle
// timeout short enough that abandoned sessions expire and are swept during
// the run. The process's heap, RSS, goroutines and open sockets are
// sampled; the slope of a least-squares line through them (after a
// warm-up) must stay flat, and latency percentiles are compared between the
// first and the last fifth. CI runs 30 s; the long form:
//
//	cd reliability && SESSIONS_SOAK=30m go test -run TestSoak -v -timeout 40m .
//
// (without -race, which inflates memory and latency; any duration works).

func soakDuration() (time.Duration, bool) {
	if v := os.Getenv("SESSIONS_SOAK"); v != "" && v != "0" {
		d, err := time.ParseDuration(v)
		if err == nil && d > 0 {
			return d, true
		}
	}
	return 30 * time.Second, false
}

type sample struct {
	at                  time.Duration
	heap, rss           float64 // bytes
	goroutines, sockets float64
}

func takeSample(at time.Duration) sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{at: at, heap: float64(ms.HeapAlloc), rss: rss(), goroutines: float64(runtime.NumGoroutine()), sockets: sockets()}
}

// rss reads the resident set size from /proc/self/statm (0 elsewhere).
func rss() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseFloat(f[1], 64)
	return pages * float64(os.Getpagesize())
}

// sockets counts the process's open socket descriptors: client and server
// connections of the load, the databases' pools.
func sockets() float64 {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return float64(n)
}

// slope fits y = a + b·x by least squares and returns b (per second of x).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

type soakTarget struct {
	name string
	app  *app
	// slots of simulated clients: each holds its current cookie
	slots []atomic.Pointer[http.Cookie]
	busy  []atomic.Bool  // a request of the slot's client is in flight
	done  []atomic.Int64 // when the slot's last request completed (Unix ns)
}

// soakConns is the number of workers and connections of each store's load
// generator: more than the rate needs (a request takes milliseconds), and
// fewer than the client slots, so that a free slot always exists.
const soakConns = 16

func TestSoak(t *testing.T) {
	dur, long := soakDuration()
	// Each client slot comes back every slots/rate seconds, well within
	// the idle timeout: only abandoned sessions expire.
	idle, ratePer, slots := 2*time.Second, 40, 40
	if long {
		idle, ratePer, slots = 10*time.Second, 100, 200
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A generous store timeout: the soak measures drift, not outages.
	opts := &sessions.Options{IdleTimeout: idle, StoreTimeout: 5 * time.Second}

	var targets []*soakTarget
	add := func(name string, store sessions.Store) {
		a := newApp(t, store, opts)
		if _, ok := store.(sessions.ExpiredDeleter); ok {
			go func() { _ = a.m.Sweep(ctx, time.Second) }()
		}
		targets = append(targets, &soakTarget{name: name, app: a, slots: make([]atomic.Pointer[http.Cookie], slots), busy: make([]atomic.Bool, slots), done: make([]atomic.Int64, slots)})
	}
	mem, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	add("memory", mem)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "soak.db")+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	lite, err := sqlitestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lite.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	add("sqlite", lite)

	// Fixed-size pools, opened before the run: the sockets count then
	// shows leaks, not pools warming up.
	pg, _ := pgStore(t, strings.Replace(pgDSN(localPG()), "dbname=postgres", "dbname=test", 1)+
		" pool_max_conns=8 pool_min_conns=8", nil)
	add("postgres", pg)

	rc := redis.NewClient(&redis.Options{Addr: localRedis(), ContextTimeoutEnabled: true, PoolSize: 8, MinIdleConns: 8})
	t.Cleanup(func() { rc.Close() })
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	if err := rc.Ping(pctx).Err(); err != nil {
		pcancel()
		unavailable(t, "Redis unreachable at %s: %v", localRedis(), err)
	}
	pcancel()
	rs, err := redisstore.New(rc, &redisstore.Options{Prefix: uniqueName("soak") + ":"})
	if err != nil {
		t.Fatal(err)
	}
	add("redis", rs)

	// The load: one vegeta attack per store; a target picks a client slot
	// and an action by a sequence number (70% increment, 15% read, 5%
	// renew, 5% logout, 5% abandon: the slot forgets its cookie and the
	// session expires after the idle timeout).
	// Latencies go into fixed-size histograms (the first and the last
	// fifth), so that the test's own bookkeeping does not grow the heap
	// it measures.
	// A fixed pool of workers and connections per store: the load
	// generator must not grow the figures it measures. A warm-up of slow
	// requests (/pause holds each for 100 ms, without touching the
	// session) opens every connection before the run, so that a busier
	// machine later in the run does not show up as new sockets and
	// goroutines.
	// (An attacker serves one attack; the warm-up's and the run's share
	// their client and its connections.)
	clients := map[string]*http.Client{}
	newAttacker := func(name string) *vegeta.Attacker {
		return vegeta.NewAttacker(vegeta.Client(clients[name]), vegeta.Workers(soakConns), vegeta.MaxWorkers(soakConns))
	}
	var warmup sync.WaitGroup
	for _, tg := range targets {
		tr := &http.Transport{MaxIdleConnsPerHost: soakConns, MaxConnsPerHost: soakConns}
		t.Cleanup(tr.CloseIdleConnections)
		clients[tg.name] = &http.Client{Timeout: 10 * time.Second, Transport: tr}
		atk := newAttacker(tg.name)
		warmup.Add(1)
		go func() {
			defer warmup.Done()
			pause := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: tg.app.srv.URL + "/pause"})
			for r := range atk.Attack(pause, vegeta.Rate{Freq: 20 * soakConns, Per: time.Second}, 500*time.Millisecond, "warm-up") {
				if r.Code != 200 {
					t.Errorf("soak %s: warm-up: %d %s", tg.name, r.Code, r.Error)
				}
			}
		}()
	}
	warmup.Wait()

	var (
		mu       sync.Mutex
		firstH   = map[string]*histogram{}
		lastH    = map[string]*histogram{}
		failures = map[string]int{}
		reasons  = map[string]map[string]int{} // store → status and error text → count
		requests atomic.Int64
		start    = time.Now()
		wg       sync.WaitGroup
	)
	for _, tg := range targets {
		firstH[tg.name], lastH[tg.name] = &histogram{}, &histogram{}
	}
	for _, tg := range targets {
		var seq atomic.Uint64
		targeter := func(v *vegeta.Target) error {
			n := seq.Add(1)
			// A client sends one request at a time: take the slot, or the
			// next free one. (Concurrent requests of one client race, as
			// they may: a renewal or a logout ends the session an
			// increment is using, which the soak would count as a
			// failure. The linearizability tests cover those races.)
			slot := int(n % uint64(len(tg.slots)))
			for range tg.slots {
				if tg.busy[slot].CompareAndSwap(false, true) {
					break
				}
				slot = (slot + 1) % len(tg.slots)
			}
			action := "inc"
			// Successive visits of a slot cycle through the 20 actions
			// (the slot count is a multiple of 20), and so do successive
			// requests: a short run gets the whole mix too.
			switch r := (n + n/uint64(len(tg.slots))) % 20; {
			case r < 3:
				action = "get"
			case r == 3:
				action = "renew"
			case r == 4:
				action = "logout"
			case r == 5:
				tg.slots[slot].Store(nil) // abandon
			}
			// gap: how long the client was away since its last request
			// completed (ms), for the failure report.
			gap := int64(-1)
			if d := tg.done[slot].Load(); d != 0 {
				gap = time.Since(time.Unix(0, d)).Milliseconds()
			}
			v.Method = http.MethodGet
			v.URL = fmt.Sprintf("%s/%s?slot=%d&gap=%d", tg.app.srv.URL, action, slot, gap)
			v.Header = http.Header{}
			if c := tg.slots[slot].Load(); c != nil {
				v.Header.Set("Cookie", c.Name+"="+c.Value)
			}
			return nil
		}
		atk := newAttacker(tg.name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range atk.Attack(targeter, vegeta.Rate{Freq: ratePer, Per: time.Second}, dur, tg.name) {
				requests.Add(1)
				u, _ := url.Parse(r.URL)
				slot, _ := strconv.Atoi(u.Query().Get("slot"))
				if r.Code == 200 {
					for _, sc := range (&http.Response{Header: r.Headers}).Cookies() {
						if sc.MaxAge < 0 || sc.Value == "" {
							tg.slots[slot].Store(nil)
						} else {
							tg.slots[slot].Store(sc)
						}
					}
					if strings.HasPrefix(u.Path, "/logout") {
						tg.slots[slot].Store(nil)
					}
				}
				tg.done[slot].Store(time.Now().UnixNano())
				tg.busy[slot].Store(false)
				mu.Lock()
				if r.Code != 200 {
					if failures[tg.name] < 20 {
						t.Logf("soak %s: failed request at %v: slot %s, client away %s ms before it, latency %v, %s",
							tg.name, r.Timestamp.Sub(start).Round(time.Millisecond), u.Query().Get("slot"), u.Query().Get("gap"), r.Latency.Round(time.Millisecond), failureReason(r))
					}
					failures[tg.name]++
					if reasons[tg.name] == nil {
						reasons[tg.name] = map[string]int{}
					}
					reasons[tg.name][failureReason(r)]++
				}
				switch at := r.Timestamp.Sub(start); {
				case at < dur/5:
					firstH[tg.name].add(r.Latency)
				case at >= dur-dur/5:
					lastH[tg.name].add(r.Latency)
				}
				mu.Unlock()
			}
		}()
	}

	every := dur / 40
	var samples []sample
	tick := time.NewTicker(every)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
loop:
	for {
		select {
		case <-tick.C:
			samples = append(samples, takeSample(time.Since(start)))
		case <-done:
			break loop
		}
	}
	tick.Stop()

	// Fits over the samples after the warm-up: the first fifth in the
	// long form, the first half in the short one (the load generator's
	// connections and the pools open as the machine's load makes
	// requests overlap, which a short run cannot tell from a leak).
	warm := samples[len(samples)/5:]
	if !long {
		warm = samples[len(samples)/2:]
	}
	xs := make([]float64, len(warm))
	col := func(f func(sample) float64) []float64 {
		ys := make([]float64, len(warm))
		for i, s := range warm {
			xs[i] = s.at.Seconds()
			ys[i] = f(s)
		}
		return ys
	}
	mean := func(ys []float64) float64 {
		var s float64
		for _, y := range ys {
			s += y
		}
		return s / float64(len(ys))
	}
	span := (warm[len(warm)-1].at - warm[0].at).Seconds()
	type fit struct {
		name          string
		ys            []float64
		unit          float64
		unitName      string
		allowedGrowth float64 // over the fitted span, in units
	}
	fits := []fit{
		{"heap", col(func(s sample) float64 { return s.heap }), 1 << 20, "MiB", 0},
		{"rss", col(func(s sample) float64 { return s.rss }), 1 << 20, "MiB", 0},
		{"goroutines", col(func(s sample) float64 { return s.goroutines }), 1, "", 0},
		{"sockets", col(func(s sample) float64 { return s.sockets }), 1, "", 0},
	}
	for _, f := range fits {
		b := slope(xs, f.ys)
		m := mean(f.ys)
		growth := b * span
		t.Logf("soak %s: mean %.1f%s, slope %+.3f%s/min, fitted growth over %.0fs %+.1f%s (%+.1f%% of the mean)",
			f.name, m/f.unit, f.unitName, b*60/f.unit, f.unitName, span, growth/f.unit, f.unitName, 100*growth/max(m, 1))
		// Generous CI bound: the fitted growth over the run stays under a
		// quarter of the mean (and a floor for small counts).
		limit := max(0.25*m, map[string]float64{"heap": 8 << 20, "rss": 32 << 20, "goroutines": 100, "sockets": 100}[f.name])
		if f.name == "rss" && raceEnabled {
			continue
		}
		if growth > limit {
			t.Errorf("soak %s grows: %+.1f%s over %.0fs (limit %.1f%s)", f.name, growth/f.unit, f.unitName, span, limit/f.unit, f.unitName)
		}
	}
	for _, tg := range targets {
		first, last := firstH[tg.name], lastH[tg.name]
		t.Logf("soak %s: %d failed; latency first fifth p50 %v p99 %v p99.9 %v; last fifth p50 %v p99 %v p99.9 %v",
			tg.name, failures[tg.name],
			first.quantile(.5), first.quantile(.99), first.quantile(.999),
			last.quantile(.5), last.quantile(.99), last.quantile(.999))
		tg.app.obs.mu.Lock()
		calls, failedCalls, classes := tg.app.obs.calls, tg.app.obs.failed, tg.app.obs.errClasses
		tg.app.obs.mu.Unlock()
		t.Logf("soak %s: %d store calls, %d failed; failed requests by status and cause: %v; failed store calls by error: %v",
			tg.name, calls, failedCalls, reasons[tg.name], classes)
		if failures[tg.name] > 0 {
			t.Errorf("soak %s: %d requests failed: %v", tg.name, failures[tg.name], reasons[tg.name])
		}
	}
	// Expired sessions were swept: the SQL tables hold no row expired for
	// longer than a few sweep intervals.
	var stale int
	cutoff := time.Now().Add(-5 * time.Second).UnixMilli()
	if err := db.QueryRow(`SELECT count(*) FROM "sessions" WHERE expiry < ?`, cutoff).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	var total int
	_ = db.QueryRow(`SELECT count(*) FROM "sessions"`).Scan(&total)
	t.Logf("soak sqlite: %d rows at the end, %d expired for over 5 s", total, stale)
	if stale > 0 {
		t.Errorf("sqlite: %d rows expired for over 5 s were not swept", stale)
	}
	// At most one live session per client slot, plus the few that expired
	// since the last sweep: abandoned sessions and renewals' retired
	// records must not pile up.
	if total > 2*slots {
		t.Errorf("sqlite: %d rows at the end for %d client slots: expired sessions pile up", total, slots)
	}
	t.Logf("soak: %d requests in %v, %d samples", requests.Load(), dur, len(samples))
}

// failureReason names why a soak request failed: its action, status and the
// first line of the body (the handlers answer 503 "session store
// unavailable"; the Manager's ErrorHandler its own text), or the load
// generator's error when there was no response.
func failureReason(r *vegeta.Result) string {
	action := "?"
	if u, err := url.Parse(r.URL); err == nil {
		action = u.Path
	}
	return action + ": " + failureCause(r)
}

func failureCause(r *vegeta.Result) string {
	if r.Code == 0 {
		e := r.Error
		if i := strings.LastIndex(e, ": "); i >= 0 {
			e = e[i+2:]
		}
		return "no response: " + e
	}
	body := strings.TrimSpace(string(r.Body))
	if i := strings.IndexByte(body, '\n'); i >= 0 {
		body = body[:i]
	}
	if len(body) > 100 {
		body = body[:100] + "…"
	}
	return fmt.Sprintf("%d %s", r.Code, body)
}

func localRedis() string {
	if v := os.Getenv("SESSIONS_REDIS_ADDR"); v != "" {
		return v
	}
	return "127.0.0.1:6379"
}

// histogram counts latencies in logarithmic buckets 2% apart from 1 µs to
// about 10 minutes: fixed memory, percentiles within 2%.
type histogram struct {
	counts [1100]uint64
	n      uint64
}

const histBase = 1.02

func (h *histogram) add(d time.Duration) {
	us := max(float64(d)/float64(time.Microsecond), 1)
	i := min(int(math.Log(us)/math.Log(histBase)), len(h.counts)-1)
	h.counts[i]++
	h.n++
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			// The bucket's upper edge.
			return time.Duration(math.Pow(histBase, float64(i+1)) * float64(time.Microsecond)).Round(time.Microsecond)
		}
	}
	return 0
}
