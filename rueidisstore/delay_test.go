package rueidisstore

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestInvalidationDelay measures how long another instance keeps serving a
// record from its near-cache after a write: two Stores on two clients (two
// "instances") share a prefix; A writes while B polls Load in a loop, and
// both take timestamps. Background goroutines keep both instances busy
// with cache hits and compare-and-set writes on other sessions meanwhile.
//
// Each round creates a session through A, has B load it twice (the second
// load must be a near-cache hit), then A does one of: update the data,
// destroy (Delete), renew (retire with an Update to the epoch + 1 ms) or
// log out everywhere (DeleteOwner). The delay is from A's write returning
// to B's first Load that shows it (negative when B saw it before A's reply
// arrived). It reports p50, p99 and max, and asserts only that every change
// was seen within MaxCacheAge (the hard bound).
//
// SESSIONS_DELAY_ROUNDS sets the rounds (default 200), SESSIONS_DELAY_PAUSE
// the pollers' pause between loads (default 50µs; 0 spins).
func TestInvalidationDelay(t *testing.T) {
	rounds := 200
	if v, err := strconv.Atoi(os.Getenv("SESSIONS_DELAY_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	const maxAge = 5 * time.Second
	// pause is the gap between two loads of a poller. Goroutines that
	// never block (a loop of near-cache hits) keep the Go scheduler from
	// polling the network, so the invalidation waits for sysmon's 10 ms
	// poll: the pauses make them behave like request handlers, which block.
	pause := 50 * time.Microsecond
	if v, err := time.ParseDuration(os.Getenv("SESSIONS_DELAY_PAUSE")); err == nil {
		pause = v
	}
	ca := singleClient(t)
	cb := newClient(t, singleOption(t), "Redis")
	a := newStore(t, ca, &Options{MaxCacheAge: maxAge})
	b := newStore(t, cb, &Options{Prefix: a.prefix, MaxCacheAge: maxAge})
	ctx := context.Background()
	data := make([]byte, 200)

	// Background load: cache hits on B, compare-and-set increments on A.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	var bgOps atomic.Int64
	for g := range 4 {
		id := newID(t)
		now := time.Now()
		if _, err := a.Create(ctx, id, data, now.Add(time.Hour), "", now); err != nil {
			t.Fatal(err)
		}
		bg.Add(1)
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				now := time.Now()
				if g%2 == 0 {
					_, _, _, _, _ = b.Load(ctx, id, now)
				} else if _, v, _, ok, err := a.Load(ctx, id, now); err == nil && ok {
					_, _, _ = a.Update(ctx, id, v, data, now.Add(time.Hour), "", now)
				}
				bgOps.Add(1)
				time.Sleep(pause)
			}
		}()
	}
	defer func() { close(stop); bg.Wait() }()

	kinds := []string{"update", "destroy", "renew", "logout-all"}
	delays := make(map[string][]time.Duration)
	var all []time.Duration
	var hits int
	var gapMu sync.Mutex
	var gaps []time.Duration // between two loads of a poller: the resolution
	start := time.Now()
	for i := range rounds {
		kind := kinds[i%len(kinds)]
		id, owner := newID(t), ""
		if kind == "logout-all" {
			owner = "user-" + strconv.Itoa(i)
		}
		now := time.Now()
		if ok, err := a.Create(ctx, id, data, now.Add(time.Hour), owner, now); err != nil || !ok {
			t.Fatalf("create: %v %v", ok, err)
		}
		for range 2 {
			if _, _, _, ok, err := b.Load(ctx, id, time.Now()); err != nil || !ok {
				t.Fatalf("B load before the write: %v %v", ok, err)
			}
		}
		if cb.DoCache(ctx, cb.B().Get().Key(b.sessionKey(id)).Cache(), maxAge).IsCacheHit() {
			hits++
		}
		// B polls until the change shows.
		seen := make(chan time.Time, 1)
		began := time.Now()
		go func() {
			last := time.Now()
			for {
				if t := time.Now(); t.Sub(last) > 0 {
					gapMu.Lock()
					gaps = append(gaps, t.Sub(last))
					gapMu.Unlock()
					last = t
				}
				_, v, _, ok, err := b.Load(ctx, id, time.Now())
				if err == nil && (!ok || kind == "update" && v == 2) {
					seen <- time.Now()
					return
				}
				if time.Since(began) > maxAge+time.Second {
					close(seen)
					return
				}
				time.Sleep(pause)
			}
		}()
		now = time.Now()
		var err error
		switch kind {
		case "update":
			_, _, err = a.Update(ctx, id, 1, []byte("changed"), now.Add(time.Hour), "", now)
		case "destroy":
			err = a.Delete(ctx, id)
		case "renew":
			_, _, err = a.Update(ctx, id, 1, []byte{}, time.UnixMilli(1), "", now)
		case "logout-all":
			_, err = a.DeleteOwner(ctx, owner, now)
		}
		done := time.Now()
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		at, ok := <-seen
		if !ok {
			t.Fatalf("round %d: B did not see the %s within MaxCacheAge + 1s", i, kind)
		}
		d := at.Sub(done)
		delays[kind] = append(delays[kind], d)
		all = append(all, d)
	}
	elapsed := time.Since(start)
	report := func(name string, ds []time.Duration) string {
		slices.Sort(ds)
		q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		return fmt.Sprintf("%-10s n=%-4d p50 %-9v p99 %-9v max %v", name, len(ds), q(0.50), q(0.99), ds[len(ds)-1])
	}
	t.Logf("invalidation delay (B's first Load showing A's write, from A's reply), %d rounds in %v, pollers pausing %v, %d background ops, %d/%d pre-write loads were near-cache hits:",
		rounds, elapsed.Round(time.Millisecond), pause, bgOps.Load(), hits, rounds)
	for _, k := range kinds {
		t.Log(report(k, delays[k]))
	}
	t.Log(report("all", all))
	gapMu.Lock()
	t.Log(report("poll gap", gaps))
	gapMu.Unlock()
	if hits < rounds*9/10 {
		t.Errorf("only %d of %d loads before a write were near-cache hits", hits, rounds)
	}
}
