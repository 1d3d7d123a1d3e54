package reliability

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/sessionkit/sessions"
)

// storeTimeout is the Manager's StoreTimeout (and each store's own
// timeout) in the drills.
const storeTimeout = time.Second

// callSlack is how long past storeTimeout a failing store call may take
// to return, not counting the time the process was starved of CPU. A
// store call that hits its deadline still has to be scheduled: the
// deadline's timer fires, pgx's context watcher (or go-redis, or the
// MySQL driver) sets a past deadline on the socket, the netpoller wakes
// the blocked read, and the error travels back up. On an idle machine
// that takes a few milliseconds; one second covers ordinary scheduling
// delays under -race on a shared two-core machine. Whole stalls of the
// process (a loaded machine, CPU throttling) are measured by the
// scheduler probe and subtracted: they are the machine's, not the
// store's, and the drills report them. A driver phase that blocked past
// its deadline while the process ran would show as unexplained overrun
// and fail the drill.
const callSlack = time.Second

// callObserver measures the Manager's store calls. Each call's context
// carries a trace (see fault_trace_test.go); the slowest failed call's is
// kept, with its error, for the report.
type callObserver struct {
	mu            sync.Mutex
	calls, failed int
	maxFailed     time.Duration
	failedDur     [4]int // failed calls ending within timeout+100 ms, +500 ms, +1 s, later
	slowestTrace  *callTrace
	slowestErr    error
	slowestOp     sessions.StoreOp
	overruns      []overrun
	errClasses    map[string]int
}

var failedDurBounds = [3]time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second}

func (o *callObserver) StoreCall(ctx context.Context, call sessions.StoreCall) (context.Context, func(sessions.StoreResult)) {
	tr := &callTrace{start: time.Now()}
	ctx = context.WithValue(ctx, callTraceKey{}, tr)
	return ctx, func(r sessions.StoreResult) {
		d := time.Since(tr.start)
		o.mu.Lock()
		defer o.mu.Unlock()
		o.calls++
		if r.Outcome != sessions.OutcomeError {
			return
		}
		o.failed++
		if o.errClasses == nil {
			o.errClasses = map[string]int{}
		}
		o.errClasses[errClass(r.Err)]++
		i := 0
		for i < len(failedDurBounds) && d > storeTimeout+failedDurBounds[i] {
			i++
		}
		o.failedDur[i]++
		if d > o.maxFailed {
			o.maxFailed = d
			note(ctx, "call returned: %s", errText(r.Err))
			o.slowestTrace, o.slowestErr, o.slowestOp = tr, r.Err, call.Op
		}
		if i > 0 && len(o.overruns) < 10000 {
			o.overruns = append(o.overruns, overrun{start: tr.start, d: d, op: call.Op, phase: tr.phaseAt(storeTimeout)})
		}
	}
}

// app is an in-process server: the real middleware over a real store,
// with a counter per session.
type app struct {
	srv *httptest.Server
	m   *sessions.Manager
	obs *callObserver
}

func newApp(t testing.TB, store sessions.Store, opts *sessions.Options) *app {
	t.Helper()
	var o sessions.Options
	if opts != nil {
		o = *opts
	}
	o.InsecureCookie = true
	if o.StoreTimeout == 0 {
		o.StoreTimeout = storeTimeout
	}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	obs := &callObserver{}
	o.Observer = obs
	m, err := sessions.New(store, &o)
	if err != nil {
		t.Fatal(err)
	}
	// Every session error is a 503 (the drills require a 5xx); the body
	// names the error, for the soak's failure report.
	unavailable := func(w http.ResponseWriter, err error) {
		http.Error(w, "session error: "+errText(err), http.StatusServiceUnavailable)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/inc", func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "n", func(n int) int { return n + 1 })
		if err != nil {
			unavailable(w, err)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		n, found, err := sessions.Get[int](sessions.FromContext(r.Context()), "n")
		switch {
		case err != nil:
			unavailable(w, err)
		case !found:
			fmt.Fprint(w, "none")
		default:
			fmt.Fprint(w, n)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Renew(); err != nil {
			unavailable(w, err)
			return
		}
		fmt.Fprint(w, "renewed")
	})
	mux.HandleFunc("/pause", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond) // holds a connection; no session access
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
			unavailable(w, err)
			return
		}
		fmt.Fprint(w, "bye")
	})
	a := &app{srv: httptest.NewServer(m.Handler(mux)), m: m, obs: obs}
	t.Cleanup(a.srv.Close)
	return a
}

// newSession creates a session through /inc and returns its cookie. It
// tries up to five times: the shared services may be busy.
func (a *app) newSession(t testing.TB, c *http.Client) *http.Cookie {
	t.Helper()
	var status string
	for range 5 {
		resp, err := c.Get(a.srv.URL + "/inc")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && len(resp.Cookies()) > 0 {
			return resp.Cookies()[0]
		}
		status = resp.Status
	}
	t.Fatalf("creating a session: %s", status)
	return nil
}

// read GETs path with cookie and returns the status and body.
func (a *app) read(c *http.Client, path string, cookie *http.Cookie) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	req.AddCookie(cookie)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// drill is one fault under load.
type drill struct {
	name     string
	store    sessions.Store
	opts     *sessions.Options
	rate     int           // requests per second
	duration time.Duration // of the load
	faultAt  time.Duration // after the load starts
	// fault injects the fault and returns when it is over (healed, or the
	// failover it provoked has been ordered); it returns the moment the
	// fault ended, from which recovery is measured.
	fault func(t *testing.T) time.Time
	// settle waits, after the load, until the system serves again (for
	// example until a failover client sees the new primary).
	settle func(t *testing.T)
	// allowLost tolerates lost acknowledged increments (Redis failovers:
	// replication is asynchronous and MinReplicas covers only the writes
	// that end a session). Resurrections are never tolerated.
	allowLost bool
}

// drillResult is the per-fault report.
type drillResult struct {
	Requests, OK, Failed5xx, OtherStatus, NoResponse int
	StoreCalls, FailedCalls, SlowFailedCalls         int
	MaxFailedCall, MaxUnexplained                    time.Duration
	MaxFailInc, MaxFailLogout                        time.Duration
	Lost, Resurrected, Verified, Destroyed           int
	Recovery                                         time.Duration
}

func (r drillResult) String() string {
	return fmt.Sprintf("requests=%d ok=%d failed_5xx=%d (slowest: increment %v, logout %v) other_status=%d no_response=%d "+
		"store_calls=%d failed=%d (slowest %v, %v without CPU stalls; over %v: %d) "+
		"sessions_verified=%d lost=%d destroyed=%d resurrected=%d recovery=%v",
		r.Requests, r.OK, r.Failed5xx, r.MaxFailInc.Round(time.Millisecond), r.MaxFailLogout.Round(time.Millisecond), r.OtherStatus, r.NoResponse,
		r.StoreCalls, r.FailedCalls, r.MaxFailedCall.Round(time.Millisecond), r.MaxUnexplained.Round(time.Millisecond), storeTimeout+callSlack, r.SlowFailedCalls,
		r.Verified, r.Lost, r.Destroyed, r.Resurrected, r.Recovery.Round(time.Millisecond))
}

const (
	liveSessions = 64
	victims      = 400
)

// run drives the load with vegeta while the fault happens, then verifies
// every acknowledged write and every destroyed session.
func (d drill) run(t *testing.T) drillResult {
	t.Helper()
	a := newApp(t, d.store, d.opts)
	setup := &http.Client{Timeout: 10 * time.Second}
	live := make([]*http.Cookie, liveSessions)
	for i := range live {
		live[i] = a.newSession(t, setup)
	}
	vict := make([]*http.Cookie, victims)
	for i := range vict {
		vict[i] = a.newSession(t, setup)
	}

	// Targets: every fourth request logs a victim out (each victim once),
	// the others increment a live session's counter.
	var seq, nextVictim atomic.Int64
	targeter := func(tgt *vegeta.Target) error {
		n := seq.Add(1)
		tgt.Method = http.MethodGet
		tgt.Header = http.Header{}
		if n%4 == 0 {
			if v := nextVictim.Add(1) - 1; v < victims {
				tgt.URL = fmt.Sprintf("%s/logout?v=%d", a.srv.URL, v)
				tgt.Header.Set("Cookie", vict[v].String())
				return nil
			}
		}
		i := n % liveSessions
		tgt.URL = fmt.Sprintf("%s/inc?s=%d", a.srv.URL, i)
		tgt.Header.Set("Cookie", live[i].String())
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Timeout(15*time.Second), vegeta.Workers(16), vegeta.MaxWorkers(512),
		vegeta.KeepAlive(true), vegeta.Redirects(vegeta.NoFollow))

	probe := startSchedProbe()
	var healed atomic.Pointer[time.Time]
	faultDone := make(chan struct{})
	go func() {
		defer close(faultDone)
		time.Sleep(d.faultAt)
		end := d.fault(t)
		healed.Store(&end)
	}()

	var res drillResult
	acked := make([]int, liveSessions)
	destroyed := make([]bool, victims)
	var lastFailure time.Time
	var mu sync.Mutex
	for r := range atk.Attack(targeter, vegeta.Rate{Freq: d.rate, Per: time.Second}, d.duration, d.name) {
		mu.Lock()
		res.Requests++
		u, _ := url.Parse(r.URL)
		switch {
		case r.Code == 200:
			res.OK++
			if s := u.Query().Get("s"); s != "" {
				i, _ := strconv.Atoi(s)
				n, _ := strconv.Atoi(strings.TrimSpace(string(r.Body)))
				acked[i] = max(acked[i], n)
			} else if v := u.Query().Get("v"); v != "" {
				i, _ := strconv.Atoi(v)
				destroyed[i] = true
			}
		case r.Code >= 500:
			res.Failed5xx++
			if u.Query().Has("v") {
				res.MaxFailLogout = max(res.MaxFailLogout, r.Latency)
			} else {
				res.MaxFailInc = max(res.MaxFailInc, r.Latency)
			}
			lastFailure = latest(lastFailure, r.End())
		case r.Code == 0:
			res.NoResponse++
			lastFailure = latest(lastFailure, r.End())
		default:
			res.OtherStatus++
			lastFailure = latest(lastFailure, r.End())
		}
		mu.Unlock()
	}
	<-faultDone
	sched := probe.finish()
	a.obs.mu.Lock()
	sched += "\n" + explainOverruns(probe, a.obs.overruns, storeTimeout)
	a.obs.mu.Unlock()
	if d.settle != nil {
		d.settle(t)
	}
	a.obs.mu.Lock()
	res.StoreCalls, res.FailedCalls, res.MaxFailedCall = a.obs.calls, a.obs.failed, a.obs.maxFailed
	// Calls within timeout+100 ms are not in overruns: their duration
	// counts as it is.
	res.MaxUnexplained = min(res.MaxFailedCall, storeTimeout+failedDurBounds[0])
	slowOps := map[sessions.StoreOp]int{}
	u, slow := checkOverruns(probe, a.obs.overruns, slowOps)
	res.MaxUnexplained, res.SlowFailedCalls = max(res.MaxUnexplained, u), slow
	a.obs.mu.Unlock()
	if h := healed.Load(); h != nil && lastFailure.After(*h) {
		res.Recovery = lastFailure.Sub(*h)
	}

	// Verify: every acknowledged increment is there, every acknowledged
	// logout stayed a logout.
	check := &http.Client{Timeout: 10 * time.Second}
	for i, c := range live {
		code, body, err := a.read(check, "/get", c)
		if err != nil || code != 200 {
			t.Errorf("%s: verifying session %d: %d %q %v", d.name, i, code, body, err)
			continue
		}
		res.Verified++
		n, err := strconv.Atoi(body)
		if err != nil || n < acked[i] {
			res.Lost++
			t.Logf("%s: session %d holds %q after %d acknowledged increments", d.name, i, body, acked[i])
		}
	}
	for i, c := range vict {
		if !destroyed[i] {
			continue
		}
		res.Destroyed++
		code, body, err := a.read(check, "/get", c)
		if err != nil || code != 200 {
			t.Errorf("%s: verifying victim %d: %d %q %v", d.name, i, code, body, err)
			continue
		}
		if body != "none" {
			res.Resurrected++
		}
	}
	t.Logf("%s: %v", d.name, res)
	t.Logf("%s: %s", d.name, sched)
	a.obs.mu.Lock()
	t.Logf("%s: failed store calls by duration: within timeout+100ms %d, +500ms %d, +1s %d, later %d; by error: %v",
		d.name, a.obs.failedDur[0], a.obs.failedDur[1], a.obs.failedDur[2], a.obs.failedDur[3], a.obs.errClasses)
	if tr := a.obs.slowestTrace; tr != nil {
		t.Logf("%s: slowest failed store call (%s, %v): %v%s", d.name, a.obs.slowestOp, res.MaxFailedCall.Round(time.Millisecond), a.obs.slowestErr, tr)
	}
	a.obs.mu.Unlock()
	if len(slowOps) > 0 {
		t.Logf("%s: slow failed store calls by operation: %v", d.name, slowOps)
	}
	if res.NoResponse > 0 || res.OtherStatus > 0 || res.SlowFailedCalls > 0 {
		t.Errorf("%s: every failure must be a 5xx, every failed store call must end within %v (CPU stalls aside): %v", d.name, storeTimeout+callSlack, res)
	}
	if res.Resurrected > 0 {
		t.Errorf("%s: %d destroyed sessions came back", d.name, res.Resurrected)
	}
	if res.Lost > 0 && !d.allowLost {
		t.Errorf("%s: %d sessions lost acknowledged writes", d.name, res.Lost)
	}
	return res
}

// checkOverruns subtracts from each overrunning call the time the probe
// was stalled past the call's deadline, and counts the calls that still
// took longer than storeTimeout+callSlack (by operation, into slowOps). It
// returns the longest such duration and that count.
func checkOverruns(probe *schedProbe, overruns []overrun, slowOps map[sessions.StoreOp]int) (time.Duration, int) {
	var longest time.Duration
	slow := 0
	for _, o := range overruns {
		u := o.d - probe.stalled(o.start.Add(storeTimeout), o.start.Add(o.d))
		longest = max(longest, u)
		if u > storeTimeout+callSlack {
			slow++
			slowOps[o.op]++
		}
	}
	return longest, slow
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// drillScale returns the CI form's (rate, duration) or, with
// SESSIONS_FAULT_LONG=1, the long form's.
func drillScale() (int, time.Duration, time.Duration) {
	if longRun("SESSIONS_FAULT_LONG") {
		return 300, 60 * time.Second, 20 * time.Second
	}
	return 120, 8 * time.Second, 2 * time.Second
}

func longRun(env string) bool { v := getenv(env); return v != "" && v != "0" }

var _ = context.Background
