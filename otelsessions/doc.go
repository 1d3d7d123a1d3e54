// Package otelsessions records the store calls of a
// github.com/sessionkit/sessions Manager as OpenTelemetry spans and
// metrics.
//
// Create an [Observer] with [New] and set it as the Manager's
// Options.Observer:
//
//	obs, err := otelsessions.New(&otelsessions.Options{StoreKind: "redis"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	m, err := sessions.New(store, &sessions.Options{Observer: obs})
//
// Start the request's span outside the sessions middleware (for example
// with otelhttp.NewHandler(m.Handler(mux), "server")): the store spans are
// children of the span in the request's context, and the store receives
// the store span's context, so that a store's own client instrumentation
// (a traced Redis or PostgreSQL driver) nests under it.
//
// # Spans
//
// Every store call is one span named "sessions.store " plus the operation:
// "sessions.store load", "sessions.store create", "sessions.store update",
// "sessions.store retire" (the renewal's update of the old record),
// "sessions.store touch", "sessions.store delete", and for the Manager's
// methods "sessions.store list-owner", "sessions.store delete-owner" and
// "sessions.store delete-expired". Its attributes:
//
//	sessions.store.operation  the operation, as in the name
//	sessions.store.outcome    found, not-found, created, exists, updated,
//	                          changed (lost a race), gone (ended
//	                          meanwhile), ok or error
//	sessions.store.attempt    1, or more when a save, renewal or
//	                          conflict-safe update re-applies its changes
//	sessions.store.kind       Options.StoreKind, if set
//	error.type                the error's type, for outcome error
//
// A failed call also gets the status Error and an exception event with
// the error's message. Session IDs and tokens are never recorded: the core
// passes none to the observer, and runs of hexadecimal digits as long as
// a half ID are cut out of error messages.
//
// The spans are of kind Internal, not Client: a store call is a logical
// operation of the application that may not leave the process (memstore,
// a cachestore hit), and a network store's driver instrumentation already
// emits the Client span of each round trip, as a child of this one;
// marking both Client would count every call twice in service graphs. For
// the same reason the spans carry sessions.store.kind rather than the
// database conventions' db.system.name, which describes a database client
// call.
//
// # Metrics
//
// Instruments, created once by [New] on the meter named [ScopeName]:
//
//	sessions.store.operation.duration  histogram, s: every store call, by
//	    operation, outcome, store kind (and error.type on failure)
//	sessions.created    counter, {session}: sessions created, renewals'
//	    new records included
//	sessions.saves      counter, {save}: changes written to existing
//	    sessions
//	sessions.conflicts  counter, {conflict}: saves (operation update) and
//	    renewals (operation retire) that lost a race to another request
//	    and re-apply their changes on fresh data
//	sessions.gone       counter, {session}: saves and renewals of sessions
//	    that another request ended meanwhile, which fail with
//	    ErrSessionGone (by operation)
//	sessions.touches    counter, {touch}: expiry-only writes of requests
//	    that only read their session
//
// The counters carry sessions.store.kind when it is set. The attempt is a
// span attribute only, to keep the metrics' cardinality low; a conflict
// shows in sessions.conflicts.
//
// # Cost
//
// A request that never touches its session makes no store call, so the
// Observer is never called: no span, no measurement, no allocation
// (BenchmarkUntouched compares the middleware with and without it). A
// request that reads its session pays for one span and one histogram
// point per store call.
package otelsessions
