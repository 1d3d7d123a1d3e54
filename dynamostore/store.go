// Package dynamostore is an Amazon DynamoDB session store for
// [github.com/sessionkit/sessions], built on the AWS SDK for Go v2
// ([github.com/aws/aws-sdk-go-v2/service/dynamodb]).
//
// It implements sessions.Store, sessions.ExpiredDeleter and
// sessions.OwnerIndex with conditional writes only: it needs no
// transactions, keeps no lock and is safe for any number of application
// instances sharing one table.
//
// # Table
//
// One table (default "sessions", see [Store.CreateTable]) with a string
// partition key "pk" and a string sort key "sk" holds three kinds of item:
//
//   - the session record: pk "s#<id>", sk "s", with data (binary; absent
//     when empty), version, expiry (Unix milliseconds on the application's
//     clock), owner (absent for none), nonce (ties the record to its owner
//     entry), shard and ttl;
//   - an owner entry per owned record: pk "o#<owner>", sk "<id>#<nonce>",
//     where nonce is random per record write that sets an owner, and is
//     also kept in the record;
//   - data chunks, for data too large for one item (DynamoDB caps an item at
//     400 KB): pk "s#<id>", sk "c#<chunkset>#<n>".
//
// A global secondary index "expiry-index" on (shard, expiry) lists records
// by expiry for [Store.DeleteExpired]; only session records carry its keys,
// so it is sparse.
//
// # Time
//
// Expiry is compared with the caller's now, never with DynamoDB's clock. The
// ttl attribute (epoch seconds) is garbage collection only: it lies
// Options.TTLMargin after the later of the expiry and now, so DynamoDB's TTL
// deleter, which runs on AWS's clock and within days rather than seconds,
// never ends a session that the application still considers live.
//
// # Owner index and consistency
//
// DynamoDB reads a global secondary index only eventually consistently: an
// index on the owner attribute may not yet show a session created a moment
// ago, so a "log out everywhere" built on it could leave that session alive.
// The owner index is therefore kept in the base table, as one item per owned
// record in the owner's partition, which a Query reads strongly
// consistently. The entry is written before the record it indexes, so every
// record with an owner has its entry from the moment it exists, even if the
// process dies between the two writes. Entries can be stale (the record was
// deleted, expired or moved to another owner); [Store.ListOwner] and
// [Store.DeleteOwner] check every entry against its record, and stale
// entries are removed by the writes that make them stale, by Delete,
// DeleteOwner and DeleteExpired. DeleteOwner leaves the entries of records
// that do not exist: such an entry may belong to a Create in flight, whose
// record the next DeleteOwner must still find. So a "log out everywhere"
// removes every session the user had when it started; one created
// concurrently may survive it, as with any concurrent write.
//
// # Malformed ids
//
// A malformed id (anything but 64 characters of [0-9a-f]) can never have
// been stored: Load, Update and Touch report it as not found, Delete ignores
// it, and Create rejects it with an error wrapping [ErrInvalidID].
//
// # Time precision
//
// Expiries are stored with millisecond precision, truncated, so the store
// may consider a record expired up to one millisecond early, never late.
package dynamostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// API is the subset of the DynamoDB client the store uses; *dynamodb.Client
// implements it. Tests and instrumentation may wrap it.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// Defaults applied by [New] to zero [Options] fields.
const (
	// DefaultTable is the table name used when Options.Table is empty.
	DefaultTable = "sessions"
	// DefaultSweepBatch is the page size of the expiry index queries of
	// [Store.DeleteExpired] when Options.SweepBatch is zero.
	DefaultSweepBatch = 100
	// DefaultTTLMargin is how long after a record's expiry its ttl
	// attribute lies when Options.TTLMargin is zero.
	DefaultTTLMargin = time.Hour
)

// ExpiryIndex is the name of the global secondary index on (shard, expiry)
// that [Store.CreateTable] creates and [Store.DeleteExpired] queries.
const ExpiryIndex = "expiry-index"

// MaxOwnerLen is the longest owner, in bytes, the store accepts: the owner
// is part of its entries' partition key, which DynamoDB caps at 2048 bytes.
const MaxOwnerLen = 2048 - len(ownerPrefix)

// Errors returned by the store. Match them with [errors.Is].
var (
	// ErrInvalidID is wrapped by Create when the id is not 64 lower-case
	// hexadecimal characters.
	ErrInvalidID = errors.New("dynamostore: malformed session id")
	// ErrOwnerTooLong is wrapped by Create and Update when the owner is
	// longer than [MaxOwnerLen] bytes.
	ErrOwnerTooLong = errors.New("dynamostore: owner too long")
	// ErrInvalidOptions is wrapped by New when an option is out of range.
	ErrInvalidOptions = errors.New("dynamostore: invalid options")
	// ErrTableSchema is wrapped by CreateTable when a table of the name
	// exists with other keys or without the expiry index.
	ErrTableSchema = errors.New("dynamostore: table has another schema")
	// ErrConcurrentWrite is wrapped by Load when the chunks of a large
	// record kept changing under it while it read them.
	ErrConcurrentWrite = errors.New("dynamostore: record kept changing during load")
)

// Options configures [New]. The zero value (or a nil *Options) is valid: the
// table "sessions", swept 100 records per query, ttl one hour after expiry.
type Options struct {
	// Table is the table name: 3 to 255 characters of [A-Za-z0-9_.-], as
	// DynamoDB requires. Default "sessions".
	Table string

	// SweepBatch is the page size of the expiry index queries of
	// DeleteExpired: at most this many records are read, then deleted one
	// conditional write at a time, before the next page. Zero means
	// DefaultSweepBatch; negative or above 1000 is an error.
	SweepBatch int

	// TTLMargin is how long after the later of a record's expiry and the
	// caller's now its ttl attribute lies. DynamoDB's TTL deleter uses AWS's
	// clock, so the margin must cover the skew between the application's
	// clocks and AWS's, and should exceed the interval between sweeps (the
	// sweep also removes owner entries and chunks, which carry no ttl).
	// Zero means DefaultTTLMargin; negative is an error.
	TTLMargin time.Duration
}

var tableRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// Store is a DynamoDB session store. Create it with [New]. It holds no
// connection of its own and starts no goroutine; it is safe for concurrent
// use by multiple goroutines.
type Store struct {
	db        API
	table     *string
	batch     int32
	ttlMargin time.Duration
}

// New returns a store that keeps records in the table named by opts, using
// db (usually a *dynamodb.Client) for every request. It validates opts and
// does no I/O: call [Store.CreateTable] before the first use, or create the
// table as its documentation describes.
func New(db API, opts *Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("dynamostore: nil API: %w", ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !tableRE.MatchString(o.Table) {
		return nil, fmt.Errorf("dynamostore: Table %q does not match %s: %w", o.Table, tableRE, ErrInvalidOptions)
	}
	switch {
	case o.SweepBatch < 0 || o.SweepBatch > 1000:
		return nil, fmt.Errorf("dynamostore: SweepBatch %d out of range 0..1000: %w", o.SweepBatch, ErrInvalidOptions)
	case o.SweepBatch == 0:
		o.SweepBatch = DefaultSweepBatch
	}
	switch {
	case o.TTLMargin < 0:
		return nil, fmt.Errorf("dynamostore: negative TTLMargin %v: %w", o.TTLMargin, ErrInvalidOptions)
	case o.TTLMargin == 0:
		o.TTLMargin = DefaultTTLMargin
	}
	return &Store{db: db, table: aws.String(o.Table), batch: int32(o.SweepBatch), ttlMargin: o.TTLMargin}, nil
}

// Attribute names and key prefixes.
const (
	aPK      = "pk"
	aSK      = "sk"
	aData    = "data"
	aVersion = "version"
	aExpiry  = "expiry"
	aTTL     = "ttl"
	aOwner   = "owner"
	aNonce   = "nonce"
	aShard   = "shard"
	aSet     = "chunkset" // the nonce of the record's chunks
	aChunks  = "chunks"   // how many chunk items the record has

	recordPrefix = "s#"
	ownerPrefix  = "o#"
	recordSK     = "s"
)

// chunkSize is the most data one item carries: DynamoDB's 400 KB item limit
// (409,600 bytes, names and values) less room for the keys, an owner of
// MaxOwnerLen bytes and the other attributes.
const chunkSize = 400_000

// names maps the placeholders of every expression to attribute names
// (several are DynamoDB reserved words). It is never modified.
var names = map[string]string{
	"#pk": aPK, "#sk": aSK, "#d": aData, "#v": aVersion, "#e": aExpiry, "#t": aTTL, "#o": aOwner,
	"#n": aNonce, "#s": aShard, "#g": aSet, "#c": aChunks,
}

// namesFor returns the subset of names an expression uses: DynamoDB rejects
// unused placeholders.
func namesFor(keys ...string) map[string]string {
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		m[k] = names[k]
	}
	return m
}

// Expressions, built once.
var (
	createCond  = "attribute_not_exists(#pk) OR #e <= :now"
	createNames = namesFor("#pk", "#e")

	loadProj  = "#d, #v, #e, #g, #c"
	loadNames = namesFor("#d", "#v", "#e", "#g", "#c")

	stateProj  = "#v, #e, #o, #n, #g, #c"
	stateNames = namesFor("#v", "#e", "#o", "#n", "#g", "#c")

	touchUpdate = "SET #e = :e, #t = :t"
	touchCond   = "#e > :now AND #e < :e"
	touchNames  = namesFor("#e", "#t")

	sweepCond   = "#e <= :now"
	sweepNames  = namesFor("#e")
	sweepKey    = "#s = :s AND #e <= :now"
	sweepQNames = namesFor("#s", "#e")

	ownerCond  = "#o = :o"
	ownerNames = namesFor("#o")

	listProj  = "#pk, #sk, #o, #e"
	listNames = namesFor("#pk", "#sk", "#o", "#e")
)

// fastUpdate holds the expressions of the one-request Update, which applies
// when the record keeps its owner and neither the old nor the new data
// needs chunks; indexed by [data empty][owner empty].
var fastUpdate [2][2]struct {
	update, cond string
	names        map[string]string
}

func init() {
	for de := range 2 {
		for oe := range 2 {
			f := &fastUpdate[de][oe]
			f.update = "SET #v = :v1, #e = :e, #t = :t"
			keys := []string{"#v", "#e", "#t", "#g", "#o"}
			if de == 1 {
				f.update += " REMOVE #d"
			} else {
				f.update += ", #d = :d"
			}
			keys = append(keys, "#d")
			f.cond = "#v = :v AND #e > :now AND attribute_not_exists(#g) AND "
			if oe == 1 {
				f.cond += "attribute_not_exists(#o)"
			} else {
				f.cond += "#o = :o"
			}
			f.names = namesFor(keys...)
		}
	}
}

// Create stores a new record with version 1 unless a live record has the
// id; an expired record with the id is replaced. With an owner, the owner
// entry is written first. A malformed id is an error wrapping
// [ErrInvalidID].
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if !validID(id) {
		return false, fmt.Errorf("dynamostore: create: %w", ErrInvalidID)
	}
	if len(owner) > MaxOwnerLen {
		return false, fmt.Errorf("dynamostore: create: %w", ErrOwnerTooLong)
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("dynamostore: create: %w", err)
	}
	w, err := s.prepare(ctx, id, data, owner)
	if err != nil {
		return false, fmt.Errorf("dynamostore: create: %w", err)
	}
	item := s.recordItem(id, w, 1, expiry, owner, now)
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 s.table,
		Item:                      item,
		ConditionExpression:       &createCond,
		ExpressionAttributeNames:  createNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.UnixMilli())},
		ReturnValues:              types.ReturnValueAllOld,
	})
	if err != nil {
		s.discard(ctx, id, w)
		if isConditionFailed(err) {
			return false, nil
		}
		return false, fmt.Errorf("dynamostore: create: %w", err)
	}
	s.cleanup(ctx, id, out.Attributes)
	return true, nil
}

// Load returns the record with the id if it is live at now. The returned
// slice is the caller's own.
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if !validID(id) {
		return nil, 0, time.Time{}, false, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("dynamostore: load: %w", err)
	}
	// A large record's chunks can vanish between reading the record and
	// reading them, when a writer replaces the record; read it again.
	for range 5 {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:                s.table,
			Key:                      recordKey(id),
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     &loadProj,
			ExpressionAttributeNames: loadNames,
		})
		if err != nil {
			return nil, 0, time.Time{}, false, fmt.Errorf("dynamostore: load: %w", err)
		}
		r := parseRecord(out.Item)
		if out.Item == nil || r.expiry <= now.UnixMilli() {
			return nil, 0, time.Time{}, false, nil
		}
		data := r.data
		if r.set != "" {
			var ok bool
			data, ok, err = s.loadChunks(ctx, id, r)
			if err != nil {
				return nil, 0, time.Time{}, false, fmt.Errorf("dynamostore: load: %w", err)
			}
			if !ok {
				continue
			}
		}
		if data == nil {
			data = []byte{}
		}
		return data, r.version, time.UnixMilli(r.expiry), true, nil
	}
	return nil, 0, time.Time{}, false, fmt.Errorf("dynamostore: load: %w", ErrConcurrentWrite)
}

// Update writes data, expiry and owner and increments the version if the
// record is live at now and still has the given version. When the owner is
// unchanged and no chunks are involved it is one conditional UpdateItem;
// otherwise (and to tell "changed" from "gone" when nothing was written) it
// reads the record first.
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if !validID(id) {
		return false, false, nil
	}
	if len(owner) > MaxOwnerLen {
		return false, false, fmt.Errorf("dynamostore: update: %w", ErrOwnerTooLong)
	}
	if err := ctx.Err(); err != nil {
		return false, false, fmt.Errorf("dynamostore: update: %w", err)
	}
	var failed error // the fast path's condition failure
	if len(data) <= chunkSize {
		f := &fastUpdate[b2i(len(data) == 0)][b2i(owner == "")]
		values := map[string]types.AttributeValue{
			":v": num(version), ":v1": num(version + 1), ":e": num(expiry.UnixMilli()),
			":t": num(s.ttl(expiry, now)), ":now": num(now.UnixMilli()),
		}
		if len(data) > 0 {
			values[":d"] = &types.AttributeValueMemberB{Value: data}
		}
		if owner != "" {
			values[":o"] = &types.AttributeValueMemberS{Value: owner}
		}
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                           s.table,
			Key:                                 recordKey(id),
			UpdateExpression:                    &f.update,
			ConditionExpression:                 &f.cond,
			ExpressionAttributeNames:            f.names,
			ExpressionAttributeValues:           values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return true, true, nil
		}
		if !isConditionFailed(err) {
			return false, false, fmt.Errorf("dynamostore: update: %w", err)
		}
		failed = err
	}

	cur, found, err := s.stateAfter(ctx, failed, id, now)
	if err != nil {
		return false, false, fmt.Errorf("dynamostore: update: %w", err)
	}
	if !found {
		return false, false, nil
	}
	if cur.version != version {
		return false, true, nil
	}
	// The record is live with the version: its owner changes, or chunks
	// are involved. Write the new owner entry and chunks, then the record,
	// on condition that it is still the one just read.
	w, err := s.prepare(ctx, id, data, owner)
	if err != nil {
		return false, false, fmt.Errorf("dynamostore: update: %w", err)
	}
	in := s.slowUpdate(id, w, version, expiry, owner, now, cur)
	if _, err := s.db.UpdateItem(ctx, in); err != nil {
		s.discard(ctx, id, w)
		if !isConditionFailed(err) {
			return false, false, fmt.Errorf("dynamostore: update: %w", err)
		}
		_, found, err := s.stateAfter(ctx, err, id, now)
		if err != nil {
			return false, false, fmt.Errorf("dynamostore: update: %w", err)
		}
		return false, found, nil
	}
	s.cleanupRecord(ctx, id, cur)
	return true, true, nil
}

// slowUpdate builds the UpdateItem that replaces every attribute of the
// record cur, on condition that it still is cur.
func (s *Store) slowUpdate(id string, w written, version int64, expiry time.Time, owner string, now time.Time, cur record) *dynamodb.UpdateItemInput {
	values := map[string]types.AttributeValue{
		":v": num(version), ":v1": num(version + 1), ":e": num(expiry.UnixMilli()),
		":t": num(s.ttl(expiry, now)), ":now": num(now.UnixMilli()),
	}
	var set, remove []string
	setOrRemove := func(name, placeholder string, v types.AttributeValue) {
		if v == nil {
			remove = append(remove, name)
			return
		}
		set = append(set, name+" = "+placeholder)
		values[placeholder] = v
	}
	set = append(set, "#v = :v1", "#e = :e", "#t = :t")
	setOrRemove("#d", ":d", binOrNil(w.head))
	setOrRemove("#o", ":o", strOrNil(owner))
	setOrRemove("#n", ":n", strOrNil(w.nonce))
	setOrRemove("#g", ":g", strOrNil(w.set))
	if w.set != "" {
		setOrRemove("#c", ":c", num(int64(len(w.chunks))))
	} else {
		setOrRemove("#c", ":c", nil)
	}
	update := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		update += " REMOVE " + strings.Join(remove, ", ")
	}
	cond := "#v = :v AND #e > :now AND " + equalOrAbsent("#n", ":oldn", cur.nonce, values) +
		" AND " + equalOrAbsent("#g", ":oldg", cur.set, values)
	return &dynamodb.UpdateItemInput{
		TableName:                           s.table,
		Key:                                 recordKey(id),
		UpdateExpression:                    &update,
		ConditionExpression:                 &cond,
		ExpressionAttributeNames:            namesFor("#v", "#e", "#t", "#d", "#o", "#n", "#g", "#c"),
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// Touch moves the expiry of the live record with the id to expiry if that
// is later; it reports whether the record is live at now. When the
// conditional write does not apply, a read tells a live record whose expiry
// is already later from an absent or expired one.
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	if !validID(id) {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("dynamostore: touch: %w", err)
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                s.table,
		Key:                      recordKey(id),
		UpdateExpression:         &touchUpdate,
		ConditionExpression:      &touchCond,
		ExpressionAttributeNames: touchNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":e": num(expiry.UnixMilli()), ":t": num(s.ttl(expiry, now)), ":now": num(now.UnixMilli()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return true, nil
	}
	if !isConditionFailed(err) {
		return false, fmt.Errorf("dynamostore: touch: %w", err)
	}
	_, found, err := s.stateAfter(ctx, err, id, now)
	if err != nil {
		return false, fmt.Errorf("dynamostore: touch: %w", err)
	}
	return found, nil
}

// Delete removes the record with the id, with its owner entry and chunks;
// deleting an absent record (or a malformed id) is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !validID(id) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamostore: delete: %w", err)
	}
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:    s.table,
		Key:          recordKey(id),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return fmt.Errorf("dynamostore: delete: %w", err)
	}
	s.cleanup(ctx, id, out.Attributes)
	return nil
}

// DeleteExpired removes records whose expiry is at or before now. It walks
// the expiry index shard by shard, Options.SweepBatch entries per query,
// and deletes each record with a conditional DeleteItem (expiry still at or
// before now, so a record replaced meanwhile by a live one survives), eight
// at a time, then its owner entry and chunks. It stops when every shard is done or ctx
// ends; on error it returns the number removed so far with the error.
//
// The index is eventually consistent: a record that expired a moment ago
// may be left for the next sweep. DeleteExpired reads only index entries
// that are expired, so its cost grows with the number of expired records,
// not with the size of the table.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	nowMS := num(now.UnixMilli())
	total := 0
	for i := range 16 {
		shard := &types.AttributeValueMemberS{Value: hexDigits[i : i+1]}
		var start map[string]types.AttributeValue
		for {
			if err := ctx.Err(); err != nil {
				return total, fmt.Errorf("dynamostore: delete expired: %w", err)
			}
			page, err := s.db.Query(ctx, &dynamodb.QueryInput{
				TableName:                 s.table,
				IndexName:                 aws.String(ExpiryIndex),
				KeyConditionExpression:    &sweepKey,
				ExpressionAttributeNames:  sweepQNames,
				ExpressionAttributeValues: map[string]types.AttributeValue{":s": shard, ":now": nowMS},
				Limit:                     &s.batch,
				ExclusiveStartKey:         start,
			})
			if err != nil {
				return total, fmt.Errorf("dynamostore: delete expired: %w", err)
			}
			n, err := s.sweepPage(ctx, page.Items, nowMS)
			total += n
			if err != nil {
				return total, fmt.Errorf("dynamostore: delete expired: %w", err)
			}
			if len(page.LastEvaluatedKey) == 0 {
				break
			}
			start = page.LastEvaluatedKey
		}
	}
	return total, nil
}

// sweepWorkers is how many conditional deletes of one sweep page are in
// flight at once: each is a round trip, and a page holds up to SweepBatch.
const sweepWorkers = 8

// sweepPage deletes the records of one page of expiry index entries that
// are still expired at now, sweepWorkers at a time, and returns how many it
// deleted. It stops starting deletes at the first error.
func (s *Store) sweepPage(ctx context.Context, page []map[string]types.AttributeValue, nowMS types.AttributeValue) (int, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		deleted  int
		firstErr error
		slots    = make(chan struct{}, sweepWorkers)
	)
	for _, it := range page {
		id, ok := idFromKey(it)
		if !ok {
			continue
		}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                 s.table,
				Key:                       recordKey(id),
				ConditionExpression:       &sweepCond,
				ExpressionAttributeNames:  sweepNames,
				ExpressionAttributeValues: map[string]types.AttributeValue{":now": nowMS},
				ReturnValues:              types.ReturnValueAllOld,
			})
			if isConditionFailed(err) {
				return // live again: replaced by a Create meanwhile
			}
			mu.Lock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
			} else {
				deleted++
			}
			mu.Unlock()
			if err == nil {
				s.cleanup(ctx, id, out.Attributes)
			}
		})
	}
	wg.Wait()
	return deleted, firstErr
}

// ListOwner returns the ids of the records owned by owner that are live at
// now, in no particular order: a strongly consistent Query of the owner's
// entries, then a strongly consistent BatchGetItem of their records, which
// drops stale entries. The empty owner yields an empty list without a
// request.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	ids := []string{}
	if owner == "" || len(owner) > MaxOwnerLen {
		return ids, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dynamostore: list owner: %w", err)
	}
	entries, err := s.entries(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: list owner: %w", err)
	}
	for len(entries) > 0 {
		n := min(len(entries), 100)
		keys := make([]map[string]types.AttributeValue, n)
		for i, id := range entries[:n] {
			keys[i] = recordKey(id)
		}
		entries = entries[n:]
		req := map[string]types.KeysAndAttributes{*s.table: {
			Keys: keys, ConsistentRead: aws.Bool(true),
			ProjectionExpression: &listProj, ExpressionAttributeNames: listNames,
		}}
		for len(req) > 0 {
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("dynamostore: list owner: %w", err)
			}
			for _, it := range out.Responses[*s.table] {
				r := parseRecord(it)
				if id, ok := idFromKey(it); ok && r.owner == owner && r.expiry > now.UnixMilli() {
					ids = append(ids, id)
				}
			}
			req = out.UnprocessedKeys
			if len(req) > 0 {
				if err := pause(ctx); err != nil {
					return nil, fmt.Errorf("dynamostore: list owner: %w", err)
				}
			}
		}
	}
	return ids, nil
}

// DeleteOwner removes every record owned by owner, live or expired, and
// returns how many of them were live at now. It reads the owner's entries
// with a strongly consistent Query and deletes each record on condition
// that it still belongs to owner, then the entry. A record created or moved
// to owner while DeleteOwner runs may survive it, as with any concurrent
// write; a record owned by owner before DeleteOwner started cannot. The
// empty owner deletes nothing.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if owner == "" || len(owner) > MaxOwnerLen {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("dynamostore: delete owner: %w", err)
	}
	entries, err := s.entries(ctx, owner)
	if err != nil {
		return 0, fmt.Errorf("dynamostore: delete owner: %w", err)
	}
	ov := map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: owner}}
	n := 0
	for _, id := range entries {
		out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 s.table,
			Key:                       recordKey(id),
			ConditionExpression:       &ownerCond,
			ExpressionAttributeNames:  ownerNames,
			ExpressionAttributeValues: ov,
			ReturnValues:              types.ReturnValueAllOld,
		})
		if isConditionFailed(err) {
			// Absent or owned by another: a stale entry, or one whose
			// record is being written right now. Leave it.
			continue
		}
		if err != nil {
			return n, fmt.Errorf("dynamostore: delete owner: %w", err)
		}
		if parseRecord(out.Attributes).expiry > now.UnixMilli() {
			n++
		}
		s.cleanup(ctx, id, out.Attributes)
	}
	return n, nil
}

// ---- owner entries and chunks ----

// written is what prepare wrote ahead of a record.
type written struct {
	owner  string   // of the owner entry, "" for none
	nonce  string   // of the owner entry
	set    string   // of the chunks, "" for none
	head   []byte   // the data the record item carries
	chunks [][]byte // the data of the chunk items
}

// prepare writes the owner entry and the chunks of a record about to be
// written. Create and Update then write the record on a condition; if it
// fails, discard removes what prepare wrote.
func (s *Store) prepare(ctx context.Context, id string, data []byte, owner string) (written, error) {
	var w written
	w.head = data
	if len(data) > chunkSize {
		w.head = data[:chunkSize]
		for rest := data[chunkSize:]; len(rest) > 0; {
			n := min(len(rest), chunkSize)
			w.chunks = append(w.chunks, rest[:n])
			rest = rest[n:]
		}
		w.set = newNonce()
	}
	if owner != "" {
		w.owner, w.nonce = owner, newNonce()
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: s.table,
			Item: map[string]types.AttributeValue{
				aPK: &types.AttributeValueMemberS{Value: ownerPrefix + owner},
				aSK: &types.AttributeValueMemberS{Value: id + "#" + w.nonce},
			},
		})
		if err != nil {
			return w, err
		}
	}
	for i, c := range w.chunks {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: s.table,
			Item: map[string]types.AttributeValue{
				aPK:   &types.AttributeValueMemberS{Value: recordPrefix + id},
				aSK:   &types.AttributeValueMemberS{Value: chunkSK(w.set, i)},
				aData: &types.AttributeValueMemberB{Value: c},
			},
		})
		if err != nil {
			s.discard(ctx, id, w)
			return w, err
		}
	}
	return w, nil
}

// discard removes what prepare wrote for a record write that did not
// happen. It is best effort: what remains is stale and never read.
func (s *Store) discard(ctx context.Context, id string, w written) {
	s.removeChunks(ctx, id, w.set, len(w.chunks))
	if w.nonce != "" {
		s.removeEntry(ctx, id, w.owner, w.nonce)
	}
}

// cleanup removes the owner entry and chunks of a record item that was just
// deleted or replaced (old holds its attributes; nil for none). It is best
// effort: what remains is stale and never read.
func (s *Store) cleanup(ctx context.Context, id string, old map[string]types.AttributeValue) {
	if len(old) > 0 {
		s.cleanupRecord(ctx, id, parseRecord(old))
	}
}

func (s *Store) cleanupRecord(ctx context.Context, id string, old record) {
	s.removeChunks(ctx, id, old.set, int(old.chunks))
	if old.owner != "" {
		s.removeEntry(ctx, id, old.owner, old.nonce)
	}
}

// removeEntry deletes the owner entry that one record write made. Entries
// are keyed by the nonce of that write, so removing it never removes the
// entry of another write of the same id and owner.
func (s *Store) removeEntry(ctx context.Context, id, owner, nonce string) {
	_, _ = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: s.table,
		Key: map[string]types.AttributeValue{
			aPK: &types.AttributeValueMemberS{Value: ownerPrefix + owner},
			aSK: &types.AttributeValueMemberS{Value: id + "#" + nonce},
		},
	})
}

func (s *Store) removeChunks(ctx context.Context, id, set string, n int) {
	if set == "" {
		return
	}
	for i := range n {
		_, _ = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: s.table,
			Key: map[string]types.AttributeValue{
				aPK: &types.AttributeValueMemberS{Value: recordPrefix + id},
				aSK: &types.AttributeValueMemberS{Value: chunkSK(set, i)},
			},
		})
	}
}

// loadChunks reads the chunks of record r and returns its whole data, or
// ok == false when a chunk is missing (the record was replaced meanwhile).
func (s *Store) loadChunks(ctx context.Context, id string, r record) ([]byte, bool, error) {
	var buf bytes.Buffer
	buf.Grow(len(r.data) + int(r.chunks)*chunkSize)
	buf.Write(r.data)
	for i := range int(r.chunks) {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: s.table,
			Key: map[string]types.AttributeValue{
				aPK: &types.AttributeValueMemberS{Value: recordPrefix + id},
				aSK: &types.AttributeValueMemberS{Value: chunkSK(r.set, i)},
			},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return nil, false, err
		}
		if out.Item == nil {
			return nil, false, nil
		}
		b, _ := out.Item[aData].(*types.AttributeValueMemberB)
		if b == nil {
			return nil, false, nil
		}
		buf.Write(b.Value)
	}
	return buf.Bytes(), true, nil
}

// entries returns the ids of every entry of owner, read strongly
// consistently, each once.
func (s *Store) entries(ctx context.Context, owner string) ([]string, error) {
	var (
		out   []string
		start map[string]types.AttributeValue
		seen  = map[string]bool{}
	)
	for {
		page, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 s.table,
			KeyConditionExpression:    aws.String("#pk = :p"),
			ExpressionAttributeNames:  namesFor("#pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: ownerPrefix + owner}},
			ConsistentRead:            aws.Bool(true),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			// The sort key is "<id>#<nonce>"; an id may have several
			// entries under one owner while a write is in flight.
			sk := str(it[aSK])
			if len(sk) < 65 || sk[64] != '#' || !validID(sk[:64]) || seen[sk[:64]] {
				continue
			}
			seen[sk[:64]] = true
			out = append(out, sk[:64])
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}

// stateAfter is state for a write whose condition failed with failed (nil
// when no write was tried): DynamoDB returns the item with the failure
// (ReturnValuesOnConditionCheckFailure ALL_OLD), which saves the read; a
// server that does not (dynalite), or an absent item, takes the read.
func (s *Store) stateAfter(ctx context.Context, failed error, id string, now time.Time) (record, bool, error) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(failed, &ccf) && len(ccf.Item) > 0 {
		r := parseRecord(ccf.Item)
		return r, r.expiry > now.UnixMilli(), nil
	}
	return s.state(ctx, id, now)
}

// state reads the record's bookkeeping attributes strongly consistently and
// reports whether it is live at now.
func (s *Store) state(ctx context.Context, id string, now time.Time) (record, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                s.table,
		Key:                      recordKey(id),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     &stateProj,
		ExpressionAttributeNames: stateNames,
	})
	if err != nil {
		return record{}, false, err
	}
	r := parseRecord(out.Item)
	return r, out.Item != nil && r.expiry > now.UnixMilli(), nil
}

// ---- items ----

// record is a parsed session record item.
type record struct {
	data                    []byte
	version, expiry, chunks int64
	owner, nonce, set       string
}

func parseRecord(it map[string]types.AttributeValue) record {
	var r record
	if b, ok := it[aData].(*types.AttributeValueMemberB); ok {
		r.data = b.Value
	}
	r.version = numOf(it[aVersion])
	r.expiry = numOf(it[aExpiry])
	r.chunks = numOf(it[aChunks])
	r.owner = str(it[aOwner])
	r.nonce = str(it[aNonce])
	r.set = str(it[aSet])
	return r
}

// recordItem builds the record item for Create.
func (s *Store) recordItem(id string, w written, version int64, expiry time.Time, owner string, now time.Time) map[string]types.AttributeValue {
	it := map[string]types.AttributeValue{
		aPK:      &types.AttributeValueMemberS{Value: recordPrefix + id},
		aSK:      &types.AttributeValueMemberS{Value: recordSK},
		aVersion: num(version),
		aExpiry:  num(expiry.UnixMilli()),
		aTTL:     num(s.ttl(expiry, now)),
		aShard:   &types.AttributeValueMemberS{Value: id[:1]},
	}
	if len(w.head) > 0 {
		it[aData] = &types.AttributeValueMemberB{Value: w.head}
	}
	if owner != "" {
		it[aOwner] = &types.AttributeValueMemberS{Value: owner}
		it[aNonce] = &types.AttributeValueMemberS{Value: w.nonce}
	}
	if w.set != "" {
		it[aSet] = &types.AttributeValueMemberS{Value: w.set}
		it[aChunks] = num(int64(len(w.chunks)))
	}
	return it
}

// ttl returns the ttl attribute, in epoch seconds, for a record expiring at
// expiry: TTLMargin after the later of expiry and now (DynamoDB ignores ttl
// values more than five years in the past, such as the 1970 expiry of a
// record retired by a renewal).
func (s *Store) ttl(expiry, now time.Time) int64 {
	if expiry.Before(now) {
		expiry = now
	}
	return expiry.Add(s.ttlMargin + time.Second - 1).Unix()
}

func recordKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		aPK: &types.AttributeValueMemberS{Value: recordPrefix + id},
		aSK: &types.AttributeValueMemberS{Value: recordSK},
	}
}

func chunkSK(set string, i int) string { return "c#" + set + "#" + strconv.Itoa(i) }

// idFromKey returns the id of a record item (or index entry) by its key.
func idFromKey(it map[string]types.AttributeValue) (string, bool) {
	pk := str(it[aPK])
	if len(pk) != len(recordPrefix)+64 || pk[:len(recordPrefix)] != recordPrefix || str(it[aSK]) != recordSK {
		return "", false
	}
	id := pk[len(recordPrefix):]
	return id, validID(id)
}

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func numOf(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if err == nil {
			return i
		}
	}
	return 0
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func strOrNil(v string) types.AttributeValue {
	if v == "" {
		return nil
	}
	return &types.AttributeValueMemberS{Value: v}
}

func binOrNil(b []byte) types.AttributeValue {
	if len(b) == 0 {
		return nil
	}
	return &types.AttributeValueMemberB{Value: b}
}

// equalOrAbsent returns a condition that the attribute equals v, or is
// absent when v is "", adding v to values.
func equalOrAbsent(name, placeholder, v string, values map[string]types.AttributeValue) string {
	if v == "" {
		return "attribute_not_exists(" + name + ")"
	}
	values[placeholder] = &types.AttributeValueMemberS{Value: v}
	return name + " = " + placeholder
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// pause waits briefly before retrying unprocessed keys.
func pause(ctx context.Context) error {
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newNonce returns 16 random hexadecimal characters.
func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

const hexDigits = "0123456789abcdef"

// validID reports whether id is 64 lower-case hexadecimal characters. Upper
// case is refused: it would alias a lower-case id.
func validID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
