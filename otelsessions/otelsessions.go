package otelsessions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sessionkit/sessions"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and meter: the
// import path of this package.
const ScopeName = "github.com/sessionkit/sessions/otelsessions"

// The attributes of spans and measurements.
const (
	// OperationKey is the store operation: a [sessions.StoreOp] such as
	// "load", "create", "update", "retire" or "touch".
	OperationKey = attribute.Key("sessions.store.operation")
	// OutcomeKey is what the call found or did: a [sessions.Outcome] such
	// as "found", "created", "updated", "changed", "gone" or "error".
	OutcomeKey = attribute.Key("sessions.store.outcome")
	// AttemptKey is the try of a save, renewal or conflict-safe update
	// ([sessions.StoreCall.Attempt]); spans only.
	AttemptKey = attribute.Key("sessions.store.attempt")
	// KindKey is [Options.StoreKind], when set.
	KindKey = attribute.Key("sessions.store.kind")
)

// The names of the metric instruments.
const (
	// DurationMetric is a histogram of the duration of store calls, in
	// seconds, with the operation, the outcome, the store kind and, for
	// failed calls, error.type.
	DurationMetric = "sessions.store.operation.duration"
	// CreatedMetric counts the sessions created: Create calls that
	// stored a new record, including the new record of a renewal.
	CreatedMetric = "sessions.created"
	// SavesMetric counts the saves of changes to existing sessions:
	// Update calls that wrote.
	SavesMetric = "sessions.saves"
	// ConflictsMetric counts the saves and renewals that lost a race to
	// another request and re-apply their changes on fresh data: Update
	// and retire calls with the outcome "changed".
	ConflictsMetric = "sessions.conflicts"
	// GoneMetric counts the saves and renewals of sessions that another
	// request ended meanwhile, which fail with [sessions.ErrSessionGone]:
	// Update and retire calls with the outcome "gone".
	GoneMetric = "sessions.gone"
	// TouchesMetric counts the expiry-only writes of requests that only
	// read their session: Touch calls that found it.
	TouchesMetric = "sessions.touches"
)

// durationBuckets are the bucket boundaries of the duration histogram, in
// seconds: OpenTelemetry's for database client calls, plus two below a
// millisecond for in-process and cached stores.
var durationBuckets = []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// Options configures an [Observer]. The zero value uses the global
// providers and records no store kind.
type Options struct {
	// TracerProvider creates the tracer of store spans. Nil means the
	// global one, otel.GetTracerProvider().
	TracerProvider trace.TracerProvider

	// MeterProvider creates the meter of the instruments. Nil means the
	// global one, otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// StoreKind names the store for the sessions.store.kind attribute,
	// such as "redis", "postgresql", "mysql", "sqlite", "memory" or
	// "cache+redis". Empty means no such attribute.
	StoreKind string
}

// An Observer records the store calls of a [sessions.Manager] as
// OpenTelemetry spans and metrics. Set it as the Manager's
// [sessions.Options.Observer]. Create one with [New]; it is safe for
// concurrent use and may serve several Managers.
//
// Each store call becomes a span named "sessions.store " plus the
// operation (for example "sessions.store load"), of kind Internal, a child
// of the span in the request's context, with the attributes
// sessions.store.operation, sessions.store.outcome,
// sessions.store.attempt and sessions.store.kind. A failed call gets the
// status Error, error.type and an exception event. Session IDs and tokens
// are never recorded: the store's error message is recorded with every
// run of 32 or more hexadecimal digits (an ID or a part of one) replaced
// by "[redacted]".
//
// A request that never touches its session makes no store call, so it
// records nothing and costs nothing.
type Observer struct {
	tracer    trace.Tracer
	spanStart []trace.SpanStartOption // kind and store kind, shared by every span
	kind      attribute.KeyValue
	hasKind   bool
	// startOpts are the complete start options of the first attempts of
	// the known operations, computed once.
	startOpts map[startKey][]trace.SpanStartOption

	duration  metric.Float64Histogram
	created   metric.Int64Counter
	saves     metric.Int64Counter
	conflicts metric.Int64Counter
	gone      metric.Int64Counter
	touches   metric.Int64Counter

	// Measurement options computed once, for the common combinations,
	// as slices so that passing them allocates nothing.
	durationOpts map[resultKey][]metric.RecordOption
	kindOnly     []metric.AddOption
	opOpts       map[sessions.StoreOp][]metric.AddOption
}

type resultKey struct {
	op      sessions.StoreOp
	outcome sessions.Outcome
}

type startKey struct {
	op      sessions.StoreOp
	attempt int
}

// preparedAttempts is how many attempts of each operation get start
// options computed in advance; later ones compute theirs.
const preparedAttempts = 4

var _ sessions.Observer = (*Observer)(nil)

// The operations and outcomes whose measurement attributes New computes in
// advance.
var (
	knownOps = []sessions.StoreOp{
		sessions.OpLoad, sessions.OpCreate, sessions.OpUpdate, sessions.OpRetire,
		sessions.OpTouch, sessions.OpDelete, sessions.OpListOwner,
		sessions.OpDeleteOwner, sessions.OpDeleteExpired,
	}
	knownOutcomes = []sessions.Outcome{
		sessions.OutcomeFound, sessions.OutcomeNotFound, sessions.OutcomeCreated,
		sessions.OutcomeExists, sessions.OutcomeUpdated, sessions.OutcomeChanged,
		sessions.OutcomeGone, sessions.OutcomeOK,
	}
)

// New returns an Observer that records with the providers of opts. A nil
// opts means the zero [Options]. It returns an error if the meter cannot
// create an instrument.
func New(opts *Options) (*Observer, error) {
	if opts == nil {
		opts = &Options{}
	}
	tp, mp := opts.TracerProvider, opts.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	o := &Observer{tracer: tp.Tracer(ScopeName)}
	o.spanStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	if opts.StoreKind != "" {
		o.kind, o.hasKind = KindKey.String(opts.StoreKind), true
		o.spanStart = append(o.spanStart, trace.WithAttributes(o.kind))
	}

	meter := mp.Meter(ScopeName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	o.created = counter(CreatedMetric, "{session}", "Sessions created (including the new record of each renewal).")
	o.saves = counter(SavesMetric, "{save}", "Changes to existing sessions written to the store.")
	o.conflicts = counter(ConflictsMetric, "{conflict}", "Saves and renewals that lost a race and re-apply their changes on fresh data.")
	o.gone = counter(GoneMetric, "{session}", "Saves and renewals of sessions that another request ended meanwhile (ErrSessionGone).")
	o.touches = counter(TouchesMetric, "{touch}", "Expiry-only writes for requests that only read their session.")
	var err error
	o.duration, err = meter.Float64Histogram(DurationMetric,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of session store calls."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("otelsessions: create instruments: %w", err)
	}

	o.kindOnly = []metric.AddOption{metric.WithAttributeSet(o.attrs())}
	o.opOpts = make(map[sessions.StoreOp][]metric.AddOption, len(knownOps))
	o.durationOpts = make(map[resultKey][]metric.RecordOption, len(knownOps)*len(knownOutcomes))
	o.startOpts = make(map[startKey][]trace.SpanStartOption, len(knownOps)*preparedAttempts)
	for _, op := range knownOps {
		o.opOpts[op] = []metric.AddOption{metric.WithAttributeSet(o.attrs(OperationKey.String(string(op))))}
		for _, out := range knownOutcomes {
			o.durationOpts[resultKey{op, out}] = []metric.RecordOption{metric.WithAttributeSet(o.attrs(
				OperationKey.String(string(op)), OutcomeKey.String(string(out))))}
		}
		for attempt := 1; attempt <= preparedAttempts; attempt++ {
			o.startOpts[startKey{op, attempt}] = o.newStartOpts(op, attempt)
		}
	}
	return o, nil
}

// newStartOpts returns the start options of a span for op's attempt: its
// kind and the attributes known at the start, where samplers see them.
func (o *Observer) newStartOpts(op sessions.StoreOp, attempt int) []trace.SpanStartOption {
	return append(o.spanStart[:len(o.spanStart):len(o.spanStart)],
		trace.WithAttributes(OperationKey.String(string(op)), AttemptKey.Int(attempt)))
}

// attrs returns the set of kvs plus the store kind, if any.
func (o *Observer) attrs(kvs ...attribute.KeyValue) attribute.Set {
	if o.hasKind {
		kvs = append(kvs, o.kind)
	}
	return attribute.NewSet(kvs...)
}

// spanNames are the span names of the known operations.
var spanNames = func() map[sessions.StoreOp]string {
	m := make(map[sessions.StoreOp]string, len(knownOps))
	for _, op := range knownOps {
		m[op] = spanName(op)
	}
	return m
}()

func spanName(op sessions.StoreOp) string { return "sessions.store " + string(op) }

// StoreCall starts the span of one store call and returns its context,
// which the store receives, and the function that ends the span and
// records the call's measurements. It implements [sessions.Observer].
func (o *Observer) StoreCall(ctx context.Context, call sessions.StoreCall) (context.Context, func(sessions.StoreResult)) {
	start := time.Now()
	name, ok := spanNames[call.Op]
	if !ok {
		name = spanName(call.Op)
	}
	opts, ok := o.startOpts[startKey{call.Op, call.Attempt}]
	if !ok {
		opts = o.newStartOpts(call.Op, call.Attempt)
	}
	ctx, span := o.tracer.Start(ctx, name, opts...)
	return ctx, func(res sessions.StoreResult) {
		elapsed := time.Since(start).Seconds()
		end(span, res)
		o.record(ctx, call.Op, res, elapsed)
	}
}

// end sets the outcome of the span and ends it.
func end(span trace.Span, res sessions.StoreResult) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(OutcomeKey.String(string(res.Outcome)))
	if res.Outcome == sessions.OutcomeError {
		msg := "store failed"
		if res.Err != nil {
			msg = redact(res.Err.Error())
			span.SetAttributes(semconv.ErrorType(res.Err))
			span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
				semconv.ExceptionType(semconv.ErrorType(res.Err).Value.AsString()),
				semconv.ExceptionMessage(msg)))
		}
		span.SetStatus(codes.Error, msg)
	}
	span.End()
}

// record adds the measurements of one store call.
func (o *Observer) record(ctx context.Context, op sessions.StoreOp, res sessions.StoreResult, seconds float64) {
	if res.Outcome == sessions.OutcomeError {
		kvs := []attribute.KeyValue{
			OperationKey.String(string(op)), OutcomeKey.String(string(res.Outcome)),
			semconv.ErrorType(res.Err),
		}
		o.duration.Record(ctx, seconds, metric.WithAttributeSet(o.attrs(kvs...)))
		return
	}
	opts, ok := o.durationOpts[resultKey{op, res.Outcome}]
	if !ok {
		opts = []metric.RecordOption{metric.WithAttributeSet(o.attrs(
			OperationKey.String(string(op)), OutcomeKey.String(string(res.Outcome))))}
	}
	o.duration.Record(ctx, seconds, opts...)

	switch {
	case op == sessions.OpCreate && res.Outcome == sessions.OutcomeCreated:
		o.created.Add(ctx, 1, o.kindOnly...)
	case op == sessions.OpUpdate && res.Outcome == sessions.OutcomeUpdated:
		o.saves.Add(ctx, 1, o.kindOnly...)
	case op == sessions.OpTouch && res.Outcome == sessions.OutcomeFound:
		o.touches.Add(ctx, 1, o.kindOnly...)
	case (op == sessions.OpUpdate || op == sessions.OpRetire) && res.Outcome == sessions.OutcomeChanged:
		o.conflicts.Add(ctx, 1, o.opOpts[op]...)
	case (op == sessions.OpUpdate || op == sessions.OpRetire) && res.Outcome == sessions.OutcomeGone:
		o.gone.Add(ctx, 1, o.opOpts[op]...)
	}
}

// redactMin is the shortest run of hexadecimal digits that redact hides:
// store IDs are 64 of them, and no shorter part of one half as long is
// recorded either.
const redactMin = 32

// redact replaces every run of at least redactMin hexadecimal digits in
// msg with "[redacted]", so that a store error quoting a session ID does
// not carry it into the telemetry.
func redact(msg string) string {
	var out []byte
	last, run := 0, 0
	for i := 0; i <= len(msg); i++ {
		if i < len(msg) && isHex(msg[i]) {
			run++
			continue
		}
		if run >= redactMin {
			out = append(out, msg[last:i-run]...)
			out = append(out, "[redacted]"...)
			last = i
		}
		run = 0
	}
	if out == nil {
		return msg
	}
	return string(append(out, msg[last:]...))
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
