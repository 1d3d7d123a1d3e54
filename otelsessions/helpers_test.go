package otelsessions_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/otelsessions"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is a real SDK tracer provider with an in-memory exporter and
// a real SDK meter provider with a manual reader.
type telemetry struct {
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t testing.TB) *telemetry {
	tel := &telemetry{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

// observer returns an Observer recording to tel, for a memstore.
func (tel *telemetry) observer(t testing.TB) *otelsessions.Observer {
	t.Helper()
	obs, err := otelsessions.New(&otelsessions.Options{
		TracerProvider: tel.tp, MeterProvider: tel.mp, StoreKind: "memory",
	})
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

// storeSpans returns the exported store spans (those of this package's
// tracer), in the order they ended.
func (tel *telemetry) storeSpans() tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range tel.spans.GetSpans() {
		if s.InstrumentationScope.Name == otelsessions.ScopeName {
			out = append(out, s)
		}
	}
	return out
}

// collect returns the data points collected so far, keyed by the metric
// name and the attributes other than the store kind (sorted), with the
// sum (counters) or the count (histograms). It fails the test if a point
// lacks the store kind.
func (tel *telemetry) collect(t testing.TB) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	key := func(name string, set attribute.Set) string {
		if v, ok := set.Value(otelsessions.KindKey); !ok || v.AsString() != "memory" {
			t.Errorf("%s %v: no %s=memory", name, set.ToSlice(), otelsessions.KindKey)
		}
		parts := []string{name}
		for _, kv := range set.ToSlice() {
			if kv.Key != otelsessions.KindKey {
				k := strings.TrimPrefix(string(kv.Key), "sessions.store.")
				parts = append(parts, k+"="+kv.Value.String())
			}
		}
		return strings.Join(parts, " ")
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] += int64(p.Count)
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// points returns how many data points the reader holds.
func (tel *telemetry) points(t testing.TB) int {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[float64]:
				n += len(d.DataPoints)
			default:
				n++
			}
		}
	}
	return n
}

// diff returns the entries of after that differ from before, as deltas.
func diff(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// describe renders a store span as "op outcome attempt", plus the status
// when it is not Unset.
func describe(s tracetest.SpanStub) string {
	attrs := attribute.NewSet(s.Attributes...)
	get := func(k attribute.Key) string {
		v, _ := attrs.Value(k)
		return v.String()
	}
	d := fmt.Sprintf("%s %s %s", get(otelsessions.OperationKey), get(otelsessions.OutcomeKey), get(otelsessions.AttemptKey))
	if s.Status.Code != 0 {
		d += " " + s.Status.Code.String()
	}
	return d
}

// hookStore wraps a memstore. A hook set with at runs once, before the
// first call it matches reaches the store; one set with failing makes
// matching calls fail with an error that quotes the session ID, as a
// careless store might.
type hookStore struct {
	*memstore.Store
	mu    sync.Mutex
	hooks []func(op, id string, expiry time.Time) error
}

func newHookStore(t testing.TB) *hookStore {
	st, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &hookStore{Store: st}
}

// at makes fn run once, before the first call for which match is true;
// fn's own store calls pass here too and do not fire it again.
func (s *hookStore) at(match func(op string, expiry time.Time) bool, fn func()) {
	var fired atomic.Bool
	s.add(func(op, _ string, expiry time.Time) error {
		if match(op, expiry) && fired.CompareAndSwap(false, true) {
			fn()
		}
		return nil
	})
}

// failing makes every call of op fail.
func (s *hookStore) failing(op string) {
	s.add(func(o, id string, _ time.Time) error {
		if o == op {
			return fmt.Errorf("backend unavailable for session %s: %w", id, errBackend)
		}
		return nil
	})
}

var errBackend = errors.New("connection refused")

func (s *hookStore) add(h func(op, id string, expiry time.Time) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, h)
}

func (s *hookStore) step(op, id string, expiry time.Time) error {
	s.mu.Lock()
	hooks := slices.Clone(s.hooks)
	s.mu.Unlock()
	for _, h := range hooks {
		if err := h(op, id, expiry); err != nil {
			return err
		}
	}
	return nil
}

func (s *hookStore) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if err := s.step("Create", id, expiry); err != nil {
		return false, err
	}
	return s.Store.Create(ctx, id, data, expiry, owner, now)
}

func (s *hookStore) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if err := s.step("Load", id, time.Time{}); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	return s.Store.Load(ctx, id, now)
}

func (s *hookStore) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if err := s.step("Update", id, expiry); err != nil {
		return false, false, err
	}
	return s.Store.Update(ctx, id, version, data, expiry, owner, now)
}

func (s *hookStore) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if err := s.step("Touch", id, expiry); err != nil {
		return false, err
	}
	return s.Store.Touch(ctx, id, expiry, now)
}

func (s *hookStore) Delete(ctx context.Context, id string) error {
	if err := s.step("Delete", id, time.Time{}); err != nil {
		return err
	}
	return s.Store.Delete(ctx, id)
}

// retiredExpiry is the expiry with which a renewal retires the old record.
var retiredExpiry = time.UnixMilli(1)

func isSave(op string, expiry time.Time) bool {
	return op == "Update" && !expiry.Equal(retiredExpiry)
}

func isRetire(op string, expiry time.Time) bool {
	return op == "Update" && expiry.Equal(retiredExpiry)
}

// app is the application under test. Every route but /static uses the
// session.
func app() http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		code := http.StatusInternalServerError
		if errors.Is(err, sessions.ErrSessionGone) {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
	}
	set := func(key, value string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := sessions.FromContext(r.Context()).Set(key, value); err != nil {
				fail(w, err)
				return
			}
			io.WriteString(w, "ok")
		}
	}
	mux.Handle("/set", set("user", "alice"))
	mux.Handle("/color", set("color", "blue"))
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		user, _, err := sessions.Get[string](sessions.FromContext(r.Context()), "user")
		if err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, user)
	})
	mux.HandleFunc("/incr", func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "n", func(n int) int { return n + 1 })
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/all", func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		keys, err := s.Keys()
		if err != nil {
			fail(w, err)
			return
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, _, err := sessions.Get[any](s, k)
			if err != nil {
				fail(w, err)
				return
			}
			fmt.Fprintf(w, "%s=%v ", k, v)
		}
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).RenewAfterLogin("alice"); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/static", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "static")
	})
	return mux
}

// traced wraps h in a span per request, named "request" plus the path, as
// an application's HTTP instrumentation would, outside the sessions
// middleware.
func traced(tp trace.TracerProvider, h http.Handler) http.Handler {
	tracer := tp.Tracer("app")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), "request "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// env is one application served over TLS, with a client that keeps
// cookies.
type env struct {
	t      testing.TB
	tel    *telemetry
	store  *hookStore
	m      *sessions.Manager
	srv    *httptest.Server
	client *http.Client
}

func newEnv(t testing.TB, opts sessions.Options) *env {
	t.Helper()
	e := &env{t: t, tel: newTelemetry(t), store: newHookStore(t)}
	opts.Observer = e.tel.observer(t)
	m, err := sessions.New(e.store, &opts)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	e.srv = httptest.NewTLSServer(traced(e.tel.tp, m.Handler(app())))
	t.Cleanup(e.srv.Close)
	e.client = e.srv.Client()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.client.Jar = jar
	return e
}

// get requests path with the client's cookies and returns the response
// (body read) and its body. It may run on a server goroutine (inside a
// store hook), so it reports failures with Errorf.
func (e *env) get(path string) (*http.Response, string) {
	resp, err := e.client.Get(e.srv.URL + path)
	if err != nil {
		e.t.Errorf("GET %s: %v", path, err)
		return &http.Response{Header: http.Header{}}, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Errorf("GET %s: %v", path, err)
	}
	return resp, string(body)
}

// token returns the session token the client holds, or "".
func (e *env) token() string {
	for _, c := range e.client.Jar.Cookies(mustURL(e.srv.URL)) {
		if c.Name == e.m.CookieName() {
			return c.Value
		}
	}
	return ""
}

// live returns how many live records the store holds.
func (e *env) live() int {
	e.t.Helper()
	if _, err := e.store.DeleteExpired(context.Background(), time.Now()); err != nil {
		e.t.Fatal(err)
	}
	return e.store.Len()
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
