package otelsessions_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/otelsessions"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// observers returns the configurations the benchmarks compare: no
// observer (the baseline), an observer on the no-op providers (what the
// global providers are until an SDK is installed), and one on the real
// SDK, sampling every span into a batch processor and aggregating every
// measurement.
func observers(b *testing.B) []struct {
	name string
	obs  sessions.Observer
} {
	noop, err := otelsessions.New(&otelsessions.Options{
		TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider(),
	})
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	sdk, err := otelsessions.New(&otelsessions.Options{TracerProvider: tp, MeterProvider: mp, StoreKind: "memory"})
	if err != nil {
		b.Fatal(err)
	}
	return []struct {
		name string
		obs  sessions.Observer
	}{{"plain", nil}, {"observer-noop", noop}, {"observer-sdk", sdk}}
}

// request returns a request for path that carries the cookie of a live
// session of h (set to "user": "alice").
func request(b *testing.B, h http.Handler, path string) *http.Request {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/set", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		b.Fatalf("setup: cookies %v", cookies)
	}
	r := httptest.NewRequest("GET", "https://example.com"+path, nil)
	r.AddCookie(cookies[0])
	return r
}

// BenchmarkUntouched serves a request with a session cookie whose handler
// never touches the session.
func BenchmarkUntouched(b *testing.B) { benchmarkPath(b, "/static") }

// BenchmarkRead serves a request that reads its session: one store load.
func BenchmarkRead(b *testing.B) { benchmarkPath(b, "/get") }

// benchmarkPath serves requests for path, carrying a live session's
// cookie, in each configuration of observers.
func benchmarkPath(b *testing.B, path string) {
	for _, c := range observers(b) {
		b.Run(c.name, func(b *testing.B) {
			m := newManager(b, c.obs)
			h := m.Handler(app())
			r := request(b, h, path)
			w := newDiscard()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
