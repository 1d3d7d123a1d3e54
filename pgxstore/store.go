// Package pgxstore is a PostgreSQL session store for
// [github.com/sessionkit/sessions], built on [github.com/jackc/pgx/v5].
//
// It implements sessions.Store, sessions.ExpiredDeleter and
// sessions.OwnerIndex. Every contract operation is a single SQL statement
// that is atomic on its own, so the store needs no client-side locking and
// is safe for any number of application instances sharing one table.
//
// # Schema
//
// Records live in one table (default "sessions", see [DDL]):
//
//   - id: the hashed session id, 32 raw bytes (bytea). Ids arrive as 64
//     lower-case hexadecimal characters and are decoded before they reach
//     the database.
//   - data: the opaque record (bytea, up to 1 GB).
//   - version: bigint, 1 on create, +1 on every successful update.
//   - expiry: bigint Unix milliseconds on the application's clock. The
//     database clock is never consulted.
//   - owner: text, NULL when the record has no owner; indexed (partial index
//     over non-NULL owners) for [Store.ListOwner] and [Store.DeleteOwner].
//
// An index on expiry serves [Store.DeleteExpired].
//
// Create the table with [Store.CreateTable], or run [DDL] (adapted to your
// table name) with your migration tool.
//
// # Partitioned layout
//
// With Options.Partition set, the table is partitioned by range on expiry
// ([PartitionedDDL]) and [Store.DeleteExpired] drops the partitions whose
// interval has passed instead of deleting their rows; see the Partition
// option and the README for its DDL, costs and the migration from the
// plain table.
//
// # Malformed ids
//
// A malformed id (anything but 64 characters of [0-9a-f]) can never have
// been stored: Load, Update and Touch report it as not found, Delete ignores
// it, and Create rejects it with an error wrapping [ErrInvalidID].
//
// # Near cache
//
// [NearCache] wraps a Store with a cache of loaded records in the process,
// kept coherent through LISTEN/NOTIFY by a trigger on the table
// ([Store.CreateNotifyTrigger]), with a hard bound on the age of a copy.
//
// # Time precision
//
// Expiries are stored with millisecond precision, truncated. A record
// expires at the start of the millisecond that contains its expiry, so the
// store may consider a record expired up to one millisecond early, never
// late.
package pgxstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is the subset of the pgx API the store uses. *pgxpool.Pool, *pgx.Conn
// and pgx.Tx all implement it. A *pgxpool.Pool is the usual choice; with a
// pgx.Tx every store call runs inside that transaction, which is useful in
// tests and for callers that want session writes to commit or roll back
// together with their own writes.
type DB interface {
	Exec(ctx context.Context, sql string, arguments ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Defaults applied by [New] to zero [Options] fields.
const (
	// DefaultTable is the table name used when Options.Table is empty.
	DefaultTable = "sessions"
	// DefaultSweepBatch is the number of expired records that one
	// statement of [Store.DeleteExpired] removes when Options.SweepBatch
	// is zero.
	DefaultSweepBatch = 1000
	// DefaultPartitionAhead is how far past now partitions are created
	// ahead when Options.Partition is set and Options.PartitionAhead is
	// zero: the Manager's default Lifetime.
	DefaultPartitionAhead = 24 * time.Hour
	// MaxPartitions bounds PartitionAhead/Partition: the number of
	// partitions a load probes.
	MaxPartitions = 1000
)

// DDL creates the default table ("sessions", unqualified, so it lands in the
// first schema of the search_path) and its indexes. It is what
// [Store.CreateTable] runs for zero [Options]; for another table or schema
// CreateTable substitutes the names. Every statement is idempotent.
const DDL = `CREATE TABLE IF NOT EXISTS "sessions" (
	id      bytea  PRIMARY KEY,
	data    bytea  NOT NULL,
	version bigint NOT NULL,
	expiry  bigint NOT NULL,
	owner   text
);
CREATE INDEX IF NOT EXISTS "sessions_expiry_idx" ON "sessions" (expiry);
CREATE INDEX IF NOT EXISTS "sessions_owner_idx" ON "sessions" (owner) WHERE owner IS NOT NULL;
`

// Errors returned by the store. Match them with [errors.Is].
var (
	// ErrInvalidID is wrapped by Create when the id is not 64 lower-case
	// hexadecimal characters.
	ErrInvalidID = errors.New("pgxstore: malformed session id")
	// ErrInvalidOptions is wrapped by New when an option is out of range.
	ErrInvalidOptions = errors.New("pgxstore: invalid options")
)

// Options configures [New]. The zero value (or a nil *Options) is valid: the
// table "sessions" on the connection's search_path, swept 1000 records at a
// time.
type Options struct {
	// Table is the table name. It must match ^[A-Za-z_][A-Za-z0-9_]{0,51}$
	// (at most 52 characters, so that the derived index names
	// <table>_expiry_idx and <table>_owner_idx fit PostgreSQL's 63-byte
	// limit). It is always quoted, hence case-sensitive. Default
	// "sessions".
	Table string

	// Schema qualifies the table when set. It must match
	// ^[A-Za-z_][A-Za-z0-9_]{0,62}$ and is quoted, hence case-sensitive.
	// The schema must exist; CreateTable does not create it. Default:
	// unqualified, resolved through the connection's search_path.
	Schema string

	// SweepBatch is the maximum number of records one DELETE statement of
	// DeleteExpired removes; DeleteExpired repeats it until a batch comes
	// back short. Zero means DefaultSweepBatch; negative is an error.
	SweepBatch int

	// Partition, when positive, selects the partitioned layout: the table
	// is partitioned by range on expiry, each partition holding the
	// records whose expiries fall in one interval of this width (aligned
	// on the Unix epoch), and DeleteExpired drops whole partitions whose
	// interval has passed instead of deleting their rows one by one (see
	// [PartitionedDDL] and the package README for the layout, its costs
	// and the migration from the plain table). Zero, the default, is the
	// plain table of [DDL]. It must be a whole number of milliseconds
	// between one minute and 30 days; with it, Table is at most 40
	// characters (so that the partitions' names, <table>_p<start>, fit),
	// and the DB must not be a pgx.Tx (DeleteExpired detaches partitions
	// with DETACH PARTITION ... CONCURRENTLY, which PostgreSQL refuses
	// inside a transaction). Pick it from the Manager's timeouts: loads
	// probe one partition per width from now to the longest expiry a
	// write carries (Lifetime, or RememberLifetime), so Lifetime/Partition
	// is the number of partitions a load probes.
	Partition time.Duration

	// PartitionAhead is how far past now CreateTable and DeleteExpired
	// create partitions when Partition is set, so that writes find their
	// partition ready; a write whose expiry lies beyond creates its
	// partition on the spot (which takes a brief lock on the table, see
	// the README). Set it to the longest expiry a write carries (the
	// Manager's Lifetime, or RememberLifetime when used). Zero means
	// DefaultPartitionAhead; negative is an error, and so is more than
	// MaxPartitions partitions ahead.
	PartitionAhead time.Duration
}

var (
	tableRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,51}$`)
	schemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

// Store is a PostgreSQL session store. Create it with [New]. It holds no
// connection of its own and starts no goroutine; it is safe for concurrent
// use by multiple goroutines, as safe as the [DB] it was given (a pool is; a
// single *pgx.Conn or pgx.Tx is not, so the caller must serialise calls on
// those).
type Store struct {
	db    DB
	batch int
	ddl   []string
	table string // quoted, schema-qualified when configured

	// The partitioned layout (Options.Partition); part is nil for the
	// plain table.
	part *partLayout

	qCreate, qLoad, qUpdate, qExists, qTouch, qDelete string
	qSweep, qListOwner, qDeleteOwner                  string

	// Used by NearCache only: the notification channel, the trigger's
	// DDL and name, and DeleteOwner returning the ids it removed.
	channel, triggerName, qTriggerExists string
	notifyDDL                            []string
	qDeleteOwnerIDs                      string
}

// New returns a store that keeps records in the table named by opts, using
// db for every statement. It validates opts and does no I/O: call
// [Store.CreateTable] (or run [DDL]) before the first use.
func New(db DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("pgxstore: nil DB: %w", ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !tableRE.MatchString(o.Table) {
		return nil, fmt.Errorf("pgxstore: Table %q does not match %s: %w", o.Table, tableRE, ErrInvalidOptions)
	}
	if o.Schema != "" && !schemaRE.MatchString(o.Schema) {
		return nil, fmt.Errorf("pgxstore: Schema %q does not match %s: %w", o.Schema, schemaRE, ErrInvalidOptions)
	}
	switch {
	case o.SweepBatch < 0:
		return nil, fmt.Errorf("pgxstore: negative SweepBatch %d: %w", o.SweepBatch, ErrInvalidOptions)
	case o.SweepBatch == 0:
		o.SweepBatch = DefaultSweepBatch
	}
	if err := checkPartition(db, &o); err != nil {
		return nil, err
	}

	// Identifiers are validated above and always double-quoted; every
	// value travels as a parameter.
	t := `"` + o.Table + `"`
	if o.Schema != "" {
		t = `"` + o.Schema + `".` + t
	}
	// The table name is at most 52 characters, so these fit 63 bytes.
	channel := o.Table + "_changed"
	fn := `"` + o.Table + `_notify"`
	if o.Schema != "" {
		fn = `"` + o.Schema + `".` + fn
	}
	s := &Store{
		db:    db,
		batch: o.SweepBatch,
		ddl: []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	id      bytea  PRIMARY KEY,
	data    bytea  NOT NULL,
	version bigint NOT NULL,
	expiry  bigint NOT NULL,
	owner   text
)`,
			`CREATE INDEX IF NOT EXISTS "` + o.Table + `_expiry_idx" ON ` + t + ` (expiry)`,
			`CREATE INDEX IF NOT EXISTS "` + o.Table + `_owner_idx" ON ` + t + ` (owner) WHERE owner IS NOT NULL`,
		},

		// Create-if-absent, replacing an expired row with the same id in
		// the same statement. ON CONFLICT ... DO UPDATE locks the
		// conflicting row and evaluates the WHERE against its latest
		// committed version, so a live row is never overwritten and two
		// concurrent creators of one id cannot both succeed. One row
		// affected means inserted or replaced; zero means a live row won.
		qCreate: `INSERT INTO ` + t + ` AS s (id, data, version, expiry, owner)
VALUES ($1, $2, 1, $3, NULLIF($4::text, ''))
ON CONFLICT (id) DO UPDATE
SET data = excluded.data, version = 1, expiry = excluded.expiry, owner = excluded.owner
WHERE s.expiry <= $5`,

		qLoad: `SELECT data, version, expiry FROM ` + t + ` WHERE id = $1 AND expiry > $2`,

		// Compare-and-set on the version. Under READ COMMITTED a row
		// updated concurrently is re-checked against its newest version
		// before it is written, so lost updates are impossible.
		qUpdate: `UPDATE ` + t + `
SET data = $1, expiry = $2, owner = NULLIF($3::text, ''), version = version + 1
WHERE id = $4 AND version = $5 AND expiry > $6`,

		// Run only when qUpdate wrote nothing, to tell "changed" from
		// "gone". Ids are random 256-bit values and a deleted or expired
		// record cannot come back under its id, so if the row is live now
		// it was live, with another version, when the update failed.
		qExists: `SELECT EXISTS (SELECT 1 FROM ` + t + ` WHERE id = $1 AND expiry > $2)`,

		// PostgreSQL counts matched rows, so one row affected means the
		// record is live even when GREATEST leaves its expiry unchanged.
		qTouch: `UPDATE ` + t + ` SET expiry = GREATEST(expiry, $1) WHERE id = $2 AND expiry > $3`,

		qDelete: `DELETE FROM ` + t + ` WHERE id = $1`,

		// One bounded batch over the expiry index, starting at the cursor
		// $3: the highest expiry the previous batch removed. The inner
		// SELECT locks at most $2 expired rows; FOR UPDATE re-checks
		// "expiry <= $1" on the latest version of each row, and the lock
		// keeps it expired until the DELETE. SKIP LOCKED leaves rows
		// another transaction holds (a concurrent sweeper, or an update)
		// for a later sweep instead of waiting. "= ANY(ARRAY(...))" makes
		// the batch an InitPlan and the DELETE a primary-key lookup: the
		// equivalent "id IN (SELECT ...)" is planned as a hash semi-join
		// over a sequential scan of the whole table. The statement
		// returns the number of rows removed and the cursor for the next
		// batch, so a batch is one round trip, and no batch walks the
		// index entries of the rows earlier batches removed (they stay in
		// the index, dead, until VACUUM).
		qSweep: `WITH d AS (DELETE FROM ` + t + ` WHERE id = ANY (ARRAY(
	SELECT id FROM ` + t + ` WHERE expiry >= $3 AND expiry <= $1 ORDER BY expiry LIMIT $2 FOR UPDATE SKIP LOCKED
)) RETURNING expiry)
SELECT count(*), coalesce(max(expiry), $3) FROM d`,

		qListOwner: `SELECT id FROM ` + t + ` WHERE owner = $1 AND expiry > $2`,

		// Deletes every row of the owner, live or expired, and counts the
		// live ones, in one statement.
		qDeleteOwner: `WITH d AS (DELETE FROM ` + t + ` WHERE owner = $1 RETURNING expiry)
SELECT count(*) FROM d WHERE expiry > $2`,

		qDeleteOwnerIDs: `DELETE FROM ` + t + ` WHERE owner = $1 RETURNING id, expiry > $2`,

		channel:     channel,
		triggerName: o.Table + "_notify",
		// A row-level AFTER trigger, so the notification is queued inside
		// the writing transaction and delivered at its commit, in commit
		// order, whoever wrote the row. An UPDATE that changes neither
		// version nor expiry (a Touch that moved nothing) stays silent.
		// PostgreSQL folds identical notifications of one transaction.
		notifyDDL: []string{
			`CREATE OR REPLACE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.version = NEW.version AND OLD.expiry = NEW.expiry THEN
		RETURN NULL;
	END IF;
	PERFORM pg_notify('` + channel + `', encode(OLD.id, 'hex'));
	RETURN NULL;
END $fn$`,
			`DROP TRIGGER IF EXISTS "` + o.Table + `_notify" ON ` + t,
			`CREATE TRIGGER "` + o.Table + `_notify" AFTER UPDATE OR DELETE ON ` + t +
				` FOR EACH ROW EXECUTE FUNCTION ` + fn + `()`,
		},
		qTriggerExists: `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = $2 AND tgenabled <> 'D')`,
	}
	s.table = t
	if o.Partition > 0 {
		s.partitioned(o, t)
	}
	return s, nil
}

// CreateTable creates the table and its indexes if they do not exist. It is
// idempotent, and safe to call from many processes at once (every instance
// of an application at start-up): PostgreSQL's CREATE ... IF NOT EXISTS is
// not safe against itself, so the statements run in one transaction under
// a transaction-level advisory lock. The schema, when configured, must
// already exist.
func (s *Store) CreateTable(ctx context.Context) error {
	q := "DO $sessionkit$ BEGIN PERFORM pg_advisory_xact_lock(" + ddlLockKey + "); " +
		strings.Join(s.ddl, "; ") + "; END $sessionkit$"
	if _, err := s.db.Exec(ctx, q); err != nil {
		return fmt.Errorf("pgxstore: create table: %w", err)
	}
	if s.part != nil {
		if err := s.createPartitioned(ctx); err != nil {
			return fmt.Errorf("pgxstore: create table: %w", err)
		}
	}
	return nil
}

// ddlLockKey is the advisory lock that serializes CreateTable calls.
const ddlLockKey = "hashtext('github.com/sessionkit/sessions/pgxstore.CreateTable')"

// Create stores a new record with version 1 unless a live record has the
// id. An expired record with the id is replaced. A malformed id is an error
// wrapping [ErrInvalidID].
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return false, fmt.Errorf("pgxstore: create: %w", ErrInvalidID)
	}
	expMS := expiry.UnixMilli()
	if s.part != nil {
		var created bool
		err := s.retry(ctx, expMS, func() error {
			return s.db.QueryRow(ctx, s.part.qCreateFn, s.args(key, nonNil(data), expMS, owner, now.UnixMilli())...).Scan(&created)
		})
		if err != nil {
			return false, fmt.Errorf("pgxstore: create: %w", err)
		}
		return created, nil
	}
	tag, err := s.db.Exec(ctx, s.qCreate, key, nonNil(data), expMS, owner, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("pgxstore: create: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Load returns the record with the id if it is live at now. The returned
// slice is the caller's own.
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return nil, 0, time.Time{}, false, nil
	}
	var (
		data            []byte
		version, expiry int64
	)
	err := s.db.QueryRow(ctx, s.qLoad, s.args(key, now.UnixMilli())...).Scan(&data, &version, &expiry)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, time.Time{}, false, nil
	}
	if err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("pgxstore: load: %w", err)
	}
	return nonNil(data), version, time.UnixMilli(expiry), true, nil
}

// Update writes data, expiry and owner and increments the version if the
// record is live at now and still has the given version. When nothing was
// written, a second query tells a live record with another version
// (found == true) from an absent or expired one (found == false).
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return false, false, nil
	}
	nowMS, expMS := now.UnixMilli(), expiry.UnixMilli()
	var tag pgconn.CommandTag
	err := s.retry(ctx, expMS, func() error {
		var err error
		if s.part != nil && expMS <= nowMS {
			tag, err = s.db.Exec(ctx, s.part.qUpdateDead, s.args(key, version, nowMS)...)
		} else {
			tag, err = s.db.Exec(ctx, s.qUpdate, s.args(nonNil(data), expMS, owner, key, version, nowMS)...)
		}
		if isMoved(err) {
			// A concurrent write moved the row to another partition
			// while this statement waited for it: the record changed
			// meanwhile, and the caller re-applies its change.
			return errChanged
		}
		return err
	})
	if err == errChanged {
		return false, true, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("pgxstore: update: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, true, nil
	}
	var found bool
	if err := s.db.QueryRow(ctx, s.qExists, s.args(key, nowMS)...).Scan(&found); err != nil {
		return false, false, fmt.Errorf("pgxstore: update: %w", err)
	}
	return false, found, nil
}

// Touch moves the expiry of the live record with the id to expiry if that
// is later; it reports whether the record is live at now.
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return false, nil
	}
	var tag pgconn.CommandTag
	err := s.retry(ctx, expiry.UnixMilli(), func() error {
		var err error
		tag, err = s.db.Exec(ctx, s.qTouch, s.args(expiry.UnixMilli(), key, now.UnixMilli())...)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pgxstore: touch: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Delete removes the record with the id; deleting an absent record (or a
// malformed id) is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	key, ok := decodeID(id)
	if !ok {
		return nil
	}
	err := s.retry(ctx, 0, func() error {
		_, err := s.db.Exec(ctx, s.qDelete, s.args(key)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgxstore: delete: %w", err)
	}
	return nil
}

// DeleteExpired removes records whose expiry is at or before now, in
// batches of Options.SweepBatch rows, one statement (and so one short
// transaction, unless the store was given a pgx.Tx) per batch. It stops when
// a batch removes fewer rows than the batch size, or when ctx ends; on error
// it returns the number removed so far with the error.
//
// The batches walk the expiry index in order: each starts at the highest
// expiry the previous one removed, so a sweep reads the index entries of
// removed rows only where expiries are equal, however many rows it removes
// (PostgreSQL keeps those entries until VACUUM). What one sweep may leave
// for the next: rows locked by another transaction when their batch ran
// (skipped, not waited for); rows whose expiry a concurrent write moved
// below the batch in progress; and, when a concurrent write gives a row an
// expiry at or before now that is later than the rest of its batch, the
// rows with expiries in between.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	var (
		n   int
		err error
	)
	if s.part != nil {
		n, err = s.deleteExpiredPartitioned(ctx, now.UnixMilli())
	} else {
		n, err = s.sweep(ctx, now.UnixMilli())
	}
	if err != nil {
		return n, fmt.Errorf("pgxstore: delete expired: %w", err)
	}
	return n, nil
}

// sweep removes the expired rows in batches (see DeleteExpired).
func (s *Store) sweep(ctx context.Context, nowMS int64) (int, error) {
	total := 0
	cursor := int64(math.MinInt64)
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var n int64
		err := s.retry(ctx, 0, func() error {
			return s.db.QueryRow(ctx, s.qSweep, s.args(nowMS, s.batch, cursor)...).Scan(&n, &cursor)
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if int(n) < s.batch {
			return total, nil
		}
	}
}

// ListOwner returns the ids of the records owned by owner that are live at
// now, in no particular order. The empty owner yields an empty list without
// a query.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if owner == "" {
		return []string{}, nil
	}
	rows, err := s.db.Query(ctx, s.qListOwner, s.args(owner, now.UnixMilli())...)
	if err != nil {
		return nil, fmt.Errorf("pgxstore: list owner: %w", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var key []byte
		if err := rows.Scan(&key); err != nil {
			return nil, fmt.Errorf("pgxstore: list owner: %w", err)
		}
		ids = append(ids, encodeID(key))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgxstore: list owner: %w", err)
	}
	return ids, nil
}

// DeleteOwner removes every record owned by owner, live or expired, in one
// statement, and returns how many of them were live at now. The empty owner
// deletes nothing.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if owner == "" {
		return 0, nil
	}
	var n int64
	err := s.retry(ctx, 0, func() error {
		return s.db.QueryRow(ctx, s.qDeleteOwner, s.args(owner, now.UnixMilli())...).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("pgxstore: delete owner: %w", err)
	}
	return int(n), nil
}

// errChanged is Update's internal signal for a row moved away under it.
var errChanged = errors.New("pgxstore: changed meanwhile")

// nonNil maps a nil slice to an empty one: data is NOT NULL, and the
// contract returns an empty, non-nil slice for empty data.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// decodeID turns a 64-character lower-case hexadecimal id into its 32 bytes.
// It accepts nothing else: upper case would alias a lower-case id.
func decodeID(id string) ([]byte, bool) {
	if len(id) != 64 {
		return nil, false
	}
	key := make([]byte, 32)
	for i := range key {
		hi, ok1 := fromHex(id[2*i])
		lo, ok2 := fromHex(id[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		key[i] = hi<<4 | lo
	}
	return key, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// encodeID is the inverse of decodeID.
func encodeID(key []byte) string {
	buf := make([]byte, 2*len(key))
	for i, b := range key {
		buf[2*i] = hexDigits[b>>4]
		buf[2*i+1] = hexDigits[b&0x0f]
	}
	return string(buf)
}
