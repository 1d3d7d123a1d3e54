package otelsessions_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/otelsessions"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	durLoadFound    = otelsessions.DurationMetric + " operation=load outcome=found"
	durCreated      = otelsessions.DurationMetric + " operation=create outcome=created"
	durUpdated      = otelsessions.DurationMetric + " operation=update outcome=updated"
	durDeleteOK     = otelsessions.DurationMetric + " operation=delete outcome=ok"
	durRetired      = otelsessions.DurationMetric + " operation=retire outcome=updated"
	conflictsUpdate = otelsessions.ConflictsMetric + " operation=update"
	conflictsRetire = otelsessions.ConflictsMetric + " operation=retire"
	errType         = "error.type=*errors.errorString"
)

// TestStoreCalls runs requests through a real Manager on a memstore, with
// the real OpenTelemetry SDK, and checks the store spans of the measured
// request (their operation, outcome and attempt, in order, and that they
// are children of the application's request span), the metrics it added,
// and what reached the client and the store.
func TestStoreCalls(t *testing.T) {
	tests := []struct {
		name    string
		opts    sessions.Options
		setup   []string     // requests before the measured one
		arrange func(e *env) // after setup: hooks, failures, waits
		path    string       // the measured request
		code    int
		spans   []string // the measured request's store spans: "op outcome attempt [status]"
		metrics map[string]int64
		check   func(t *testing.T, e *env, oldToken string, resp *http.Response, body string)
	}{{
		name:  "new session",
		path:  "/set",
		code:  http.StatusOK,
		spans: []string{"create created 1"},
		metrics: map[string]int64{
			otelsessions.CreatedMetric: 1, durCreated: 1,
		},
		check: func(t *testing.T, e *env, _ string, resp *http.Response, _ string) {
			if !hasCookie(resp, e.m.CookieName()) {
				t.Errorf("no session cookie on the wire: %q", resp.Header.Values("Set-Cookie"))
			}
			if n := e.live(); n != 1 {
				t.Errorf("store holds %d live records, want 1", n)
			}
			if _, body := e.get("/get"); body != "alice" {
				t.Errorf("read back %q, want alice", body)
			}
		},
	}, {
		name:    "read",
		setup:   []string{"/set"},
		path:    "/get",
		code:    http.StatusOK,
		spans:   []string{"load found 1"},
		metrics: map[string]int64{durLoadFound: 1},
		check: func(t *testing.T, e *env, _ string, resp *http.Response, body string) {
			if body != "alice" {
				t.Errorf("body %q, want alice", body)
			}
			if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Errorf("a read sent cookies: %q", c)
			}
		},
	}, {
		name:  "increment",
		setup: []string{"/set"},
		path:  "/incr",
		code:  http.StatusOK,
		spans: []string{"load found 1", "update updated 1"},
		metrics: map[string]int64{
			otelsessions.SavesMetric: 1, durLoadFound: 1, durUpdated: 1,
		},
		check: func(t *testing.T, e *env, _ string, _ *http.Response, body string) {
			if body != "1" {
				t.Errorf("body %q, want 1", body)
			}
			if _, all := e.get("/all"); all != "n=1 user=alice " {
				t.Errorf("read back %q", all)
			}
		},
	}, {
		name:  "touch",
		opts:  sessions.Options{IdleTimeout: time.Hour, TouchInterval: time.Millisecond},
		setup: []string{"/set"},
		// The Manager's clock has millisecond steps: after 2 ms the idle
		// deadline moves by at least the 1 ms touch interval.
		arrange: func(*env) { time.Sleep(2 * time.Millisecond) },
		path:    "/get",
		code:    http.StatusOK,
		spans:   []string{"load found 1", "touch found 1"},
		metrics: map[string]int64{
			otelsessions.TouchesMetric: 1, durLoadFound: 1,
			otelsessions.DurationMetric + " operation=touch outcome=found": 1,
		},
		check: func(t *testing.T, e *env, _ string, resp *http.Response, _ string) {
			if !hasCookie(resp, e.m.CookieName()) {
				t.Errorf("the touch sent no cookie: %q", resp.Header.Values("Set-Cookie"))
			}
		},
	}, {
		// Another request writes between this one's load and its save:
		// the save finds the record changed, reloads, re-applies its Set
		// and saves in a second attempt.
		name:  "conflict",
		setup: []string{"/set"},
		arrange: func(e *env) {
			e.store.at(isSave, func() { e.get("/incr") })
		},
		path:  "/color",
		code:  http.StatusOK,
		spans: []string{"load found 1", "update changed 1", "load found 1", "update updated 2"},
		metrics: map[string]int64{
			otelsessions.SavesMetric: 2, conflictsUpdate: 1,
			durLoadFound: 3, durUpdated: 2,
			otelsessions.DurationMetric + " operation=update outcome=changed": 1,
		},
		check: func(t *testing.T, e *env, _ string, _ *http.Response, _ string) {
			if _, all := e.get("/all"); all != "color=blue n=1 user=alice " {
				t.Errorf("read back %q: a write was lost", all)
			}
		},
	}, {
		name:  "renewal",
		setup: []string{"/set"},
		path:  "/login",
		code:  http.StatusOK,
		spans: []string{"load found 1", "create created 1", "retire updated 1", "delete ok 1"},
		metrics: map[string]int64{
			otelsessions.CreatedMetric: 1,
			durLoadFound:               1, durCreated: 1, durRetired: 1, durDeleteOK: 1,
		},
		check: func(t *testing.T, e *env, old string, _ *http.Response, _ string) {
			if tok := e.token(); tok == "" || tok == old {
				t.Errorf("token after renewal %q, before %q", tok, old)
			}
			if n := e.live(); n != 1 {
				t.Errorf("store holds %d live records, want 1", n)
			}
			if _, body := e.get("/get"); body != "alice" {
				t.Errorf("read back %q, want alice", body)
			}
		},
	}, {
		// Another request writes before the renewal retires the old
		// record: the retirement finds it changed, the new record is
		// deleted, and the renewal starts over on the fresh data.
		name:  "renewal racing a write",
		setup: []string{"/set"},
		arrange: func(e *env) {
			e.store.at(isRetire, func() { e.get("/incr") })
		},
		path: "/login",
		code: http.StatusOK,
		spans: []string{
			"load found 1", "create created 1", "retire changed 1", "delete ok 1",
			"load found 1", "create created 1", "retire updated 2", "delete ok 1",
		},
		metrics: map[string]int64{
			otelsessions.CreatedMetric: 2, otelsessions.SavesMetric: 1, conflictsRetire: 1,
			durLoadFound: 3, durCreated: 2, durRetired: 1, durDeleteOK: 2, durUpdated: 1,
			otelsessions.DurationMetric + " operation=retire outcome=changed": 1,
		},
		check: func(t *testing.T, e *env, _ string, _ *http.Response, _ string) {
			if n := e.live(); n != 1 {
				t.Errorf("store holds %d live records, want 1", n)
			}
			if _, all := e.get("/all"); all != "n=1 user=alice " {
				t.Errorf("read back %q: the write was not carried over", all)
			}
		},
	}, {
		name:    "destroy",
		setup:   []string{"/set"},
		path:    "/logout",
		code:    http.StatusOK,
		spans:   []string{"load found 1", "delete ok 1"},
		metrics: map[string]int64{durLoadFound: 1, durDeleteOK: 1},
		check: func(t *testing.T, e *env, _ string, resp *http.Response, _ string) {
			if c := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); !strings.Contains(c, "Max-Age=0") {
				t.Errorf("no removal cookie on the wire: %q", c)
			}
			if n := e.live(); n != 0 {
				t.Errorf("store holds %d live records, want 0", n)
			}
		},
	}, {
		// Another request logs out between this one's load and its save.
		name:  "session gone",
		setup: []string{"/set"},
		arrange: func(e *env) {
			e.store.at(isSave, func() { e.get("/logout") })
		},
		path:  "/color",
		code:  http.StatusConflict,
		spans: []string{"load found 1", "update gone 1"},
		metrics: map[string]int64{
			otelsessions.GoneMetric + " operation=update": 1,
			durLoadFound: 2, durDeleteOK: 1,
			otelsessions.DurationMetric + " operation=update outcome=gone": 1,
		},
		check: func(t *testing.T, e *env, _ string, _ *http.Response, _ string) {
			if n := e.live(); n != 0 {
				t.Errorf("store holds %d live records, want 0", n)
			}
		},
	}, {
		name:    "failing load",
		setup:   []string{"/set"},
		arrange: func(e *env) { e.store.failing("Load") },
		path:    "/get",
		code:    http.StatusInternalServerError,
		spans:   []string{"load error 1 Error"},
		metrics: map[string]int64{
			otelsessions.DurationMetric + " " + errType + " operation=load outcome=error": 1,
		},
	}, {
		name:    "failing save",
		setup:   []string{"/set"},
		arrange: func(e *env) { e.store.failing("Update") },
		path:    "/color",
		code:    http.StatusInternalServerError,
		spans:   []string{"load found 1", "update error 1 Error"},
		metrics: map[string]int64{
			durLoadFound: 1,
			otelsessions.DurationMetric + " " + errType + " operation=update outcome=error": 1,
		},
		check: func(t *testing.T, e *env, _ string, _ *http.Response, _ string) {
			if _, all := e.get("/all"); all != "user=alice " {
				t.Errorf("read back %q", all)
			}
		},
	}, {
		name:    "failing create",
		arrange: func(e *env) { e.store.failing("Create") },
		path:    "/set",
		code:    http.StatusInternalServerError,
		spans:   []string{"create error 1 Error"},
		metrics: map[string]int64{
			otelsessions.DurationMetric + " " + errType + " operation=create outcome=error": 1,
		},
		check: func(t *testing.T, e *env, _ string, resp *http.Response, _ string) {
			if hasCookie(resp, e.m.CookieName()) {
				t.Errorf("a failed create sent a cookie")
			}
			if n := e.live(); n != 0 {
				t.Errorf("store holds %d live records, want 0", n)
			}
		},
	}, {
		name:    "untouched",
		setup:   []string{"/set"},
		path:    "/static",
		code:    http.StatusOK,
		spans:   nil,
		metrics: map[string]int64{},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			for _, p := range tc.setup {
				if resp, body := e.get(p); resp.StatusCode != http.StatusOK {
					t.Fatalf("setup %s: %d %s", p, resp.StatusCode, body)
				}
			}
			if tc.arrange != nil {
				tc.arrange(e)
			}
			tokens := []string{e.token()}
			before := e.tel.collect(t)
			e.tel.spans.Reset()

			resp, body := e.get(tc.path)
			if resp.StatusCode != tc.code {
				t.Errorf("GET %s: %d %q, want %d", tc.path, resp.StatusCode, body, tc.code)
			}
			tokens = append(tokens, e.token())

			spans := e.tel.spans.GetSpans()
			got := childrenOf(t, spans, "request "+tc.path)
			if !slices.Equal(got, tc.spans) {
				t.Errorf("store spans of %s:\n got %q\nwant %q", tc.path, got, tc.spans)
			}
			checkStoreSpans(t, spans)
			checkNoSecrets(t, spans, tokens)
			if got := diff(before, e.tel.collect(t)); !maps.Equal(got, tc.metrics) {
				t.Errorf("metrics added:\n got %v\nwant %v", got, tc.metrics)
			}
			if tc.check != nil {
				tc.check(t, e, tokens[0], resp, body)
			}
		})
	}
}

// childrenOf returns the store spans whose parent is the one span named
// parent, described in the order they ended.
func childrenOf(t *testing.T, spans tracetest.SpanStubs, parent string) []string {
	t.Helper()
	var p *tracetest.SpanStub
	for i := range spans {
		if spans[i].Name == parent {
			if p != nil {
				t.Fatalf("two spans named %q", parent)
			}
			p = &spans[i]
		}
	}
	if p == nil {
		t.Fatalf("no span named %q", parent)
	}
	var out []string
	for _, s := range spans {
		if s.InstrumentationScope.Name == otelsessions.ScopeName && s.Parent.SpanID() == p.SpanContext.SpanID() {
			if s.Parent.TraceID() != p.SpanContext.TraceID() {
				t.Errorf("%s: trace %v, parent's %v", s.Name, s.Parent.TraceID(), p.SpanContext.TraceID())
			}
			out = append(out, describe(s))
		}
	}
	return out
}

// checkStoreSpans checks what every store span must satisfy: a request
// span as parent, its name, kind, store kind, and the status and event of
// a failure.
func checkStoreSpans(t *testing.T, spans tracetest.SpanStubs) {
	t.Helper()
	requests := map[trace.SpanID]bool{}
	for _, s := range spans {
		if strings.HasPrefix(s.Name, "request ") {
			requests[s.SpanContext.SpanID()] = true
		}
	}
	for _, s := range spans {
		if s.InstrumentationScope.Name != otelsessions.ScopeName {
			continue
		}
		attrs := attribute.NewSet(s.Attributes...)
		op, _ := attrs.Value(otelsessions.OperationKey)
		outcome, _ := attrs.Value(otelsessions.OutcomeKey)
		if want := "sessions.store " + op.AsString(); s.Name != want {
			t.Errorf("span %q, want %q", s.Name, want)
		}
		if !requests[s.Parent.SpanID()] {
			t.Errorf("%s: parent %v is no request span", s.Name, s.Parent.SpanID())
		}
		if s.SpanKind != trace.SpanKindInternal {
			t.Errorf("%s: kind %v, want internal", s.Name, s.SpanKind)
		}
		if v, _ := attrs.Value(otelsessions.KindKey); v.AsString() != "memory" {
			t.Errorf("%s: %s=%q, want memory", s.Name, otelsessions.KindKey, v.String())
		}
		failed := outcome.AsString() == string(sessions.OutcomeError)
		if failed != (s.Status.Code == codes.Error) {
			t.Errorf("%s: outcome %s, status %v", s.Name, outcome.String(), s.Status)
		}
		if !failed {
			continue
		}
		if !strings.Contains(s.Status.Description, "connection refused") {
			t.Errorf("%s: status description %q lacks the error", s.Name, s.Status.Description)
		}
		if et, _ := attrs.Value("error.type"); et.AsString() != "*errors.errorString" {
			t.Errorf("%s: error.type %q", s.Name, et.String())
		}
		if len(s.Events) != 1 || s.Events[0].Name != "exception" {
			t.Errorf("%s: events %v, want one exception", s.Name, s.Events)
		}
	}
}

// checkNoSecrets checks that no span records a session token or ID (or a
// 16-character part of an ID) in its name, attributes, events or status.
func checkNoSecrets(t *testing.T, spans tracetest.SpanStubs, tokens []string) {
	t.Helper()
	var secrets []string
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatalf("token %q: %v", tok, err)
		}
		sum := sha256.Sum256(raw)
		id := hex.EncodeToString(sum[:])
		secrets = append(secrets, tok, id[:16], id[24:40], id[48:])
	}
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, kv.Value.String())
		}
		for _, ev := range s.Events {
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.String())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %s records %q, part of a session token or ID", s.Name, text)
				}
			}
		}
	}
}

func hasCookie(resp *http.Response, name string) bool {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

// TestUntouchedRecordsNothing checks that requests that never touch their
// session, with or without a session cookie, produce no span and no
// metric point.
func TestUntouchedRecordsNothing(t *testing.T) {
	tel := newTelemetry(t)
	store, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A session made by a Manager without the observer, on the same store.
	plain, err := sessions.New(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	plain.Handler(app()).ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/set", nil))
	cookie := rec.Result().Cookies()
	if len(cookie) != 1 {
		t.Fatalf("setup: cookies %v", cookie)
	}

	observed, err := sessions.New(store, &sessions.Options{Observer: tel.observer(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := observed.Handler(app())
	for _, withCookie := range []bool{false, true} {
		r := httptest.NewRequest("GET", "https://example.com/static", nil)
		if withCookie {
			r.AddCookie(cookie[0])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK || rec.Body.String() != "static" {
			t.Fatalf("cookie %v: %d %q", withCookie, rec.Code, rec.Body)
		}
	}
	if n := len(tel.spans.GetSpans()); n != 0 {
		t.Errorf("untouched requests made %d spans", n)
	}
	if n := tel.points(t); n != 0 {
		t.Errorf("untouched requests made %d metric points", n)
	}

	// The same requests, touching the session, do record: the test can fail.
	r := httptest.NewRequest("GET", "https://example.com/get", nil)
	r.AddCookie(cookie[0])
	h.ServeHTTP(httptest.NewRecorder(), r)
	if len(tel.spans.GetSpans()) == 0 || tel.points(t) == 0 {
		t.Error("a read recorded nothing")
	}
}

// TestUntouchedAllocs checks that the observer adds no allocation to a
// request that never touches its session.
func TestUntouchedAllocs(t *testing.T) {
	tel := newTelemetry(t)
	allocs := func(obs sessions.Observer) float64 {
		m := newManager(t, obs)
		h := m.Handler(app())
		w := newDiscard()
		r := httptest.NewRequest("GET", "https://example.com/static", nil)
		r.AddCookie(&http.Cookie{Name: m.CookieName(), Value: strings.Repeat("A", 43)})
		return testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) })
	}
	without, with := allocs(nil), allocs(tel.observer(t))
	if with != without {
		t.Errorf("untouched request: %v allocations with the observer, %v without", with, without)
	}
	if n := len(tel.spans.GetSpans()); n != 0 {
		t.Errorf("untouched requests made %d spans", n)
	}
}

func newManager(t testing.TB, obs sessions.Observer) *sessions.Manager {
	t.Helper()
	store, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessions.New(store, &sessions.Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// discard is a ResponseWriter that keeps nothing, reusable across
// requests.
type discard struct{ h http.Header }

func newDiscard() *discard { return &discard{h: http.Header{}} }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             { clear(d.h) }

// TestManagerMethods checks the spans of the Manager's own store calls:
// children of the span in the context the application passes.
func TestManagerMethods(t *testing.T) {
	e := newEnv(t, sessions.Options{})
	if resp, _ := e.get("/login"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	e.tel.spans.Reset()
	ctx, span := e.tel.tp.Tracer("app").Start(context.Background(), "admin")
	n, err := e.m.DestroyOwner(ctx, "alice")
	if err != nil || n != 1 {
		t.Fatalf("DestroyOwner: %d, %v", n, err)
	}
	if _, err := e.m.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	span.End()
	var got []string
	for _, s := range e.tel.storeSpans() {
		if s.Parent.SpanID() != span.SpanContext().SpanID() {
			t.Errorf("%s: parent %v, want the admin span", s.Name, s.Parent.SpanID())
		}
		got = append(got, s.Name+" "+describe(s))
	}
	want := []string{
		"sessions.store delete-owner delete-owner ok 1",
		"sessions.store list-owner list-owner ok 1",
		"sessions.store delete-expired delete-expired ok 1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("spans\n got %q\nwant %q", got, want)
	}
	if n := e.live(); n != 0 {
		t.Errorf("store holds %d live records after DestroyOwner", n)
	}
}

// TestGlobalProviders checks that nil Options record with the global
// providers, without a store kind.
func TestGlobalProviders(t *testing.T) {
	tel := newTelemetry(t)
	tp, mp := otel.GetTracerProvider(), otel.GetMeterProvider()
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetMeterProvider(mp)
	})
	obs, err := otelsessions.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, obs)
	m.Handler(app()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://example.com/set", nil))
	spans := tel.storeSpans()
	if len(spans) != 1 || describe(spans[0]) != "create created 1" {
		t.Fatalf("spans %v", spans)
	}
	for _, kv := range spans[0].Attributes {
		if kv.Key == otelsessions.KindKey {
			t.Errorf("store kind %q recorded without Options.StoreKind", kv.Value.String())
		}
	}
	if n := tel.points(t); n != 2 { // sessions.created and the duration
		t.Errorf("%d metric points, want 2", n)
	}
}
