package pgxstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/pgxstore"
	"github.com/sessionkit/sessions/sessiontest"
)

var (
	_ sessions.Store          = (*pgxstore.NearCache)(nil)
	_ sessions.ExpiredDeleter = (*pgxstore.NearCache)(nil)
	_ sessions.OwnerIndex     = (*pgxstore.NearCache)(nil)
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// nearRig is a near cache on a fresh table, with control over its
// listening connection.
type nearRig struct {
	cache   *pgxstore.NearCache
	store   *pgxstore.Store
	table   string
	appName string
	logs    *logBuffer
	// refuse makes connect fail, so that the cache cannot listen again.
	refuse atomic.Bool
}

var rigSeq atomic.Int64

// newNearRig returns a near cache over store (nil: a new store on a fresh
// table with the trigger installed).
func newNearRig(tb testing.TB, store *pgxstore.Store, table string, opts *pgxstore.NearCacheOptions) *nearRig {
	tb.Helper()
	p := testPool(tb)
	if store == nil {
		store, _, table = newStore(tb, nil)
		if err := store.CreateNotifyTrigger(context.Background()); err != nil {
			tb.Fatalf("CreateNotifyTrigger: %v", err)
		}
	}
	r := &nearRig{store: store, table: table, logs: &logBuffer{},
		appName: fmt.Sprintf("near_%d_%d", time.Now().UnixNano()%1e9, rigSeq.Add(1))}
	var o pgxstore.NearCacheOptions
	if opts != nil {
		o = *opts
	}
	o.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	cfg := p.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = r.appName
	c, err := pgxstore.NewNearCache(store, func(ctx context.Context) (*pgx.Conn, error) {
		if r.refuse.Load() {
			return nil, errors.New("test refuses to connect")
		}
		return pgx.ConnectConfig(ctx, cfg)
	}, &o)
	if err != nil {
		tb.Fatalf("NewNearCache: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	r.cache = c
	waitFor(tb, "the near cache to listen", func() bool { return c.Listening() })
	return r
}

// waitFor polls cond for up to 10 s.
func waitFor(tb testing.TB, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// kill ends the rig's listening connection from the server side.
func (r *nearRig) kill(tb testing.TB) {
	tb.Helper()
	var n int
	err := testPool(tb).QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, r.appName).Scan(&n)
	if err != nil || n != 1 {
		tb.Fatalf("pg_terminate_backend: %d connections, %v; want 1", n, err)
	}
}

// TestNearCacheConformance runs the sessiontest suite with the near cache
// on; the suite reads its own writes, so it checks that every write drops
// the process's copy at once.
func TestNearCacheConformance(t *testing.T) {
	t.Parallel()
	testPool(t)
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		return newNearRig(t, nil, "", nil).cache
	}, nil)
}

func TestNewNearCacheOptions(t *testing.T) {
	t.Parallel()
	s, err := pgxstore.New(nopDB{}, nil) // New does no I/O
	if err != nil {
		t.Fatal(err)
	}
	connect := func(context.Context) (*pgx.Conn, error) { return nil, errors.New("no") }
	for _, o := range []pgxstore.NearCacheOptions{{MaxAge: -1}, {MaxEntries: -1}, {Heartbeat: -1}} {
		if _, err := pgxstore.NewNearCache(s, connect, &o); !errors.Is(err, pgxstore.ErrInvalidOptions) {
			t.Errorf("NewNearCache(%+v): %v, want ErrInvalidOptions", o, err)
		}
	}
	if _, err := pgxstore.NewNearCache(s, nil, nil); !errors.Is(err, pgxstore.ErrInvalidOptions) {
		t.Errorf("NewNearCache(nil connect): %v, want ErrInvalidOptions", err)
	}
}

// nopDB is a DB that is never called.
type nopDB struct{ pgxstore.DB }

// TestNearCacheServesAndInvalidates: a load is served from the process; a
// write by another writer (here plain SQL on another connection) drops
// the copy through the trigger; a Touch that moves nothing keeps it.
func TestNearCacheServesAndInvalidates(t *testing.T) {
	t.Parallel()
	r := newNearRig(t, nil, "", nil)
	ctx, now := context.Background(), time.Now()
	id := testID(t, 1)
	if ok, err := r.store.Create(ctx, id, []byte("a"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatalf("Create: %v %v", ok, err)
	}
	data, _, _, found, err := r.cache.Load(ctx, id, now)
	if !found || err != nil || string(data) != "a" || !r.cache.Cached(id) {
		t.Fatalf("Load: %q %v %v, cached %v", data, found, err, r.cache.Cached(id))
	}
	data[0] = 'x' // the caller owns the slice
	if data, _, _, _, _ := r.cache.Load(ctx, id, now); string(data) != "a" {
		t.Fatalf("second Load: %q, want the cached copy untouched", data)
	}

	// A Touch that moves nothing is silent.
	if found, err := r.store.Touch(ctx, id, now, now); !found || err != nil {
		t.Fatalf("Touch: %v %v", found, err)
	}
	time.Sleep(50 * time.Millisecond)
	if !r.cache.Cached(id) {
		t.Errorf("a Touch that moved nothing dropped the copy")
	}

	if _, err := testPool(t).Exec(ctx, `UPDATE `+r.table+` SET data = 'b', version = version + 1`); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, "the trigger's notification", func() bool { return !r.cache.Cached(id) })
	t.Logf("invalidated %v after the UPDATE returned", d)
	if data, v, _, _, _ := r.cache.Load(ctx, id, now); string(data) != "b" || v != 2 {
		t.Errorf("Load after the UPDATE: %q version %d, want b, 2", data, v)
	}
}

// TestNearCacheMaxAge: a copy is never served after MaxAge, notification
// or not.
func TestNearCacheMaxAge(t *testing.T) {
	t.Parallel()
	const maxAge = time.Second
	r := newNearRig(t, nil, "", &pgxstore.NearCacheOptions{MaxAge: maxAge})
	ctx, now := context.Background(), time.Now()
	id := testID(t, 1)
	if ok, err := r.store.Create(ctx, id, []byte("a"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatalf("Create: %v %v", ok, err)
	}
	before := time.Now()
	r.cache.Load(ctx, id, now)
	after := time.Now() // the copy's age counts from a moment in [before, after]
	// Change the row behind the trigger's back.
	if _, err := testPool(t).Exec(ctx, `ALTER TABLE `+r.table+` DISABLE TRIGGER USER;
UPDATE `+r.table+` SET data = 'b';
ALTER TABLE `+r.table+` ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	data, _, _, _, _ := r.cache.Load(ctx, id, now)
	// Only a loaded machine takes MaxAge for the three statements above.
	if time.Since(before) < maxAge && string(data) != "a" {
		t.Fatalf("Load right after a silent change: %q, want the copy a", data)
	}
	time.Sleep(time.Until(after.Add(maxAge + 10*time.Millisecond)))
	if data, _, _, _, _ := r.cache.Load(ctx, id, now); string(data) != "b" {
		t.Errorf("Load after MaxAge: %q, want b", data)
	}
}

// TestNearCacheListenerLost kills the listening connection with
// pg_terminate_backend: the cache flushes, logs, reads through while it
// cannot reconnect, and caches again once it listens.
func TestNearCacheListenerLost(t *testing.T) {
	t.Parallel()
	r := newNearRig(t, nil, "", &pgxstore.NearCacheOptions{MaxAge: time.Hour})
	ctx, now := context.Background(), time.Now()
	id := testID(t, 1)
	if ok, err := r.store.Create(ctx, id, []byte("a"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatalf("Create: %v %v", ok, err)
	}
	r.cache.Load(ctx, id, now)
	if !r.cache.Cached(id) {
		t.Fatal("not cached")
	}

	r.refuse.Store(true)
	r.kill(t)
	waitFor(t, "the cache to notice and flush", func() bool { return !r.cache.Listening() && !r.cache.Cached(id) })
	waitFor(t, "the warning", func() bool { return strings.Contains(r.logs.String(), "reading through") })
	t.Logf("logs: %s", r.logs.String())

	// Nobody listens: every Load reads through and nothing is kept.
	for i, want := range []string{"b", "c"} {
		if _, err := testPool(t).Exec(ctx, `UPDATE `+r.table+` SET data = $1, version = version + 1`, want); err != nil {
			t.Fatal(err)
		}
		data, v, _, found, err := r.cache.Load(ctx, id, now)
		if !found || err != nil || string(data) != want || v != int64(i+2) {
			t.Errorf("Load while not listening: %q v%d %v %v, want %s v%d", data, v, found, err, want, i+2)
		}
		if r.cache.Cached(id) {
			t.Error("cached while not listening")
		}
	}

	r.refuse.Store(false)
	waitFor(t, "the cache to listen again", func() bool { return r.cache.Listening() })
	waitFor(t, "the info line", func() bool { return strings.Contains(r.logs.String(), "listening again") })
	r.cache.Load(ctx, id, now)
	if !r.cache.Cached(id) {
		t.Error("not cached after reconnecting")
	}
	// And invalidation works on the new connection.
	if _, err := testPool(t).Exec(ctx, `UPDATE `+r.table+` SET data = 'd', version = version + 1`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the notification on the new connection", func() bool { return !r.cache.Cached(id) })
}

// TestNearCacheTriggerMissing: without the trigger the cache never caches,
// and says why.
func TestNearCacheTriggerMissing(t *testing.T) {
	t.Parallel()
	store, _, table := newStore(t, nil)
	logs := &logBuffer{}
	p := testPool(t)
	c, err := pgxstore.NewNearCache(store, func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.ConnectConfig(ctx, p.Config().ConnConfig.Copy())
	}, &pgxstore.NearCacheOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "the error", func() bool { return strings.Contains(logs.String(), "trigger is missing") })
	ctx, now := context.Background(), time.Now()
	id := testID(t, 1)
	store.Create(ctx, id, []byte("a"), now.Add(time.Hour), "", now)
	c.Load(ctx, id, now)
	if c.Listening() || c.Cached(id) {
		t.Errorf("live %v, cached %v without the trigger", c.Listening(), c.Cached(id))
	}
	_ = table
}

// TestNearCacheConcurrentWrites: readers on one instance and writers on
// another, all on the same records; every write's compare-and-set sees the
// latest version, so the counters end exact, and the reader never goes
// backwards once the writer's write has been seen by its notification.
func TestNearCacheConcurrentWrites(t *testing.T) {
	t.Parallel()
	a := newNearRig(t, nil, "", nil)
	b := newNearRig(t, a.store, a.table, nil)
	ctx := context.Background()
	const records, writers, incs = 4, 4, 25
	now := time.Now()
	for i := range records {
		a.cache.Create(ctx, testID(t, i), []byte("0"), now.Add(time.Hour), "", now)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := a.cache
			if w%2 == 1 {
				c = b.cache
			}
			for i := range incs * records {
				id := testID(t, i%records)
				for {
					data, v, exp, found, err := c.Load(ctx, id, time.Now())
					if err != nil || !found {
						t.Errorf("Load: %v %v", found, err)
						return
					}
					var n int
					fmt.Sscan(string(data), &n)
					ok, found, err := c.Update(ctx, id, v, []byte(fmt.Sprint(n+1)), exp, "", time.Now())
					if err != nil || !found {
						t.Errorf("Update: %v %v", found, err)
						return
					}
					if ok {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	for i := range records {
		id := testID(t, i)
		for _, c := range []*pgxstore.NearCache{a.cache, b.cache} {
			waitFor(t, "the last notification", func() bool {
				data, _, _, _, _ := c.Load(ctx, id, time.Now())
				return string(data) == fmt.Sprint(writers*incs)
			})
		}
	}
}

// TestNearCacheTwoInstances runs two managers, each on a near cache of its
// own over one table, behind two HTTP servers: destroy, renew and
// logout-everywhere on one are seen by the other once the notification
// arrives.
func TestNearCacheTwoInstances(t *testing.T) {
	t.Parallel()
	a := newNearRig(t, nil, "", nil)
	b := newNearRig(t, a.store, a.table, nil)
	srvA, mA := nearServer(t, a.cache)
	srvB, _ := nearServer(t, b.cache)

	get := func(srv *httptest.Server, path, tok string) (body, newTok string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if tok != "" {
			req.AddCookie(&http.Cookie{Name: "sid", Value: tok})
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		newTok = tok
		for _, c := range res.Cookies() {
			if c.Name == "sid" {
				newTok = c.Value
			}
		}
		return buf.String(), newTok
	}
	seen := func(what string, srv *httptest.Server, tok, want string) {
		t.Helper()
		d := waitFor(t, what, func() bool { body, _ := get(srv, "/get", tok); return body == want })
		t.Logf("%s: seen on the other instance after %v", what, d)
	}

	_, t1 := get(srvA, "/login?owner=u", "")
	get(srvA, "/inc", t1)
	seen("increment", srvB, t1, "1") // now cached on B
	if body, _ := get(srvB, "/get", t1); body != "1" {
		t.Fatalf("B: %q", body)
	}

	_, t2 := get(srvA, "/renew", t1)
	if t2 == t1 {
		t.Fatal("renew kept the token")
	}
	seen("renewal retires the old record", srvB, t1, "none")
	seen("renewal's successor", srvB, t2, "1")

	get(srvA, "/inc", t2)
	seen("increment after renewal", srvB, t2, "2")

	get(srvA, "/destroy", t2)
	seen("destroy", srvB, t2, "none")

	// Logout everywhere: two sessions of one owner, both cached on B.
	_, t3 := get(srvA, "/login?owner=v", "")
	_, t4 := get(srvB, "/login?owner=v", "")
	get(srvA, "/inc", t3)
	get(srvB, "/inc", t4)
	seen("session 3", srvB, t3, "1")
	seen("session 4", srvB, t4, "1")
	if n, err := mA.DestroyOwner(context.Background(), "v"); n != 2 || err != nil {
		t.Fatalf("DestroyOwner: %d %v", n, err)
	}
	seen("logout everywhere, session 3", srvB, t3, "none")
	seen("logout everywhere, session 4", srvB, t4, "none")
}

// nearServer serves /login?owner=, /inc, /get, /renew and /destroy.
func nearServer(t *testing.T, store sessions.Store) (*httptest.Server, *sessions.Manager) {
	m, err := sessions.New(store, &sessions.Options{CookieName: "sid", InsecureCookie: true})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).RenewAfterLogin(r.FormValue("owner")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/inc", func(w http.ResponseWriter, r *http.Request) {
		if _, err := sessions.Update(sessions.FromContext(r.Context()), "n", func(n int) int { return n + 1 }); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		n, ok, err := sessions.Get[int](sessions.FromContext(r.Context()), "n")
		switch {
		case err != nil:
			http.Error(w, err.Error(), 500)
		case !ok:
			fmt.Fprint(w, "none")
		default:
			fmt.Fprint(w, n)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Renew(); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	srv := httptest.NewServer(m.Handler(mux))
	t.Cleanup(srv.Close)
	return srv, m
}

// TestNearCacheInvalidationDelay measures how long after a write returns on
// one instance the other instance stops serving its copy, while writers
// keep both instances and PostgreSQL busy. It reports p50 and p99 and
// asserts only a generous bound (the hard bound is MaxAge). More samples:
// SESSIONS_NEAR_SAMPLES=2000.
func TestNearCacheInvalidationDelay(t *testing.T) {
	t.Parallel()
	a := newNearRig(t, nil, "", &pgxstore.NearCacheOptions{MaxAge: time.Hour})
	b := newNearRig(t, a.store, a.table, &pgxstore.NearCacheOptions{MaxAge: time.Hour})
	ctx := context.Background()
	samples := envInt("SESSIONS_NEAR_SAMPLES", 200)
	const loaders = 4
	now := time.Now()

	// Background load: writers incrementing records of their own through
	// A, and readers loading them through B.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	for w := range loaders {
		id := testID(t, 1000+w)
		a.cache.Create(ctx, id, []byte("x"), now.Add(time.Hour), "", now)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for v := int64(1); ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				if ok, _, err := a.cache.Update(ctx, id, v, []byte("x"), now.Add(time.Hour), "", time.Now()); !ok || err != nil {
					t.Errorf("background Update: %v %v", ok, err)
					return
				}
				writes.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b.cache.Load(ctx, id, time.Now())
				time.Sleep(100 * time.Microsecond) // a busy reader, not a spinning one
			}
		}()
	}

	id := testID(t, 1)
	a.cache.Create(ctx, id, []byte("x"), now.Add(time.Hour), "", now)
	delays := make([]time.Duration, 0, samples)
	start := time.Now()
	for v := int64(1); v <= int64(samples); v++ {
		waitFor(t, "B to cache the record", func() bool {
			b.cache.Load(ctx, id, time.Now())
			return b.cache.Cached(id)
		})
		if ok, _, err := a.cache.Update(ctx, id, v, []byte("x"), now.Add(time.Hour), "", time.Now()); !ok || err != nil {
			t.Fatalf("Update: %v %v", ok, err)
		}
		written := time.Now()
		for b.cache.Cached(id) {
			if time.Since(written) > 10*time.Second {
				t.Fatalf("sample %d: B still serves its copy after 10 s", v)
			}
			time.Sleep(50 * time.Microsecond)
		}
		delays = append(delays, time.Since(written))
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	slices.Sort(delays)
	p50, p99, worst := delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1]
	t.Logf("invalidation delay over %d samples, %d background writes (%.0f/s) and %d concurrent readers: p50 %v, p99 %v, max %v",
		samples, writes.Load(), float64(writes.Load())/elapsed.Seconds(), loaders, p50, p99, worst)
	if p99 > 5*time.Second {
		t.Errorf("p99 %v: invalidations should arrive well within a second", p99)
	}
}

// envInt reads a positive integer from the environment, or returns def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestNearCacheMaxEntries: the cache never holds more than MaxEntries
// records (one per shard at the minimum), and a dropped record is read
// again from PostgreSQL.
func TestNearCacheMaxEntries(t *testing.T) {
	t.Parallel()
	r := newNearRig(t, nil, "", &pgxstore.NearCacheOptions{MaxEntries: 64})
	ctx, now := context.Background(), time.Now()
	const n = 300
	for i := range n {
		id := testID(t, i)
		if ok, err := r.store.Create(ctx, id, []byte{byte(i)}, now.Add(time.Hour), "", now); !ok || err != nil {
			t.Fatalf("Create: %v %v", ok, err)
		}
		r.cache.Load(ctx, id, now)
	}
	if got := r.cache.Len(); got > 64 {
		t.Errorf("%d entries, want at most 64", got)
	}
	for i := range n {
		data, _, _, found, err := r.cache.Load(ctx, testID(t, i), now)
		if !found || err != nil || len(data) != 1 || data[0] != byte(i) {
			t.Fatalf("Load %d: %v %v %v", i, data, found, err)
		}
	}
}

// TestNearCacheHeartbeat: an idle listener pings its connection every
// Heartbeat and keeps listening; Close does not wait for a heartbeat.
func TestNearCacheHeartbeat(t *testing.T) {
	t.Parallel()
	r := newNearRig(t, nil, "", &pgxstore.NearCacheOptions{Heartbeat: 50 * time.Millisecond})
	ctx, now := context.Background(), time.Now()
	id := testID(t, 1)
	r.store.Create(ctx, id, []byte("a"), now.Add(time.Hour), "", now)
	r.cache.Load(ctx, id, now)
	time.Sleep(300 * time.Millisecond) // several silent heartbeats
	if !r.cache.Listening() || !r.cache.Cached(id) {
		t.Fatalf("after idle heartbeats: listening %v, cached %v", r.cache.Listening(), r.cache.Cached(id))
	}
	if _, err := testPool(t).Exec(ctx, `UPDATE `+r.table+` SET data = 'b', version = version + 1`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the notification after idle heartbeats", func() bool { return !r.cache.Cached(id) })
	if strings.Contains(r.logs.String(), "lost") {
		t.Errorf("a heartbeat was taken for a lost connection: %s", r.logs.String())
	}

	slow := newNearRig(t, r.store, r.table, &pgxstore.NearCacheOptions{Heartbeat: time.Minute})
	start := time.Now()
	slow.cache.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a one-minute heartbeat", d)
	}
	if slow.cache.Listening() {
		t.Error("listening after Close")
	}
}

// TestNearCacheConformancePartitioned runs the suite with the near cache
// on the partitioned layout: the trigger on the partitioned table is
// cloned to every partition, and a row moved to another partition fires
// it as a DELETE of the old row.
func TestNearCacheConformancePartitioned(t *testing.T) {
	t.Parallel()
	testPool(t)
	sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
		o := partOpts
		s, _, table := newStore(t, &o)
		if err := s.CreateNotifyTrigger(context.Background()); err != nil {
			t.Fatalf("CreateNotifyTrigger: %v", err)
		}
		return newNearRig(t, s, table, nil).cache
	}, nil)
}
