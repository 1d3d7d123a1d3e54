package otelsessions_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/otelsessions"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A Manager with an Observer: its first request creates a session, the
// second reads and updates it. The SDK here keeps spans in memory and
// metrics for a manual read; an application exports them instead (OTLP,
// Prometheus, ...) and usually installs its providers globally, so that
// New(nil) finds them.
func Example() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	obs, err := otelsessions.New(&otelsessions.Options{
		TracerProvider: tp,
		MeterProvider:  mp,
		StoreKind:      "memory",
	})
	if err != nil {
		log.Fatal(err)
	}
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.New(store, &sessions.Options{Observer: obs})
	if err != nil {
		log.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "visits", func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "visit %d", n)
	}))

	first := httptest.NewRecorder()
	h.ServeHTTP(first, httptest.NewRequest("GET", "https://example.com/", nil))
	second := httptest.NewRequest("GET", "https://example.com/", nil)
	for _, c := range first.Result().Cookies() {
		second.AddCookie(c)
	}
	h.ServeHTTP(httptest.NewRecorder(), second)

	for _, s := range spans.GetSpans() {
		attrs := attribute.NewSet(s.Attributes...)
		outcome, _ := attrs.Value(otelsessions.OutcomeKey)
		fmt.Println(s.Name, outcome.AsString())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	var counters []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range sum.DataPoints {
					counters = append(counters, fmt.Sprintf("%s %d", m.Name, p.Value))
				}
			}
		}
	}
	slices.Sort(counters)
	for _, c := range counters {
		fmt.Println(c)
	}
	// Output:
	// sessions.store create created
	// sessions.store load found
	// sessions.store update updated
	// sessions.created 1
	// sessions.saves 1
}
