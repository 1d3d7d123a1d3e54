// Package mysqlstore is a MySQL and MariaDB session store for
// [github.com/sessionkit/sessions], built on database/sql.
//
// It implements sessions.Store, sessions.ExpiredDeleter and
// sessions.OwnerIndex. The caller opens the *sql.DB with a driver of their
// choice (tested with github.com/go-sql-driver/mysql against MariaDB 10.11).
// Every contract operation is one SQL statement that is atomic on its own
// (DeleteOwner is two, see there), so the store needs no client-side locking
// and is safe for any number of application instances sharing one table.
//
// # Schema
//
// Records live in one InnoDB table (default "sessions", see [DDL]):
//
//   - id: the hashed session id, BINARY(32). Ids arrive as 64 lower-case
//     hexadecimal characters and are decoded before they reach the
//     database, so no collation can fold their case.
//   - data: the opaque record, LONGBLOB (a BLOB holds only 64 KiB and a
//     MEDIUMBLOB 16 MiB; a LONGBLOB cannot be overflowed through the wire
//     protocol, so even a non-strict sql_mode can never truncate data).
//     Writes are bounded by the server's max_allowed_packet instead, and a
//     larger write fails with an error.
//   - version: BIGINT, 1 on create, +1 on every successful update.
//   - expiry: BIGINT Unix milliseconds on the application's clock. The
//     database clock (NOW(), TIMESTAMP columns) is never consulted.
//   - owner: VARBINARY(255), NULL when the record has no owner. Binary, so
//     owners compare byte for byte: case- and trailing-space-sensitive.
//     Longer owners are rejected with [ErrOwnerTooLong] before any I/O.
//
// Indexes: expiry (for [Store.DeleteExpired]) and (owner, expiry), which
// covers [Store.ListOwner] together with the primary key.
//
// Create the table with [Store.CreateTable], or run [DDL] (adapted to your
// table name) with your migration tool.
//
// # DSN requirements
//
// None. The store reads the outcome of Create, Update and Touch from the
// insert id that LAST_INSERT_ID(expr) sets in the server's OK packet, not
// from the affected-rows count, so it works with clientFoundRows on or off,
// with interpolateParams on or off, and in any sql_mode (including
// MariaDB's SIMULTANEOUS_ASSIGNMENT). Statements are prepared once per
// connection through database/sql and reused; [Store.Close] releases them.
//
// Statements that look a record up by id force the primary key (FORCE
// INDEX), so they lock the row before any secondary index entry. A
// statement that InnoDB nevertheless rolls back as a deadlock victim (error
// 1213, possible between DeleteOwner or DeleteExpired and an Update of the
// same row) is re-run, up to three times: every statement runs on its own,
// so re-running it is safe.
//
// A side effect: the store's statements set the connection's
// LAST_INSERT_ID() value. Code that shares the *sql.DB cannot rely on that
// value across statements anyway (each statement may run on another pooled
// connection), but a caller reading LAST_INSERT_ID() on a dedicated
// connection should not interleave store calls on it.
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
package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionkit/sessions/internal/pace"
)

// Defaults applied by [New] to zero [Options] fields.
const (
	// DefaultTable is the table name used when Options.Table is empty.
	DefaultTable = "sessions"
	// DefaultSweepBatch is the number of expired records that one
	// statement of [Store.DeleteExpired] removes when Options.SweepBatch
	// is zero.
	DefaultSweepBatch = 1000
	// DefaultSweepDutyCycle is the share of its time [Store.DeleteExpired]
	// spends deleting when Options.SweepDutyCycle is zero: it rests after
	// each batch three times as long as the batch took.
	DefaultSweepDutyCycle = 0.25
	// MaxOwnerLen is the longest owner, in bytes, the owner column holds.
	MaxOwnerLen = 255
)

// DDL creates the default table ("sessions", in the DSN's database) with its
// indexes. It is what [Store.CreateTable] runs for zero [Options]; for
// another table CreateTable substitutes the name. It is idempotent.
const DDL = "CREATE TABLE IF NOT EXISTS `sessions` (" + ddlBody

const ddlBody = `
	id      BINARY(32)     NOT NULL,
	data    LONGBLOB       NOT NULL,
	version BIGINT         NOT NULL,
	expiry  BIGINT         NOT NULL,
	owner   VARBINARY(255) NULL,
	PRIMARY KEY (id),
	KEY expiry_idx (expiry),
	KEY owner_idx (owner, expiry)
) ENGINE=InnoDB`

// Errors returned by the store. Match them with [errors.Is].
var (
	// ErrInvalidID is wrapped by Create when the id is not 64 lower-case
	// hexadecimal characters.
	ErrInvalidID = errors.New("mysqlstore: malformed session id")
	// ErrOwnerTooLong is wrapped by Create and Update when the owner is
	// longer than MaxOwnerLen bytes.
	ErrOwnerTooLong = errors.New("mysqlstore: owner longer than 255 bytes")
	// ErrInvalidOptions is wrapped by New when an option is out of range.
	ErrInvalidOptions = errors.New("mysqlstore: invalid options")
)

// Options configures [New]. The zero value (or a nil *Options) is valid: the
// table "sessions" in the DSN's database, swept 1000 records at a time with
// a rest three times as long as each batch after it.
type Options struct {
	// Table is the table name, in the database the DSN selects. It must
	// match ^[A-Za-z_][A-Za-z0-9_]{0,63}$ and is always backquoted.
	// Default "sessions".
	Table string

	// SweepBatch is the maximum number of records one DELETE statement of
	// DeleteExpired removes; DeleteExpired repeats it until no expired
	// record is left past the last batch. Zero means DefaultSweepBatch;
	// negative is an error.
	SweepBatch int

	// SweepDutyCycle is the share of its time DeleteExpired spends
	// deleting: after each batch but the last it rests for the batch's
	// duration times (1/SweepDutyCycle - 1), leaving the server's CPU and
	// log to live requests for that long, and slowing down by itself when
	// the server is slow. 1 deletes batch after batch without a rest;
	// 0.25, the default, rests three times as long as each batch took.
	// Zero means DefaultSweepDutyCycle; above 1 or negative is an error.
	SweepDutyCycle float64
}

var tableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Store is a MySQL/MariaDB session store. Create it with [New]. It starts no
// goroutine and is safe for concurrent use by multiple goroutines.
type Store struct {
	db    *sql.DB
	batch int
	duty  float64
	ddl   string

	create, load, update, touch, del                        *lazyStmt
	sweepBound, sweep, listOwner, deleteOwner, purgeExpired *lazyStmt
}

// Outcomes reported through LAST_INSERT_ID(expr). A statement whose
// LAST_INSERT_ID(expr) is never evaluated (no row matched, or a fresh
// insert into this table, which has no AUTO_INCREMENT column) reports an
// insert id of 0.
const (
	idNone    = 0 // no row matched / a new row was inserted
	idWritten = 1 // the guarded write happened
	idKept    = 2 // a row matched but the guard kept it unchanged
)

// New returns a store that keeps records in the table named by opts, using
// db for every statement. It validates opts and does no I/O: call
// [Store.CreateTable] (or run [DDL]) before the first use.
func New(db *sql.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("mysqlstore: nil *sql.DB: %w", ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !tableRE.MatchString(o.Table) {
		return nil, fmt.Errorf("mysqlstore: Table %q does not match %s: %w", o.Table, tableRE, ErrInvalidOptions)
	}
	switch {
	case o.SweepBatch < 0:
		return nil, fmt.Errorf("mysqlstore: negative SweepBatch %d: %w", o.SweepBatch, ErrInvalidOptions)
	case o.SweepBatch == 0:
		o.SweepBatch = DefaultSweepBatch
	}
	switch {
	case !(o.SweepDutyCycle >= 0 && o.SweepDutyCycle <= 1): // NaN too
		return nil, fmt.Errorf("mysqlstore: SweepDutyCycle %v not in [0, 1]: %w", o.SweepDutyCycle, ErrInvalidOptions)
	case o.SweepDutyCycle == 0:
		o.SweepDutyCycle = DefaultSweepDutyCycle
	}

	// The identifier is validated above and always backquoted; every value
	// travels as a parameter.
	t := "`" + o.Table + "`"
	return &Store{
		db:    db,
		batch: o.SweepBatch,
		duty:  o.SweepDutyCycle,
		ddl:   "CREATE TABLE IF NOT EXISTS " + t + " (" + ddlBody,

		// Create-if-absent that also replaces an expired row, in one
		// statement. A plain INSERT cannot replace an expired row, and
		// DELETE-expired-then-INSERT is two statements with a window in
		// between; INSERT IGNORE would hide unrelated errors. So: INSERT,
		// and on a duplicate id overwrite the existing row only if it has
		// expired at the caller's now. A live row keeps every column.
		//
		// The outcome is read from LAST_INSERT_ID(expr), evaluated only on
		// the duplicate path: 0 = inserted, 1 = expired row replaced,
		// 2 = live row kept. The affected-rows count cannot tell "inserted"
		// (1) from "kept" (0, but 1 with clientFoundRows), so it is only
		// cross-checked.
		//
		// expiry is assigned last and every guard reads it: MySQL assigns
		// left to right (later expressions see earlier assignments),
		// MariaDB's SIMULTANEOUS_ASSIGNMENT mode makes all see the old
		// row; either way each guard sees the old expiry. VALUES(col) is
		// the value the INSERT would have written.
		create: newLazyStmt("INSERT INTO " + t + ` (id, data, version, expiry, owner)
VALUES (?, ?, 1, ?, NULLIF(?, ''))
ON DUPLICATE KEY UPDATE
	data    = IF(expiry <= ?, VALUES(data), data),
	version = IF(expiry <= ?, 1, version),
	owner   = IF(expiry <= ?, VALUES(owner), owner),
	expiry  = IF(LAST_INSERT_ID(IF(expiry <= ?, 1, 2)) = 1, VALUES(expiry), expiry)`),

		// Statements that find a row by id force the primary key: on
		// small tables MariaDB may otherwise range-scan expiry_idx for
		// "expiry > ?", locking expiry_idx before the row, which
		// deadlocks against a DELETE that locks the row first.
		load: newLazyStmt("SELECT data, version, expiry FROM " + t + " FORCE INDEX (PRIMARY) WHERE id = ? AND expiry > ?"),

		// Compare-and-set on the version, in one statement that also
		// tells "changed" from "gone": the WHERE matches the live row
		// whatever its version, every assignment is guarded by the
		// version check, and LAST_INSERT_ID records which branch ran
		// (1 = written, 2 = live with another version, 0 = no live row).
		// version is assigned last, so every guard reads the old version
		// under both assignment orders (see create). InnoDB locks the row
		// for the statement, so two updates of one version cannot both
		// win.
		update: newLazyStmt("UPDATE " + t + ` FORCE INDEX (PRIMARY) SET
	data    = IF(version = ?, ?, data),
	expiry  = IF(version = ?, ?, expiry),
	owner   = IF(version = ?, NULLIF(?, ''), owner),
	version = IF(LAST_INSERT_ID(IF(version = ?, 1, 2)) = 1, version + 1, version)
WHERE id = ? AND expiry > ?`),

		// Extends the expiry, never shortens it. Without clientFoundRows
		// MySQL reports 0 affected rows when GREATEST keeps the expiry, so
		// "found" comes from LAST_INSERT_ID(1), evaluated only for a
		// matched (live) row. Its argument reads the row, so the
		// optimizer cannot evaluate it as a constant.
		touch: newLazyStmt("UPDATE " + t + ` FORCE INDEX (PRIMARY) SET
	expiry = IF(LAST_INSERT_ID(expiry > ?) = 1, GREATEST(expiry, ?), expiry)
WHERE id = ? AND expiry > ?`),

		del: newLazyStmt("DELETE FROM " + t + " WHERE id = ?"),

		// A batch of DeleteExpired: the expiry of the batch-th row at or
		// after the start (an index-only read of at most that many
		// entries), then the rows from the start up to that expiry, in
		// expiry order, at most a batch of them. See DeleteExpired.
		sweepBound: newLazyStmt("SELECT expiry FROM " + t + " WHERE expiry >= ? AND expiry <= ? ORDER BY expiry LIMIT 1 OFFSET ?"),
		sweep:      newLazyStmt("DELETE FROM " + t + " WHERE expiry >= ? AND expiry <= ? ORDER BY expiry LIMIT ?"),

		listOwner: newLazyStmt("SELECT id FROM " + t + " FORCE INDEX (owner_idx) WHERE owner = ? AND expiry > ?"),

		// MySQL's DELETE cannot return the rows it removed, so
		// DeleteOwner runs two statements over the (owner, expiry) index:
		// the live rows (counted), then the expired rest. See
		// Store.DeleteOwner. The multiple-table form of DELETE is the one
		// that accepts an index hint.
		deleteOwner:  newLazyStmt("DELETE s FROM " + t + " AS s FORCE INDEX (owner_idx) WHERE s.owner = ? AND s.expiry > ?"),
		purgeExpired: newLazyStmt("DELETE s FROM " + t + " AS s FORCE INDEX (owner_idx) WHERE s.owner = ? AND s.expiry <= ?"),
	}, nil
}

// CreateTable creates the table and its indexes if the table does not
// exist. It is idempotent.
func (s *Store) CreateTable(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, s.ddl); err != nil {
		return fmt.Errorf("mysqlstore: create table: %w", err)
	}
	return nil
}

// Close releases the store's prepared statements on the server. It does not
// close the *sql.DB. The store stays usable: a later call prepares its
// statement again.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*lazyStmt{s.create, s.load, s.update, s.touch, s.del, s.sweepBound, s.sweep, s.listOwner, s.deleteOwner, s.purgeExpired} {
		if err := st.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mysqlstore: close: %w", err)
	}
	return nil
}

// Create stores a new record with version 1 unless a live record has the
// id. An expired record with the id is replaced. A malformed id is an error
// wrapping [ErrInvalidID]; an owner longer than [MaxOwnerLen] bytes, one
// wrapping [ErrOwnerTooLong].
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return false, fmt.Errorf("mysqlstore: create: %w", ErrInvalidID)
	}
	if len(owner) > MaxOwnerLen {
		return false, fmt.Errorf("mysqlstore: create: %w", ErrOwnerTooLong)
	}
	nowMS := now.UnixMilli()
	res, err := s.create.exec(ctx, s.db, key, nonNil(data), expiry.UnixMilli(), owner, nowMS, nowMS, nowMS, nowMS)
	if err != nil {
		return false, fmt.Errorf("mysqlstore: create: %w", err)
	}
	outcome, affected, err := result(res)
	if err != nil {
		return false, fmt.Errorf("mysqlstore: create: %w", err)
	}
	switch {
	case outcome == idNone && affected == 1:
		return true, nil // inserted
	case outcome == idWritten:
		return true, nil // replaced an expired row
	case outcome == idKept:
		return false, nil // a live row has the id
	}
	return false, fmt.Errorf("mysqlstore: create: unexpected result (insert id %d, %d rows affected)", outcome, affected)
}

// Load returns the record with the id if it is live at now. The returned
// slice is the caller's own.
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return nil, 0, time.Time{}, false, nil
	}
	st, err := s.load.get(ctx, s.db)
	if err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("mysqlstore: load: %w", err)
	}
	var (
		data            []byte
		version, expiry int64
	)
	err = st.QueryRowContext(ctx, key, now.UnixMilli()).Scan(&data, &version, &expiry)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, time.Time{}, false, nil
	}
	if err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("mysqlstore: load: %w", err)
	}
	return nonNil(data), version, time.UnixMilli(expiry), true, nil
}

// Update writes data, expiry and owner and increments the version if the
// record is live at now and still has the given version, in one statement
// that also tells a live record with another version (found == true) from
// an absent or expired one (found == false). An owner longer than
// [MaxOwnerLen] bytes is an error wrapping [ErrOwnerTooLong].
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return false, false, nil
	}
	if len(owner) > MaxOwnerLen {
		return false, false, fmt.Errorf("mysqlstore: update: %w", ErrOwnerTooLong)
	}
	res, err := s.update.exec(ctx, s.db,
		version, nonNil(data),
		version, expiry.UnixMilli(),
		version, owner,
		version,
		key, now.UnixMilli())
	if err != nil {
		return false, false, fmt.Errorf("mysqlstore: update: %w", err)
	}
	outcome, affected, err := result(res)
	if err != nil {
		return false, false, fmt.Errorf("mysqlstore: update: %w", err)
	}
	switch {
	case outcome == idWritten:
		return true, true, nil
	case outcome == idKept:
		return false, true, nil // changed meanwhile
	case outcome == idNone && affected == 0:
		return false, false, nil // gone
	}
	return false, false, fmt.Errorf("mysqlstore: update: unexpected result (insert id %d, %d rows affected)", outcome, affected)
}

// Touch moves the expiry of the live record with the id to expiry if that
// is later; it reports whether the record is live at now.
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return false, nil
	}
	nowMS := now.UnixMilli()
	res, err := s.touch.exec(ctx, s.db, nowMS, expiry.UnixMilli(), key, nowMS)
	if err != nil {
		return false, fmt.Errorf("mysqlstore: touch: %w", err)
	}
	outcome, _, err := result(res)
	if err != nil {
		return false, fmt.Errorf("mysqlstore: touch: %w", err)
	}
	return outcome == idWritten, nil
}

// Delete removes the record with the id; deleting an absent record (or a
// malformed id) is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	key, ok := decodeID(id)
	if !ok {
		return nil
	}
	if _, err := s.del.exec(ctx, s.db, key); err != nil {
		return fmt.Errorf("mysqlstore: delete: %w", err)
	}
	return nil
}

// DeleteExpired removes records whose expiry is at or before now, in
// batches of Options.SweepBatch rows, one DELETE statement (so one short
// transaction) per batch, in expiry order over the expiry index. Between
// batches it rests as Options.SweepDutyCycle says. It stops when no expired
// record is left past the last batch, or when ctx ends (during a rest too);
// on error it returns the number removed so far with the error.
//
// Each batch starts at the highest expiry the previous one removed, so a
// sweep reads the index entries of removed rows (which InnoDB keeps,
// delete-marked, until purge) only where expiries are equal, however many
// rows it removes. Before each DELETE, a SELECT over the expiry index finds
// the expiry the batch ends at (neither MySQL's DELETE nor the reply to
// MariaDB's returns the expiries it removed): two statements per batch.
// Rows whose expiry a concurrent write moves below the batch in progress
// (records that expire during the sweep) are left for the next sweep.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	total, err := s.deleteExpired(ctx, now)
	if err != nil {
		return total, fmt.Errorf("mysqlstore: delete expired: %w", err)
	}
	return total, nil
}

func (s *Store) deleteExpired(ctx context.Context, now time.Time) (total int, err error) {
	nowMS := now.UnixMilli()
	from := int64(math.MinInt64)
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		start := time.Now()
		bound, err := s.sweepBound.get(ctx, s.db)
		if err != nil {
			return total, err
		}
		// to: the expiry of the batch-th expired row from "from" on; the
		// last batch, when there is none, ends at now.
		to, last := nowMS, false
		switch err := bound.QueryRowContext(ctx, from, nowMS, s.batch-1).Scan(&to); {
		case errors.Is(err, sql.ErrNoRows):
			to, last = nowMS, true
		case err != nil:
			return total, err
		}
		res, err := s.sweep.exec(ctx, s.db, from, to, s.batch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += int(n)
		if last {
			return total, nil
		}
		// Rows expiring at "to" beyond the batch's limit, if any, are
		// the next batch's first.
		from = to
		if err := pace.Rest(ctx, time.Since(start), s.duty); err != nil {
			return total, err
		}
	}
}

// ListOwner returns the ids of the records owned by owner that are live at
// now, in no particular order. The empty owner yields an empty list without
// a query.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if owner == "" || len(owner) > MaxOwnerLen {
		return []string{}, nil
	}
	st, err := s.listOwner.get(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: list owner: %w", err)
	}
	rows, err := st.QueryContext(ctx, owner, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: list owner: %w", err)
	}
	defer func() { _ = rows.Close() }()
	ids := []string{}
	for rows.Next() {
		var key sql.RawBytes
		if err := rows.Scan(&key); err != nil {
			return nil, fmt.Errorf("mysqlstore: list owner: %w", err)
		}
		ids = append(ids, encodeID(key))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlstore: list owner: %w", err)
	}
	return ids, nil
}

// DeleteOwner removes every record owned by owner and returns how many of
// them were live at now. The empty owner deletes nothing.
//
// It runs two statements over the (owner, expiry) index, because MySQL's
// DELETE cannot report which rows it removed: first the live records (their
// count is the result), then the owner's expired ones. Each statement is
// atomic; a record created for the owner between the two is live and so
// not touched by the second.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if owner == "" || len(owner) > MaxOwnerLen {
		return 0, nil
	}
	nowMS := now.UnixMilli()
	res, err := s.deleteOwner.exec(ctx, s.db, owner, nowMS)
	if err != nil {
		return 0, fmt.Errorf("mysqlstore: delete owner: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mysqlstore: delete owner: %w", err)
	}
	if _, err := s.purgeExpired.exec(ctx, s.db, owner, nowMS); err != nil {
		return int(n), fmt.Errorf("mysqlstore: delete owner: %w", err)
	}
	return int(n), nil
}

// result returns the insert id and affected-rows count of res.
func result(res sql.Result) (insertID, affected int64, err error) {
	if insertID, err = res.LastInsertId(); err != nil {
		return 0, 0, err
	}
	if affected, err = res.RowsAffected(); err != nil {
		return 0, 0, err
	}
	return insertID, affected, nil
}

// lazyStmt is a statement prepared on first use. Preparing needs the table
// to exist, so it cannot happen in New. A failed prepare is not cached; the
// next call tries again. database/sql re-prepares the statement on every
// pooled connection it runs on.
type lazyStmt struct {
	query string
	stmt  atomic.Pointer[sql.Stmt]
	mu    sync.Mutex // serialises prepare and close
}

func newLazyStmt(query string) *lazyStmt { return &lazyStmt{query: query} }

func (l *lazyStmt) get(ctx context.Context, db *sql.DB) (*sql.Stmt, error) {
	if st := l.stmt.Load(); st != nil {
		return st, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.stmt.Load(); st != nil {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, l.query)
	if err != nil {
		return nil, err
	}
	l.stmt.Store(st)
	return st, nil
}

// exec runs the statement, re-running it if InnoDB chose it as a deadlock
// victim. Every statement of the store runs on its own (autocommit), so a
// victim has been rolled back entirely and re-running it is safe. Lookups
// by id lock the primary key first and cannot deadlock with each other, but
// statements that reach rows through a secondary index (DeleteOwner,
// DeleteExpired) lock in the opposite order to an Update of the same row.
func (l *lazyStmt) exec(ctx context.Context, db *sql.DB, args ...any) (sql.Result, error) {
	st, err := l.get(ctx, db)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		res, err := st.ExecContext(ctx, args...)
		if err == nil || attempt == deadlockAttempts || !isDeadlock(err) || ctx.Err() != nil {
			return res, err
		}
	}
}

// deadlockAttempts bounds how often exec runs a statement that keeps being
// chosen as a deadlock victim.
const deadlockAttempts = 3

// isDeadlock reports whether err is the server's ER_LOCK_DEADLOCK (1213).
// The store does not import a driver, so it recognises the error by its
// text: github.com/go-sql-driver/mysql formats it as "Error 1213 (40001):
// ...", and the server's message is "Deadlock found when trying to get
// lock" unless lc_messages translates it.
func isDeadlock(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Error 1213") || strings.Contains(msg, "Deadlock found when trying to get lock")
}

func (l *lazyStmt) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.stmt.Swap(nil); st != nil {
		return st.Close()
	}
	return nil
}

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
