package reliability

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionkit/sessions"
)

// Tracing a store call's phases. The drills' observer puts a *callTrace in
// the context of every store call; drivers' hooks (pgTracer for pgx) add
// timestamped events to it, so that a failed call that ran past the store
// timeout can be shown phase by phase: where its time went, and whether
// the process was starved of CPU (see schedProbe) or waited on I/O.

type callTraceKey struct{}

type traceEvent struct {
	at   time.Duration // since the call began
	what string
}

type callTrace struct {
	start time.Time
	mu    sync.Mutex
	ev    []traceEvent
}

func traceFrom(ctx context.Context) *callTrace {
	tr, _ := ctx.Value(callTraceKey{}).(*callTrace)
	return tr
}

// note adds an event to the call's trace, if ctx carries one.
func note(ctx context.Context, format string, args ...any) {
	tr := traceFrom(ctx)
	if tr == nil {
		return
	}
	at := time.Since(tr.start)
	tr.mu.Lock()
	if len(tr.ev) < 64 {
		tr.ev = append(tr.ev, traceEvent{at: at, what: fmt.Sprintf(format, args...)})
	}
	tr.mu.Unlock()
}

func (tr *callTrace) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var b strings.Builder
	for _, e := range tr.ev {
		fmt.Fprintf(&b, "\n    +%7.1fms %s", float64(e.at.Microseconds())/1000, e.what)
	}
	return b.String()
}

// dialCounter counts the TCP dials a pgx pool makes: connection attempts
// (its connect tracer counts those) and, beyond them, the cancel requests
// pgx sends on a connection of their own when a query's context ends.
type dialCounter struct{ dials, connects atomic.Int64 }

func (c *dialCounter) String() string {
	d, n := c.dials.Load(), c.connects.Load()
	return fmt.Sprintf("%d dials: %d connection attempts, %d cancel requests", d, n, d-n)
}

// pgTracer records pgx's phases (pool acquire, which includes the pool's
// liveness ping; connect; prepare; query) into the call's trace. A connect
// that the pool runs for a call goes on in the background after the call
// gave up; its events still land in the call's trace, marked by their time.
type pgTracer struct{ dials *dialCounter }

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func sqlVerb(sql string) string {
	f := strings.Fields(sql)
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func (pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	note(ctx, "query %s start", sqlVerb(d.SQL))
	return ctx
}

func (pgTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	note(ctx, "query end: %s", errText(d.Err))
}

func (pgTracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, d pgx.TracePrepareStartData) context.Context {
	note(ctx, "prepare %s start", sqlVerb(d.SQL))
	return ctx
}

func (pgTracer) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, d pgx.TracePrepareEndData) {
	note(ctx, "prepare end: %s", errText(d.Err))
}

func (p pgTracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	if p.dials != nil {
		p.dials.connects.Add(1)
	}
	note(ctx, "connect start")
	return ctx
}

func (pgTracer) TraceConnectEnd(ctx context.Context, d pgx.TraceConnectEndData) {
	note(ctx, "connect end: %s", errText(d.Err))
}

func (pgTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	note(ctx, "acquire start")
	return ctx
}

func (pgTracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	note(ctx, "acquire end: %s", errText(d.Err))
}

// schedProbe measures how late a goroutine that sleeps 5 ms wakes up: a
// process starved of CPU (a loaded machine, the race detector) wakes late,
// one waiting on I/O does not. It keeps every late wake-up, so that the
// overrun of a slow store call can be compared with the stalls the probe
// saw in the same interval.
type schedProbe struct {
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	stalls []stall // wake-ups more than 10 ms late
	max    time.Duration
	over   [3]int
	count  int
}

// stall is an interval in which the probe was runnable but did not run.
type stall struct{ from, to time.Time }

var probeBounds = [3]time.Duration{50 * time.Millisecond, 200 * time.Millisecond, time.Second}

func startSchedProbe() *schedProbe {
	p := &schedProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		const nap = 5 * time.Millisecond
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(nap)
			now := time.Now()
			late := now.Sub(t0) - nap
			p.mu.Lock()
			p.count++
			p.max = max(p.max, late)
			for i, b := range probeBounds {
				if late > b {
					p.over[i]++
				}
			}
			if late > 10*time.Millisecond && len(p.stalls) < 100000 {
				p.stalls = append(p.stalls, stall{from: t0.Add(nap), to: now})
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *schedProbe) finish() string {
	close(p.stop)
	<-p.done
	return fmt.Sprintf("scheduler probe: %d naps of 5 ms, latest wake-up %v late; late by over 50 ms: %d, 200 ms: %d, 1 s: %d",
		p.count, p.max.Round(time.Millisecond), p.over[0], p.over[1], p.over[2])
}

// stalled returns how much of [from, to] the probe spent stalled.
func (p *schedProbe) stalled(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	for _, s := range p.stalls {
		a, b := s.from, s.to
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			d += b.Sub(a)
		}
	}
	return d
}

// overrun is a failed store call that returned after its deadline.
type overrun struct {
	start time.Time
	d     time.Duration // the call's duration
	op    sessions.StoreOp
	phase string // the last traced phase begun before the deadline
}

// phaseAt returns the last event of tr before at (since the call's start).
func (tr *callTrace) phaseAt(at time.Duration) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	phase := "before any driver phase"
	for _, e := range tr.ev {
		if e.at > at {
			break
		}
		phase = e.what
		if i := strings.Index(phase, ":"); i > 0 {
			phase = phase[:i]
		}
	}
	return phase
}

// explainOverruns compares each overrun past the store timeout with the
// probe's stalls in the same interval: when the probe was stalled for most
// of the overrun, the process (or the machine) was short of CPU, not
// waiting on the driver.
func explainOverruns(p *schedProbe, runs []overrun, timeout time.Duration) string {
	if len(runs) == 0 {
		return "no failed store call ran more than 100 ms past the store timeout"
	}
	var over, stalled time.Duration
	phases := map[string]int{}
	mostly := 0
	for _, r := range runs {
		dl := r.start.Add(timeout)
		o := r.d - timeout
		s := p.stalled(dl, r.start.Add(r.d))
		over += o
		stalled += s
		if s >= o/2 {
			mostly++
		}
		phases[r.phase]++
	}
	return fmt.Sprintf("%d failed store calls ran over 100 ms past the store timeout: overrun %v in all, the scheduler probe stalled for %v of it (%.0f%%); "+
		"probe stalled for at least half the overrun in %d of %d calls; phase at the deadline: %v",
		len(runs), over.Round(time.Millisecond), stalled.Round(time.Millisecond), 100*stalled.Seconds()/max(over.Seconds(), 1e-9),
		mostly, len(runs), phases)
}

// errClass names the kind of a store error for the reports: the context's
// deadline, a refused or reset connection, a server's error, and so on.
// The store's own prefix ("pgxstore: load: ") is left out.
func errClass(err error) string {
	if err == nil {
		return "none"
	}
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "i/o timeout"):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(msg, "connection refused"):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET) || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe"):
		return "reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(msg, "EOF"):
		return "eof"
	case strings.Contains(msg, "SQLSTATE 57P"):
		return "server starting/stopping (57P)"
	case strings.Contains(msg, "SQLSTATE"):
		return "server error"
	case strings.Contains(msg, "closed"):
		return "closed"
	}
	for _, w := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "NOREPLICAS", "TRYAGAIN", "not acknowledged by enough replicas"} {
		if strings.Contains(msg, w) {
			return w
		}
	}
	if len(msg) > 60 {
		msg = msg[:60] + "…"
	}
	return "other: " + msg
}
