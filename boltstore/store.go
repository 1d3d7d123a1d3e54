// Package boltstore is an embedded session store for
// [github.com/sessionkit/sessions]: sessions in a single file, with no server,
// built on [go.etcd.io/bbolt]. It suits single-process applications and
// desktop tools.
//
// It implements sessions.Store, sessions.ExpiredDeleter and
// sessions.OwnerIndex. Every operation is one bbolt transaction, so the
// record and its two indexes always change together, and compare-and-set
// needs no locking of the store's own: bbolt runs one write transaction at a
// time.
//
// # One process owns the file
//
// bbolt takes an exclusive advisory lock (flock on Unix, LockFileEx on
// Windows) on the file for as long as it is open. Only one process can use
// the file at a time, and within that process only one open handle: a
// second [Open] of the same file, from another process or from the same one,
// waits for the lock for [Options.OpenTimeout] (default
// [DefaultOpenTimeout]) and then fails with an error wrapping [ErrLocked]
// (and bbolt's [go.etcd.io/bbolt/errors.ErrTimeout]). It never waits
// forever. Several instances of an application therefore cannot share a
// boltstore file; use a database server (pgxstore, mysqlstore, redisstore)
// for that.
//
// # Layout
//
// The store keeps everything under one top-level bucket (default
// "sessions", see [Options.Bucket]) holding three nested buckets:
//
//   - "records": key = the 32-byte session id (the Manager's 64 hex
//     characters, decoded); value = expiry (8 bytes, big-endian Unix
//     milliseconds), version (8 bytes, big-endian), the owner's length
//     (uvarint), the owner, then the data.
//   - "expiry": key = expiry (8 bytes, big-endian Unix milliseconds with
//     the sign bit flipped, so that keys sort by time) followed by the id;
//     empty value. [Store.DeleteExpired] walks it from the start.
//   - "owners": key = the owner's length (uvarint), the owner, then the id;
//     empty value. The length prefix makes an owner's keys a prefix range
//     that no other owner's keys share, whatever bytes owners contain.
//
// Expiries are compared with the caller's now only; bbolt has no clock.
//
// # Transactions and contexts
//
// bbolt is not context-aware. Every method checks ctx before it starts its
// transaction, and a write checks it again once it holds bbolt's writer
// lock: a context that ended while the call waited for another write
// transaction makes the call return its error without applying anything.
// [Store.DeleteExpired] checks ctx between batches. A write that changes
// nothing (a refused Create, an Update that finds another version, a Touch
// that would not extend, a Delete of an absent record) rolls its
// transaction back instead of committing, so it costs no fsync.
//
// # Malformed ids
//
// A malformed id (anything but 64 characters of [0-9a-f]) can never have
// been stored: Load, Update and Touch report it as not found, Delete
// ignores it, and Create rejects it with an error wrapping [ErrInvalidID].
//
// # Time precision
//
// Expiries are stored as Unix milliseconds, truncated. A record expires at
// the start of the millisecond that contains its expiry, so the store may
// consider a record expired up to one millisecond early, never late.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Defaults applied to zero [Options] fields.
const (
	// DefaultBucket is the top-level bucket used when Options.Bucket is
	// empty.
	DefaultBucket = "sessions"

	// DefaultSweepBatch is the number of expired records one write
	// transaction of [Store.DeleteExpired] removes when Options.SweepBatch
	// is zero.
	DefaultSweepBatch = 1000

	// DefaultOpenTimeout is how long [Open] waits for the file's lock when
	// Options.OpenTimeout is zero.
	DefaultOpenTimeout = 3 * time.Second
)

// MaxOwnerLen is the longest owner, in bytes, that Create and Update accept:
// an owner index key (length prefix, owner, 32-byte id) must fit bbolt's
// key size limit.
const MaxOwnerLen = bbolt.MaxKeySize - idLen - binary.MaxVarintLen64

// maxBucketLen bounds Options.Bucket.
const maxBucketLen = 255

// Errors returned by the store. Match them with [errors.Is].
var (
	// ErrInvalidID is wrapped by Create when the id is not 64 lower-case
	// hexadecimal characters.
	ErrInvalidID = errors.New("boltstore: malformed session id")

	// ErrInvalidOptions is wrapped by Open and New when an argument or
	// option is out of range.
	ErrInvalidOptions = errors.New("boltstore: invalid options")

	// ErrLocked is wrapped by Open when another process, or another open
	// handle in this process, held the file's lock for longer than
	// Options.OpenTimeout.
	ErrLocked = errors.New("boltstore: database file is locked by another process or another open handle")

	// ErrOwnerTooLong is wrapped by Create and Update when the owner is
	// longer than [MaxOwnerLen] bytes.
	ErrOwnerTooLong = errors.New("boltstore: owner too long")

	// ErrCorrupt is wrapped when a stored record or the store's buckets do
	// not have the layout the store writes (the file was modified by other
	// code).
	ErrCorrupt = errors.New("boltstore: corrupt store")
)

// Options configures [Open] and [New]. The zero value (or a nil *Options)
// is valid: the bucket "sessions", swept 1000 records per transaction, and,
// for Open, a 3-second wait for the file's lock with fsync on every commit.
type Options struct {
	// Bucket is the name of the top-level bucket that holds the store's
	// buckets, so that a file can hold other data, or several stores, side
	// by side. Any bytes, 1 to 255 of them. Default "sessions".
	Bucket string

	// SweepBatch is the maximum number of expired records one write
	// transaction of DeleteExpired removes; DeleteExpired runs one
	// transaction after another until no expired record is left. Each
	// transaction holds bbolt's writer lock, which every other write waits
	// for, so keep batches small enough to take milliseconds. Zero means
	// DefaultSweepBatch; negative is an error.
	SweepBatch int

	// OpenTimeout is how long Open waits for the file's lock when another
	// process (or another Open in this process) holds it, before it fails
	// with an error wrapping ErrLocked. Zero means DefaultOpenTimeout;
	// negative is an error (the store never waits forever). Open only: New
	// rejects it, as the DB it is given is already open.
	OpenTimeout time.Duration

	// UnsafeNoSync skips the fsync after every commit (bbolt's NoSync).
	// Writes get much faster, but an operating system crash or power loss
	// can lose recent sessions (logouts included: a deleted session can
	// come back) or corrupt the file. A crash of the process alone loses
	// nothing. Default false: every committed write is on disk before the
	// call returns. Open only: New rejects it (set DB.NoSync yourself).
	UnsafeNoSync bool
}

// resolve validates o (nil meaning zero) and fills in defaults.
func (o *Options) resolve() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Bucket == "" {
		r.Bucket = DefaultBucket
	}
	if len(r.Bucket) > maxBucketLen {
		return r, fmt.Errorf("boltstore: Bucket of %d bytes, want at most %d: %w", len(r.Bucket), maxBucketLen, ErrInvalidOptions)
	}
	switch {
	case r.SweepBatch < 0:
		return r, fmt.Errorf("boltstore: negative SweepBatch %d: %w", r.SweepBatch, ErrInvalidOptions)
	case r.SweepBatch == 0:
		r.SweepBatch = DefaultSweepBatch
	}
	switch {
	case r.OpenTimeout < 0:
		return r, fmt.Errorf("boltstore: negative OpenTimeout %v: %w", r.OpenTimeout, ErrInvalidOptions)
	case r.OpenTimeout == 0:
		r.OpenTimeout = DefaultOpenTimeout
	}
	return r, nil
}

// Store is a session store in a bbolt file. Create it with [Open] or [New].
// It starts no goroutine and is safe for concurrent use by multiple
// goroutines: bbolt runs read transactions in parallel and write
// transactions one at a time.
type Store struct {
	db     *bbolt.DB
	owned  bool // opened by Open: Close closes it
	bucket []byte
	batch  int
}

// Open opens (creating it if needed, with permissions 0600) the bbolt file
// at path, creates the store's buckets if they do not exist, and returns a
// store that owns the file: call [Store.Close] when done.
//
// While the store is open, no other process, and no other Open in this
// process, can open the file: they wait up to Options.OpenTimeout (default
// 3 s) and fail with an error wrapping [ErrLocked]. Open itself waits the
// same way for a file that someone else holds.
//
// Open uses bbolt's hashmap freelist, which stays fast as session churn
// fragments the file. To choose bbolt's options yourself, open the DB and
// use [New].
func Open(path string, opts *Options) (*Store, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("boltstore: empty path: %w", ErrInvalidOptions)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      o.OpenTimeout,
		NoSync:       o.UnsafeNoSync,
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: open %s: %w (gave up after %v): %w", path, ErrLocked, o.OpenTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s, err := newStore(db, o)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New returns a store on an open bbolt DB that the caller owns, for
// applications that keep their own data in the same file or choose bbolt's
// options themselves. It validates opts (OpenTimeout and UnsafeNoSync must
// be zero: they belong to the bbolt.Options the DB was opened with) and
// creates the store's buckets if they do not exist, in one short write
// transaction; a read-only DB is an error. [Store.Close] leaves the DB open.
func New(db *bbolt.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("boltstore: nil *bbolt.DB: %w", ErrInvalidOptions)
	}
	if opts != nil && (opts.OpenTimeout != 0 || opts.UnsafeNoSync) {
		return nil, fmt.Errorf("boltstore: OpenTimeout and UnsafeNoSync apply to Open only (set them in the bbolt.Options the DB is opened with): %w", ErrInvalidOptions)
	}
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return newStore(db, o)
}

// Names of the nested buckets.
var (
	recordsName = []byte("records")
	expiryName  = []byte("expiry")
	ownersName  = []byte("owners")
)

func newStore(db *bbolt.DB, o Options) (*Store, error) {
	s := &Store{db: db, bucket: []byte(o.Bucket), batch: o.SweepBatch}
	err := db.Update(func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(s.bucket)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{recordsName, expiryName, ownersName} {
			if _, err := top.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: create buckets in %s: %w", db.Path(), err)
	}
	return s, nil
}

// DB returns the bbolt database the store uses, for backups
// (tx.WriteTo in a read transaction), statistics, or data of your own in
// other buckets. Do not modify the store's bucket: the store trusts its
// indexes to match its records.
func (s *Store) DB() *bbolt.DB { return s.db }

// Close closes the file if the store opened it ([Open]), which releases
// its lock; after that every method returns an error, and a second Close
// does nothing. A store from [New] leaves the DB to its owner, and Close
// does nothing.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// buckets are the store's three buckets within one transaction.
type buckets struct {
	records, expiry, owners *bbolt.Bucket
}

// buckets opens the store's buckets in tx.
func (s *Store) buckets(tx *bbolt.Tx) (buckets, error) {
	top := tx.Bucket(s.bucket)
	if top == nil {
		return buckets{}, s.missing()
	}
	b := buckets{top.Bucket(recordsName), top.Bucket(expiryName), top.Bucket(ownersName)}
	if b.records == nil || b.expiry == nil || b.owners == nil {
		return buckets{}, s.missing()
	}
	return b, nil
}

// missing is the error for a store whose buckets other code removed.
func (s *Store) missing() error {
	return fmt.Errorf("bucket %q, or one of its records, expiry and owners buckets, is missing: %w", s.bucket, ErrCorrupt)
}

// errUnchanged ends a write transaction that changed nothing: the
// transaction rolls back instead of committing, which saves an fsync.
var errUnchanged = errors.New("unchanged")

// view runs fn in a read transaction, after checking ctx.
func (s *Store) view(ctx context.Context, fn func(b buckets) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		b, err := s.buckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

// update runs fn in a write transaction. ctx is checked before the
// transaction starts and again once bbolt's writer lock is held. fn
// returns errUnchanged to roll back a transaction that wrote nothing.
func (s *Store) update(ctx context.Context, fn func(b buckets) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := s.buckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

// updateLive runs fn in a write transaction on the record under key if it
// is live at nowMS, and reports whether it was. A record that is absent or
// expired changes nothing, and the transaction rolls back.
func (s *Store) updateLive(ctx context.Context, key []byte, nowMS int64, fn func(b buckets, r record, v []byte) error) (bool, error) {
	var found bool
	err := s.update(ctx, func(b buckets) error {
		r, v, ok, err := b.live(key, nowMS)
		found = ok
		if err != nil {
			return err
		}
		if !ok {
			return errUnchanged
		}
		return fn(b, r, v)
	})
	return found, err
}

// wrap prefixes err with the operation.
func wrap(op string, err error) error {
	return fmt.Errorf("boltstore: %s: %w", op, err)
}

// Create stores a new record with version 1 unless a live record has the
// id. An expired record with the id is replaced, and its index entries with
// it. A malformed id is an error wrapping [ErrInvalidID], an owner longer
// than [MaxOwnerLen] one wrapping [ErrOwnerTooLong].
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return false, wrap("create", ErrInvalidID)
	}
	if len(owner) > MaxOwnerLen {
		return false, wrap("create", ErrOwnerTooLong)
	}
	nowMS := now.UnixMilli()
	var created bool
	err := s.update(ctx, func(b buckets) error {
		created = false
		old, ok, err := b.get(key)
		if err != nil {
			return err
		}
		if ok {
			if old.expiry > nowMS {
				return errUnchanged
			}
			if err := b.unindex(key, old); err != nil {
				return err
			}
		}
		if err := b.put(key, expiry.UnixMilli(), 1, owner, data); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, wrap("create", err)
	}
	return created, nil
}

// Load returns the record with the id if it is live at now. The returned
// slice is the caller's own.
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, time.Time{}, false, wrap("load", err)
	}
	key, ok := decodeID(id)
	if !ok {
		return nil, 0, time.Time{}, false, nil
	}
	// A read transaction without View's closure: Load is the hot path.
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, 0, time.Time{}, false, wrap("load", err)
	}
	defer func() { _ = tx.Rollback() }() // how a read transaction ends
	top := tx.Bucket(s.bucket)
	if top == nil {
		return nil, 0, time.Time{}, false, wrap("load", s.missing())
	}
	records := top.Bucket(recordsName)
	if records == nil {
		return nil, 0, time.Time{}, false, wrap("load", s.missing())
	}
	r, _, ok, err := buckets{records: records}.live(key, now.UnixMilli())
	if err != nil {
		return nil, 0, time.Time{}, false, wrap("load", err)
	}
	if !ok {
		return nil, 0, time.Time{}, false, nil
	}
	// r aliases the memory-mapped file, valid only inside the
	// transaction: copy the data out (non-nil, even when empty).
	return bytes.Clone(r.data), r.version, time.UnixMilli(r.expiry), true, nil
}

// Update writes data, expiry and owner and increments the version if the
// record is live at now and still has the given version, all in one write
// transaction that also moves the record's index entries. An expiry at or
// before now expires the record at once: the store then removes it (and
// its index entries) in the same transaction instead of keeping it for the
// sweep, which is how a renewal's retired id disappears.
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if err := ctx.Err(); err != nil {
		return false, false, wrap("update", err)
	}
	key, ok := decodeID(id)
	if !ok {
		return false, false, nil
	}
	if len(owner) > MaxOwnerLen {
		return false, false, wrap("update", ErrOwnerTooLong)
	}
	nowMS, expMS := now.UnixMilli(), expiry.UnixMilli()
	var updated bool
	found, err := s.updateLive(ctx, key, nowMS, func(b buckets, old record, _ []byte) error {
		updated = false
		if old.version != version {
			return errUnchanged
		}
		err := b.unindex(key, old)
		if err != nil {
			return err
		}
		if expMS <= nowMS {
			err = b.records.Delete(key)
		} else {
			err = b.put(key, expMS, version+1, owner, data)
		}
		if err != nil {
			return err
		}
		updated = true
		return nil
	})
	if err != nil {
		return false, false, wrap("update", err)
	}
	return updated, found, nil
}

// Touch moves the expiry of the live record with the id to expiry if that
// is later, moving its expiry index entry with it; it reports whether the
// record is live at now.
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, wrap("touch", err)
	}
	key, ok := decodeID(id)
	if !ok {
		return false, nil
	}
	nowMS, expMS := now.UnixMilli(), expiry.UnixMilli()
	found, err := s.updateLive(ctx, key, nowMS, func(b buckets, old record, v []byte) error {
		if expMS <= old.expiry {
			return errUnchanged
		}
		// The value must stay valid until the commit, and v is read-only
		// memory: write a modified copy.
		nv := bytes.Clone(v)
		binary.BigEndian.PutUint64(nv, uint64(expMS))
		if err := b.expiry.Delete(expiryKey(old.expiry, key)); err != nil {
			return err
		}
		if err := b.expiry.Put(expiryKey(expMS, key), []byte{}); err != nil {
			return err
		}
		return b.records.Put(key, nv)
	})
	if err != nil {
		return false, wrap("touch", err)
	}
	return found, nil
}

// Delete removes the record with the id and its index entries; deleting an
// absent record (or a malformed id) is not an error. A record that cannot
// be decoded is removed too.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return wrap("delete", err)
	}
	key, ok := decodeID(id)
	if !ok {
		return nil
	}
	err := s.update(ctx, func(b buckets) error {
		v := b.records.Get(key)
		if v == nil {
			return errUnchanged
		}
		// A record that does not decode has no index entries the store
		// can find; stale ones are harmless (see DeleteExpired and
		// ListOwner) and removed by the sweep or DeleteOwner.
		if old, err := decodeRecord(v); err == nil {
			if err := b.unindex(key, old); err != nil {
				return err
			}
		}
		return b.records.Delete(key)
	})
	if err != nil {
		return wrap("delete", err)
	}
	return nil
}

// DeleteExpired removes records whose expiry is at or before now, walking
// the expiry index from its start, at most Options.SweepBatch records per
// write transaction, one transaction after another until none is left or
// ctx ends. Between two transactions other writes get bbolt's writer lock.
// On error it returns the number removed so far with the error.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	nowMS := now.UnixMilli()
	total := 0
	for {
		n, more := 0, false
		err := s.update(ctx, func(b buckets) error {
			n, more = 0, false
			var keys [][]byte
			c := b.expiry.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if len(k) != expiryKeyLen {
					return fmt.Errorf("expiry index key of %d bytes: %w", len(k), ErrCorrupt)
				}
				if expiryOf(k) > nowMS {
					break
				}
				if len(keys) == s.batch {
					more = true
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			if len(keys) == 0 {
				return errUnchanged
			}
			for _, k := range keys {
				if err := b.expiry.Delete(k); err != nil {
					return err
				}
				key := k[8:]
				r, ok, err := b.get(key)
				if err != nil {
					return err
				}
				if !ok || r.expiry != expiryOf(k) {
					continue // a stale entry: nothing to count
				}
				if len(r.owner) > 0 {
					if err := b.owners.Delete(ownerKey(r.owner, key)); err != nil {
						return err
					}
				}
				if err := b.records.Delete(key); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, wrap("delete expired", err)
		}
		total += n
		if !more {
			return total, nil
		}
	}
}

// ListOwner returns the ids of the records owned by owner that are live at
// now, in no particular order, from one read transaction over the owner
// index. The empty owner yields an empty list.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap("list owner", err)
	}
	ids := []string{}
	if owner == "" {
		return ids, nil
	}
	nowMS := now.UnixMilli()
	err := s.view(ctx, func(b buckets) error {
		prefix := ownerKey([]byte(owner), nil)
		c := b.owners.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			key := k[len(prefix):]
			r, ok, err := b.get(key)
			if err != nil {
				return err
			}
			// The owner check skips stale entries, which consistent
			// transactions never leave.
			if ok && r.expiry > nowMS && string(r.owner) == owner {
				ids = append(ids, hex.EncodeToString(key))
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list owner", err)
	}
	return ids, nil
}

// DeleteOwner removes every record owned by owner, live or expired, with
// their index entries, in one write transaction, and returns how many of
// them were live at now. The empty owner deletes nothing.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, wrap("delete owner", err)
	}
	if owner == "" {
		return 0, nil
	}
	nowMS := now.UnixMilli()
	prefix := ownerKey([]byte(owner), nil)
	var n int
	err := s.update(ctx, func(b buckets) error {
		n = 0
		var keys [][]byte
		c := b.owners.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		if len(keys) == 0 {
			return errUnchanged
		}
		for _, k := range keys {
			if err := b.owners.Delete(k); err != nil {
				return err
			}
			key := k[len(prefix):]
			r, ok, err := b.get(key)
			if err != nil {
				return err
			}
			if !ok || string(r.owner) != owner {
				continue // a stale entry: nothing to count
			}
			if r.expiry > nowMS {
				n++
			}
			if err := b.expiry.Delete(expiryKey(r.expiry, key)); err != nil {
				return err
			}
			if err := b.records.Delete(key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrap("delete owner", err)
	}
	return n, nil
}

// get returns the record under key, if there is one, live or not. r
// aliases the transaction's memory.
func (b buckets) get(key []byte) (r record, ok bool, err error) {
	v := b.records.Get(key)
	if v == nil {
		return record{}, false, nil
	}
	r, err = decodeRecord(v)
	return r, err == nil, err
}

// live returns the record under key, and its stored value, if it is live
// at nowMS; ok is false for an absent or expired one. r and v alias the
// transaction's memory.
func (b buckets) live(key []byte, nowMS int64) (r record, v []byte, ok bool, err error) {
	v = b.records.Get(key)
	if v == nil {
		return record{}, nil, false, nil
	}
	if r, err = decodeRecord(v); err != nil || r.expiry <= nowMS {
		return record{}, nil, false, err
	}
	return r, v, true, nil
}

// put writes a record and its index entries. The record must not exist, or
// its entries must have been removed with unindex.
func (b buckets) put(key []byte, expiry, version int64, owner string, data []byte) error {
	if err := b.records.Put(key, encodeRecord(expiry, version, owner, data)); err != nil {
		return err
	}
	if err := b.expiry.Put(expiryKey(expiry, key), []byte{}); err != nil {
		return err
	}
	if owner != "" {
		return b.owners.Put(ownerKey([]byte(owner), key), []byte{})
	}
	return nil
}

// unindex removes the index entries of the record r stored under key.
func (b buckets) unindex(key []byte, r record) error {
	if err := b.expiry.Delete(expiryKey(r.expiry, key)); err != nil {
		return err
	}
	if len(r.owner) > 0 {
		return b.owners.Delete(ownerKey(r.owner, key))
	}
	return nil
}

// idLen is the length of a decoded session id.
const idLen = 32

// decodeID turns a 64-character lower-case hexadecimal id into its 32
// bytes. Upper case is refused: it would alias a lower-case id.
func decodeID(id string) ([]byte, bool) {
	if len(id) != 2*idLen {
		return nil, false
	}
	key := make([]byte, idLen)
	for i := range key {
		hi, lo := unhex[id[2*i]], unhex[id[2*i+1]]
		if hi|lo > 0x0f {
			return nil, false
		}
		key[i] = hi<<4 | lo
	}
	return key, true
}

// unhex maps the lower-case hexadecimal digits to their values and every
// other byte to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// record is a decoded value of the records bucket. owner and data alias
// the value.
type record struct {
	expiry, version int64
	owner, data     []byte
}

// recordHeader is the fixed part of a record: expiry and version.
const recordHeader = 16

func encodeRecord(expiry, version int64, owner string, data []byte) []byte {
	v := make([]byte, recordHeader, recordHeader+binary.MaxVarintLen64+len(owner)+len(data))
	binary.BigEndian.PutUint64(v[0:], uint64(expiry))
	binary.BigEndian.PutUint64(v[8:], uint64(version))
	v = binary.AppendUvarint(v, uint64(len(owner)))
	v = append(v, owner...)
	return append(v, data...)
}

func decodeRecord(v []byte) (record, error) {
	if len(v) >= recordHeader {
		n, w := binary.Uvarint(v[recordHeader:])
		if w > 0 && n <= uint64(len(v)-recordHeader-w) {
			rest := v[recordHeader+w:]
			return record{
				expiry:  int64(binary.BigEndian.Uint64(v[0:])),
				version: int64(binary.BigEndian.Uint64(v[8:])),
				owner:   rest[:n:n],
				data:    rest[n:],
			}, nil
		}
	}
	return record{}, fmt.Errorf("record of %d bytes does not decode: %w", len(v), ErrCorrupt)
}

// expiryKeyLen is the length of an expiry index key: expiry and id.
const expiryKeyLen = 8 + idLen

// expiryKey returns the expiry index key of the record under key. The sign
// bit is flipped so that negative expiries (before 1970) sort first.
func expiryKey(expiry int64, key []byte) []byte {
	k := make([]byte, 8, expiryKeyLen)
	binary.BigEndian.PutUint64(k, uint64(expiry)^1<<63)
	return append(k, key...)
}

// expiryOf returns the expiry of an expiry index key.
func expiryOf(k []byte) int64 {
	return int64(binary.BigEndian.Uint64(k) ^ 1<<63)
}

// ownerKey returns the owner index key of the record under key, or, with
// a nil key, the prefix of all of owner's keys.
func ownerKey(owner, key []byte) []byte {
	k := make([]byte, 0, binary.MaxVarintLen64+len(owner)+len(key))
	k = binary.AppendUvarint(k, uint64(len(owner)))
	k = append(k, owner...)
	return append(k, key...)
}
