// Package mongostore is a MongoDB session store for
// [github.com/sessionkit/sessions], built on the official Go driver
// [go.mongodb.org/mongo-driver/v2].
//
// It implements sessions.Store, sessions.ExpiredDeleter and
// sessions.OwnerIndex. Every write is one single-document operation (or, for
// the batched and per-owner deletes, one filtered multi-document delete),
// atomic for each document on MongoDB, so the store needs no client-side
// locking, no transactions and no replica set, and is safe for any number of
// application instances sharing one collection.
//
// # Documents
//
// Records live in one collection (default "sessions"), one document each:
//
//	{_id: "<64 hex>", data: BinData(0, ...), version: NumberLong(1), expiry: ISODate("..."), owner: "user-42"}
//
// Its fields are:
//
//   - _id: the hashed session id, the 64 lower-case hexadecimal characters
//     the Manager passes.
//   - data: the opaque record, binary.
//   - version: 64-bit integer, 1 on create, +1 on every successful update.
//   - expiry: a BSON date (millisecond precision) on the application's clock.
//     The server's clock is never consulted to decide whether a record is
//     live.
//   - owner: a string, absent when the record has no owner.
//
// [Store.EnsureIndexes] creates a secondary index on owner (for
// [Store.ListOwner] and [Store.DeleteOwner]) and an index on expiry (for
// [Store.DeleteExpired]). Where the server supports TTL indexes the expiry
// index is one, as garbage collection only: the server removes a record
// [Options.TTLDelay] after its expiry, long after the store stopped
// returning it, so the server's clock can neither end nor revive a session.
//
// # Malformed ids
//
// A malformed id (anything but 64 characters of [0-9a-f]) can never have
// been stored: Load, Update and Touch report it as not found, Delete ignores
// it, and Create rejects it with an error wrapping [ErrInvalidID].
//
// # Time precision
//
// Expiries are stored with millisecond precision, truncated. A record
// expires at the start of the millisecond that contains its expiry, so the
// store may consider a record expired up to one millisecond early, never
// late.
//
// # Servers
//
// The store uses only commands and operators that MongoDB and FerretDB
// share (find, insert, update and delete with plain filters, $max,
// createIndexes), and it relies on MongoDB's guarantee that a write to one
// document is atomic. Its tests run against FerretDB; see the README.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Defaults applied by [New] to zero [Options] fields.
const (
	// DefaultCollection is the collection name used when
	// Options.Collection is empty.
	DefaultCollection = "sessions"
	// DefaultSweepBatch is the number of expired records one batch of
	// [Store.DeleteExpired] removes when Options.SweepBatch is zero.
	DefaultSweepBatch = 1000
	// DefaultTTLDelay is how long after its expiry the server's TTL
	// monitor may remove a record, when Options.TTLDelay is zero.
	DefaultTTLDelay = time.Hour
)

// Index names created by [Store.EnsureIndexes].
const (
	// ExpiryIndex is the index on expiry: a TTL index where the server
	// supports them, a plain one otherwise.
	ExpiryIndex = "sessions_expiry"
	// OwnerIndexName is the secondary index on owner.
	OwnerIndexName = "sessions_owner"
)

// Errors returned by the store. Match them with [errors.Is].
var (
	// ErrInvalidID is wrapped by Create when the id is not 64 lower-case
	// hexadecimal characters.
	ErrInvalidID = errors.New("mongostore: malformed session id")
	// ErrInvalidOwner is wrapped by Create and Update when the owner is
	// not valid UTF-8: BSON strings are UTF-8, and servers may alter
	// other bytes (FerretDB does), so such an owner could not be found
	// again.
	ErrInvalidOwner = errors.New("mongostore: owner is not valid UTF-8")
	// ErrInvalidOptions is wrapped by New when an argument or option is
	// out of range.
	ErrInvalidOptions = errors.New("mongostore: invalid options")
)

// Options configures [New]. The zero value (or a nil *Options) is valid: the
// collection "sessions", swept 1000 records at a time, with a TTL index
// that removes records an hour after they expire where the server supports
// TTL indexes.
type Options struct {
	// Collection is the collection name. It must match
	// ^[A-Za-z_][A-Za-z0-9_.-]{0,119}$ and must not start with "system.",
	// a subset of the names both MongoDB and FerretDB accept. Default
	// "sessions".
	Collection string

	// SweepBatch is the maximum number of records one batch of
	// DeleteExpired removes; DeleteExpired repeats batches until one comes
	// back short. Zero means DefaultSweepBatch; negative is an error.
	SweepBatch int

	// TTLDelay is how long after its expiry (on the application's clock)
	// the server's TTL monitor may delete a record (on the server's
	// clock). It must exceed the worst clock skew between the
	// application and the server, and is rounded up to whole seconds.
	// Zero means DefaultTTLDelay; negative is an error.
	TTLDelay time.Duration

	// NoTTLIndex makes EnsureIndexes create a plain index on expiry
	// instead of a TTL index; expired records are then removed only by
	// DeleteExpired and DeleteOwner.
	NoTTLIndex bool

	// Logger receives the one message EnsureIndexes logs when the server
	// does not support TTL indexes. Nil means slog.Default().
	Logger *slog.Logger
}

var collectionRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,119}$`)

// Store is a MongoDB session store. Create it with [New]. It holds no
// connection of its own and starts no goroutine; it is safe for concurrent
// use by multiple goroutines.
type Store struct {
	coll     *mongo.Collection
	batch    int
	ttl      int32 // seconds
	noTTL    bool
	logger   *slog.Logger
	warnOnce sync.Once
}

// New returns a store that keeps records in the collection named by opts in
// db. It validates its arguments and does no I/O: call [Store.EnsureIndexes]
// once before the first use (at every start is fine).
func New(db *mongo.Database, opts *Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("mongostore: nil Database: %w", ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Collection == "" {
		o.Collection = DefaultCollection
	}
	if !collectionRE.MatchString(o.Collection) || strings.HasPrefix(o.Collection, "system.") {
		return nil, fmt.Errorf("mongostore: Collection %q does not match %s or starts with \"system.\": %w", o.Collection, collectionRE, ErrInvalidOptions)
	}
	switch {
	case o.SweepBatch < 0:
		return nil, fmt.Errorf("mongostore: negative SweepBatch %d: %w", o.SweepBatch, ErrInvalidOptions)
	case o.SweepBatch == 0:
		o.SweepBatch = DefaultSweepBatch
	}
	switch {
	case o.TTLDelay < 0:
		return nil, fmt.Errorf("mongostore: negative TTLDelay %v: %w", o.TTLDelay, ErrInvalidOptions)
	case o.TTLDelay == 0:
		o.TTLDelay = DefaultTTLDelay
	case o.TTLDelay > 100*365*24*time.Hour:
		return nil, fmt.Errorf("mongostore: TTLDelay %v longer than 100 years: %w", o.TTLDelay, ErrInvalidOptions)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Store{
		coll:   db.Collection(o.Collection),
		batch:  o.SweepBatch,
		ttl:    int32((o.TTLDelay + time.Second - 1) / time.Second),
		noTTL:  o.NoTTLIndex,
		logger: o.Logger,
	}, nil
}

// Collection returns the collection the store uses.
func (s *Store) Collection() *mongo.Collection { return s.coll }

// codeNotImplemented is FerretDB's answer to index options it lacks
// (MongoDB's error code 238, NotImplemented).
const codeNotImplemented = 238

// EnsureIndexes creates the store's indexes that do not exist yet (by
// name): the secondary index on owner, and the index on expiry, a TTL index
// unless Options.NoTTLIndex is set or the server answers NotImplemented for
// TTL indexes (FerretDB), in which case it is a plain index and the first
// such answer is logged, once per Store. It leaves existing indexes as they
// are: to change TTLDelay or NoTTLIndex for an existing collection, drop the
// expiry index first (or change it with collMod). It is idempotent and safe
// to run from many instances at once.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	have, err := s.indexNames(ctx)
	if err != nil {
		return fmt.Errorf("mongostore: ensure indexes: %w", err)
	}
	if !have[OwnerIndexName] {
		if err := s.createIndex(ctx, "owner", options.Index().SetName(OwnerIndexName)); err != nil {
			return err
		}
	}
	if have[ExpiryIndex] {
		return nil
	}
	if !s.noTTL {
		err := s.createIndex(ctx, "expiry", options.Index().SetName(ExpiryIndex).SetExpireAfterSeconds(s.ttl))
		var se mongo.ServerError
		if err == nil || !errors.As(err, &se) || !se.HasErrorCode(codeNotImplemented) {
			return err
		}
		s.warnOnce.Do(func() {
			s.logger.LogAttrs(ctx, slog.LevelInfo, "mongostore: the server does not support TTL indexes; expired sessions are removed only by DeleteExpired (run Manager.Sweep)",
				slog.String("collection", s.coll.Name()), slog.String("error", err.Error()))
		})
	}
	return s.createIndex(ctx, "expiry", options.Index().SetName(ExpiryIndex))
}

func (s *Store) indexNames(ctx context.Context) (map[string]bool, error) {
	cur, err := s.coll.Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	names := map[string]bool{}
	for cur.Next(ctx) {
		names[cur.Current.Lookup("name").StringValue()] = true
	}
	return names, cur.Err()
}

func (s *Store) createIndex(ctx context.Context, field string, opts *options.IndexOptionsBuilder) error {
	m := mongo.IndexModel{Keys: bson.D{{Key: field, Value: 1}}, Options: opts}
	if _, err := s.coll.Indexes().CreateOne(ctx, m); err != nil {
		return fmt.Errorf("mongostore: ensure indexes: %w", err)
	}
	return nil
}

// record is the document layout; see the package documentation.
type record struct {
	Data    []byte        `bson:"data"`
	Version int64         `bson:"version"`
	Expiry  bson.DateTime `bson:"expiry"`
}

// Create stores a new record with version 1 unless a live record has the
// id. An expired record with the id is replaced, atomically: the replacement
// is an upsert filtered on {_id: id, expiry <= now}, so it either replaces
// an expired document, or inserts when there is none, or fails with a
// duplicate-key error on _id because a live document exists (reported as
// created == false). Two racing creators of one id cannot both succeed. A
// malformed id is an error wrapping [ErrInvalidID], an owner that is not
// valid UTF-8 one wrapping [ErrInvalidOwner].
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if !validID(id) {
		return false, fmt.Errorf("mongostore: create: %w", ErrInvalidID)
	}
	if !utf8.ValidString(owner) {
		return false, fmt.Errorf("mongostore: create: %w", ErrInvalidOwner)
	}
	_, err := s.coll.ReplaceOne(ctx, createFilter(id, now), newDoc(data, 1, expiry, owner), upsert)
	if err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return false, nil
		}
		return false, fmt.Errorf("mongostore: create: %w", err)
	}
	return true, nil
}

var upsert = options.Replace().SetUpsert(true)

func createFilter(id string, now time.Time) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "expiry", Value: bson.D{{Key: "$lte", Value: bson.NewDateTimeFromTime(now)}}}}
}

// liveFilter selects the record with the id if it is live at now.
func liveFilter(id string, now time.Time) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "expiry", Value: bson.D{{Key: "$gt", Value: bson.NewDateTimeFromTime(now)}}}}
}

// newDoc is the full document of a record, without _id (which a
// replacement keeps, and an upsert takes from the filter). The empty owner
// is left out, so that it is never indexed under "".
func newDoc(data []byte, version int64, expiry time.Time, owner string) bson.D {
	if data == nil {
		data = []byte{}
	}
	d := bson.D{
		{Key: "data", Value: data},
		{Key: "version", Value: version},
		{Key: "expiry", Value: bson.NewDateTimeFromTime(expiry)},
	}
	if owner != "" {
		d = append(d, bson.E{Key: "owner", Value: owner})
	}
	return d
}

var loadProjection = options.FindOne().SetProjection(bson.D{{Key: "data", Value: 1}, {Key: "version", Value: 1}, {Key: "expiry", Value: 1}})

// Load returns the record with the id if it is live at now. The returned
// slice is the caller's own.
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if !validID(id) {
		return nil, 0, time.Time{}, false, nil
	}
	var r record
	err := s.coll.FindOne(ctx, liveFilter(id, now), loadProjection).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, 0, time.Time{}, false, nil
	}
	if err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("mongostore: load: %w", err)
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	return r.Data, r.Version, r.Expiry.Time(), true, nil
}

// Update writes data, expiry and owner and increments the version if the
// record is live at now and still has the given version: one replaceOne
// filtered on {_id, version, expiry > now}. When nothing matched, a second
// query tells a live record with another version (found == true) from an
// absent or expired one (found == false). An owner that is not valid UTF-8
// is an error wrapping [ErrInvalidOwner].
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if !validID(id) {
		return false, false, nil
	}
	if !utf8.ValidString(owner) {
		return false, false, fmt.Errorf("mongostore: update: %w", ErrInvalidOwner)
	}
	res, err := s.coll.ReplaceOne(ctx, updateFilter(id, version, now), newDoc(data, version+1, expiry, owner))
	if err != nil {
		return false, false, fmt.Errorf("mongostore: update: %w", err)
	}
	if res.MatchedCount == 1 {
		return true, true, nil
	}
	// Ids are random 256-bit values and a deleted or expired record cannot
	// come back under its id by an update, so a record live now was live,
	// with another version, when the replace failed.
	n, err := s.coll.CountDocuments(ctx, liveFilter(id, now), countOne)
	if err != nil {
		return false, false, fmt.Errorf("mongostore: update: %w", err)
	}
	return false, n > 0, nil
}

var countOne = options.Count().SetLimit(1)

func updateFilter(id string, version int64, now time.Time) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "version", Value: version},
		{Key: "expiry", Value: bson.D{{Key: "$gt", Value: bson.NewDateTimeFromTime(now)}}},
	}
}

// Touch moves the expiry of the live record with the id to expiry if that
// is later ($max), and reports whether the record is live at now: the
// update counts a matched document even when $max leaves it unchanged.
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if !validID(id) {
		return false, nil
	}
	res, err := s.coll.UpdateOne(ctx, liveFilter(id, now), touchUpdate(expiry))
	if err != nil {
		return false, fmt.Errorf("mongostore: touch: %w", err)
	}
	return res.MatchedCount == 1, nil
}

func touchUpdate(expiry time.Time) bson.D {
	return bson.D{{Key: "$max", Value: bson.D{{Key: "expiry", Value: bson.NewDateTimeFromTime(expiry)}}}}
}

// Delete removes the record with the id; deleting an absent record (or a
// malformed id) is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !validID(id) {
		return nil
	}
	if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("mongostore: delete: %w", err)
	}
	return nil
}

// DeleteExpired removes records whose expiry is at or before now, in
// batches of at most Options.SweepBatch: each batch finds the ids of that
// many expired records over the expiry index, then deletes those ids with
// the expiry condition repeated, so that a record replaced by a Create in
// between is left alone. It stops when a batch finds fewer records than the
// batch size, or when ctx ends; on error it returns the number removed so
// far with the error.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	expired := bson.D{{Key: "expiry", Value: bson.D{{Key: "$lte", Value: bson.NewDateTimeFromTime(now)}}}}
	find := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetSort(bson.D{{Key: "expiry", Value: 1}}).SetLimit(int64(s.batch))
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("mongostore: delete expired: %w", err)
		}
		ids, err := s.findIDs(ctx, expired, find)
		if err != nil {
			return total, fmt.Errorf("mongostore: delete expired: %w", err)
		}
		if len(ids) > 0 {
			filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, expired[0]}
			res, err := s.coll.DeleteMany(ctx, filter)
			if err != nil {
				return total, fmt.Errorf("mongostore: delete expired: %w", err)
			}
			total += int(res.DeletedCount)
		}
		if len(ids) < s.batch {
			return total, nil
		}
	}
}

// findIDs returns the _id of every document the query yields.
func (s *Store) findIDs(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]string, error) {
	cur, err := s.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	ids := []string{}
	for cur.Next(ctx) {
		id, ok := cur.Current.Lookup("_id").StringValueOK()
		if !ok {
			continue // not a document of this store
		}
		ids = append(ids, id)
	}
	return ids, cur.Err()
}

var idsOnly = options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}})

// ListOwner returns the ids of the records owned by owner that are live at
// now, in no particular order. The empty owner, and one that is not valid
// UTF-8 (never stored), yield an empty list without a query.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if owner == "" || !utf8.ValidString(owner) {
		return []string{}, nil
	}
	filter := bson.D{{Key: "owner", Value: owner}, {Key: "expiry", Value: bson.D{{Key: "$gt", Value: bson.NewDateTimeFromTime(now)}}}}
	ids, err := s.findIDs(ctx, filter, idsOnly)
	if err != nil {
		return nil, fmt.Errorf("mongostore: list owner: %w", err)
	}
	return ids, nil
}

// DeleteOwner removes every record owned by owner and returns how many of
// them were live at now. It runs two deletes over the owner index: the
// records live at now (counted), then the expired ones. A record the owner
// gets while it runs may survive it. The empty owner, and one that is not
// valid UTF-8 (never stored), delete nothing.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if owner == "" || !utf8.ValidString(owner) {
		return 0, nil
	}
	at := bson.NewDateTimeFromTime(now)
	live, err := s.coll.DeleteMany(ctx, bson.D{{Key: "owner", Value: owner}, {Key: "expiry", Value: bson.D{{Key: "$gt", Value: at}}}})
	if err != nil {
		return 0, fmt.Errorf("mongostore: delete owner: %w", err)
	}
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "owner", Value: owner}, {Key: "expiry", Value: bson.D{{Key: "$lte", Value: at}}}}); err != nil {
		return int(live.DeletedCount), fmt.Errorf("mongostore: delete owner: %w", err)
	}
	return int(live.DeletedCount), nil
}

// validID reports whether id is 64 lower-case hexadecimal characters, the
// only form the Manager produces. Upper case would alias a lower-case id.
func validID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
