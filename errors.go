package sessions

import (
	"errors"
	"strconv"
)

// Errors returned by the Session accessors and passed to
// [Options.ErrorHandler]. Match them with [errors.Is]; their text is stable.
var (
	// ErrNoSession is returned by every accessor of a nil *Session, which is
	// what [FromContext] returns for a request that did not pass through
	// [Manager.Handler].
	ErrNoSession = errors.New("sessions: no session in context (is the middleware installed?)")

	// ErrSessionGone means the session was destroyed or renewed by another
	// request between this request's load and its save. The changes of this
	// request are dropped rather than resurrect the session.
	ErrSessionGone = errors.New("sessions: session ended by another request")

	// ErrConflict means a save kept colliding with concurrent writes to the
	// same session: it re-applied its changes on fresh data and tried again
	// for 5 seconds (and at least 10 times) after its first lost race, and
	// every attempt lost to another request's write.
	ErrConflict = errors.New("sessions: concurrent update conflict")

	// ErrCommitted is returned by a change made after the response headers
	// were written: the session was saved with those headers, so a later
	// change can no longer be saved or sent.
	ErrCommitted = errors.New("sessions: session changed after the response headers were written")

	// ErrNotSupported is returned by Manager methods that need an optional
	// Store capability ([OwnerIndex], [ExpiredDeleter]) the store lacks.
	ErrNotSupported = errors.New("sessions: operation not supported by the store")

	// ErrInvalidOptions is wrapped by every error [New] returns for invalid
	// [Options].
	ErrInvalidOptions = errors.New("sessions: invalid options")

	// ErrStore is wrapped, together with the store's own error, by every
	// failure of a store call.
	ErrStore = errors.New("sessions: store failure")

	// ErrIDCollision is returned when freshly generated session IDs
	// repeatedly collided with existing ones, which means the random source
	// or the store is broken.
	ErrIDCollision = errors.New("sessions: session ID collision")
)

// TooLargeError is returned when a change would make the encoded session
// larger than [Options.MaxDataSize]. The change is not applied.
type TooLargeError struct {
	Size  int // encoded size the change would produce, in bytes
	Limit int // the configured limit, in bytes
}

func (e *TooLargeError) Error() string {
	return "sessions: session data too large: " + strconv.Itoa(e.Size) + " bytes, limit " + strconv.Itoa(e.Limit)
}
