package sessions

import "context"

// An Observer watches the store calls of a [Manager], for tracing and
// metrics; package github.com/sessionkit/sessions/otelsessions adapts it to
// OpenTelemetry. Set it in [Options.Observer]. A request that never touches
// its session makes no store call, so it is never observed and costs
// nothing.
//
// StoreCall is called before each store call with the request's context
// (or the context given to a Manager method); the context it returns is the
// one the store receives, so that a span started there is the parent of the
// store's own. The returned function, if not nil, is called exactly once,
// when the call has returned. Both may be called from several goroutines at
// once.
type Observer interface {
	StoreCall(ctx context.Context, call StoreCall) (context.Context, func(StoreResult))
}

// StoreCall describes one store call to an [Observer].
type StoreCall struct {
	Op StoreOp
	// Attempt counts the tries of one save, renewal or conflict-safe
	// update: 1 for the first, more when the request lost a race and
	// re-applies its changes on fresh data.
	Attempt int
}

// StoreOp names the operation of a store call.
type StoreOp string

// The operations an [Observer] sees.
const (
	OpLoad          StoreOp = "load"
	OpCreate        StoreOp = "create"
	OpUpdate        StoreOp = "update"
	OpRetire        StoreOp = "retire" // the Update that retires a renewed session's old record
	OpTouch         StoreOp = "touch"
	OpDelete        StoreOp = "delete"
	OpListOwner     StoreOp = "list-owner"
	OpDeleteOwner   StoreOp = "delete-owner"
	OpDeleteExpired StoreOp = "delete-expired"
)

// StoreResult is the outcome of one store call.
type StoreResult struct {
	Outcome Outcome
	Err     error // the store's error when Outcome is OutcomeError
}

// Outcome is what a store call found or did.
type Outcome string

// The outcomes of store calls.
const (
	OutcomeFound    Outcome = "found"     // Load, Touch: a live record
	OutcomeNotFound Outcome = "not-found" // Load, Touch: none
	OutcomeCreated  Outcome = "created"   // Create: stored
	OutcomeExists   Outcome = "exists"    // Create: the ID was taken (a collision)
	OutcomeUpdated  Outcome = "updated"   // Update, retire: written
	OutcomeChanged  Outcome = "changed"   // Update, retire: another request wrote first (a conflict)
	OutcomeGone     Outcome = "gone"      // Update, retire: the session was ended meanwhile
	OutcomeOK       Outcome = "ok"        // Delete, ListOwner, DeleteOwner, DeleteExpired
	OutcomeError    Outcome = "error"     // the store failed; see StoreResult.Err
)

// pick returns yes if cond holds, else no.
func pick(cond bool, yes, no Outcome) Outcome {
	if cond {
		return yes
	}
	return no
}

// updateOutcome is the outcome of an Update that reported updated and found.
func updateOutcome(updated, found bool) Outcome {
	switch {
	case updated:
		return OutcomeUpdated
	case found:
		return OutcomeChanged
	}
	return OutcomeGone
}
