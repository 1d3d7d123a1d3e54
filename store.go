package sessions

import (
	"context"
	"time"
)

// Store persists session records. It is the contract between the [Manager]
// and a storage backend; [github.com/sessionkit/sessions/memstore] is its
// reference implementation and [github.com/sessionkit/sessions/sessiontest]
// checks any implementation against every clause below.
//
// The interface uses only standard-library types, so a store module need not
// import this package.
//
// # Records
//
// A record is an opaque byte slice (data), a version, an expiry and an owner.
// The Manager encodes and decodes data; a store never looks inside it and must
// return it byte for byte as written (including an empty, non-nil slice).
//
// IDs arrive already hashed: an id is the lower-case hexadecimal SHA-256 of the
// session token, 64 characters of [0-9a-f]. A store never sees a live token,
// so a dump of the store reveals none. A store may rely on this format (for
// example to keep ids in a BINARY(32) column), but must treat ids as untrusted
// text in queries and keys: use parameters, never string concatenation.
//
// # Time
//
// The Manager passes "now" to every call that compares against an expiry. A
// store compares expiries with that value, never with a database clock, so
// clock skew between the application and the database can neither revive nor
// end sessions. A record whose expiry is at or before now is expired: it
// behaves exactly as an absent record, whether or not it has been removed yet.
// Stores that expire records with their own clock (Redis TTLs) may use it
// only as garbage collection, after the record is expired by the caller's
// clock.
//
// # Versions
//
// Every record carries a version. Create stores version 1; a successful
// Update stores the given version plus one; Touch leaves it unchanged. The
// Manager relies on this to detect concurrent writes (optimistic locking).
//
// # Concurrency and ownership
//
// All methods are safe for concurrent use by multiple goroutines. A store
// must not retain the data slice passed to Create or Update after the call
// returns, and the caller may modify a slice returned by Load: each call
// deals in its own copy.
//
// # Errors and contexts
//
// "Not found", "already exists", "changed" and "gone" are results reported
// through the boolean returns, never errors. An error means the store could
// not answer (network, database, cancelled context); the Manager never takes
// an error for "no session". Every method honours ctx: when it is cancelled or
// its deadline passes, the method returns promptly, without applying the
// operation, an error err for which errors.Is(err, ctx.Err()) holds.
type Store interface {
	// Create stores a new record with version 1 if no live record has the id
	// (an expired record counts as absent and is replaced). It reports
	// created == false, with a nil error, when a live record already has the
	// id; it never overwrites one. owner is "" for none.
	Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (created bool, err error)

	// Load returns the live record with the id. found is false, with a nil
	// error, when no record has the id or it has expired at now. Data written
	// empty is returned empty and non-nil.
	Load(ctx context.Context, id string, now time.Time) (data []byte, version int64, expiry time.Time, found bool, err error)

	// Update replaces the data, expiry and owner of the record with the id,
	// and increments its version, only if the record is live at now and its
	// version equals version. It reports:
	//   - updated == true: the record was written (found is true);
	//   - updated == false, found == true: the record is live but its version
	//     differs ("changed meanwhile"); nothing was written;
	//   - updated == false, found == false: there is no live record ("gone"),
	//     whatever the version; nothing was written and no record is created.
	// The expiry given is stored as is, even if it is earlier than the
	// current one. An expiry at or before now (the Manager retires the old
	// record of a renewal with empty data, no owner and an expiry 1 ms
	// after the Unix epoch) makes the record expired at once, for every
	// operation and every clock; a store may delete the record instead of
	// writing it, but the version check applies first either way.
	Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (updated, found bool, err error)

	// Touch moves the expiry of the live record with the id to expiry if that
	// is later than its current expiry; it never moves an expiry earlier and
	// never changes the data, version or owner. It never creates a record:
	// found is false when there is no live record at now, and true for a live
	// one even if its expiry was already later.
	Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (found bool, err error)

	// Delete removes the record with the id. Deleting an absent record is not
	// an error.
	Delete(ctx context.Context, id string) error
}

// ExpiredDeleter is an optional [Store] capability: removing expired
// records. Stores whose backend expires records by itself (Redis) need not
// implement it. Run it with [Manager.Sweep].
type ExpiredDeleter interface {
	// DeleteExpired removes records whose expiry is at or before now and
	// returns how many it removed. It works in bounded batches so that it
	// never holds long locks, and removes nothing that is live at now.
	DeleteExpired(ctx context.Context, now time.Time) (deleted int, err error)
}

// OwnerIndex is an optional [Store] capability: finding and removing every
// session of one owner (usually a user ID), for "log out everywhere" and for
// listing a user's devices. The owner is the one given to the latest
// successful Create or Update of each record, compared as exact strings;
// the empty owner is never indexed.
type OwnerIndex interface {
	// ListOwner returns the ids of the records owned by owner that are live at
	// now, in no particular order. An unknown or empty owner yields an empty
	// list.
	ListOwner(ctx context.Context, owner string, now time.Time) (ids []string, err error)

	// DeleteOwner removes every record owned by owner and returns how many of
	// them were live at now. It need not be atomic across records:
	// [Manager.DestroyOwner] calls ListOwner afterwards and repeats until
	// nothing is listed, so a record created concurrently (a renewal's
	// successor) is removed too, provided that a record is listed once its
	// Create has returned.
	DeleteOwner(ctx context.Context, owner string, now time.Time) (deleted int, err error)
}
