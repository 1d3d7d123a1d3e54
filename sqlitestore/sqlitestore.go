// Package sqlitestore is a session store backed by SQLite through
// database/sql.
//
// It implements [github.com/sessionkit/sessions.Store] together with the
// optional [github.com/sessionkit/sessions.ExpiredDeleter] and
// [github.com/sessionkit/sessions.OwnerIndex] capabilities, keeping one row per
// session in a WITHOUT ROWID table (see [DDL]).
//
// # Drivers
//
// The package imports no driver: open the *sql.DB with any database/sql
// SQLite driver (SQLite 3.35 or later) and pass it to [New]. It is tested with
// the pure-Go modernc.org/sqlite. With that driver, open the database like
// this:
//
//	db, err := sql.Open("sqlite", "file:sessions.db?"+
//		"_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
//
// # Concurrency
//
// SQLite allows one writer at a time. Two settings keep concurrent requests
// from failing with "database is locked" (SQLITE_BUSY):
//
//   - busy_timeout: a connection that finds the database locked waits up to
//     this many milliseconds for the lock instead of failing at once. It is a
//     per-connection setting, so it belongs in the DSN, where the driver
//     applies it to every connection of the pool. [Store.CreateTable] refuses
//     to proceed when it is 0.
//   - journal_mode=WAL: readers never block the writer nor the writer them.
//     It is stored in the database file; [Store.CreateTable] switches a file
//     database to WAL if it is not already, retrying while another
//     connection holds the lock (SQLite answers SQLITE_BUSY to a journal
//     mode switch at once, without its busy handler). Several processes
//     that start together on a new file should leave it out of the DSN,
//     where each new connection would switch without that retry.
//
// Every operation of the store is a single SQL statement in autocommit mode
// (no read-then-write transaction), so a waiting writer always acquires the
// lock through the busy timeout. Update adds a read-only query only on its
// failure path, to tell "changed" from "gone".
//
// Within one process a Store also queues its own writing statements in Go,
// one at a time, each wait bounded by its context. SQLite's
// busy handler polls by sleeping (for up to 100 ms between tries), so under
// sustained load a writer left to it can wait far longer than the lock is
// held and, after busy_timeout, fail; queued in Go it gets the lock the
// moment the previous write ends. busy_timeout still covers writes from
// elsewhere: other processes, other code sharing the *sql.DB, WAL
// checkpoints.
//
// With those settings a pool of several connections is fine: reads run in
// parallel with each other and with the one write. Calling
// db.SetMaxOpenConns(1) also avoids SQLITE_BUSY, but makes every read wait
// behind every write; it is required for an in-memory database
// (":memory:"), where each connection would otherwise see its own empty
// database.
//
// # Contexts
//
// Every method passes its context to database/sql, and a write waiting in
// the Store's queue gives up as soon as its context ends. One wait escapes
// the context: a statement that SQLite's busy handler holds back, because a
// lock is held outside this Store, notices the cancellation only when
// busy_timeout runs out (it then fails with the context's error). Keep
// busy_timeout no longer than the Manager's store timeout (3 s by default, [sessions.DefaultStoreTimeout]),
// as the recommended 5000 ms does.
//
// # Time
//
// Expiries are stored as INTEGER Unix milliseconds and compared with the "now"
// passed by the caller, never with the database clock. The store therefore
// keeps expiries to millisecond precision: Load returns the expiry truncated to
// the millisecond, and "now" is truncated the same way before comparing.
//
// # Expired rows
//
// Expired rows are invisible to Load, Update, Touch and ListOwner, and Create
// replaces them, but they stay in the table until [Store.DeleteExpired]
// (usually run through the Manager's Sweep) removes them in batches of
// [Options.SweepBatch] rows, resting between batches as
// [Options.SweepDutyCycle] says so that live writes seldom wait for one.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sessionkit/sessions/internal/pace"
)

// DefaultTableName is the table name used when [Options.Table] is empty.
const DefaultTableName = "sessions"

// DefaultSweepBatch is the batch size used when [Options.SweepBatch] is 0.
// A live write that arrives during a batch waits for it: a batch of 25
// expired rows takes about a millisecond, one of 100 two to three, one of
// 1000 tens of them.
const DefaultSweepBatch = 25

// DefaultSweepDutyCycle is the duty cycle used when [Options.SweepDutyCycle]
// is 0: [Store.DeleteExpired] rests after each batch three times as long as
// the batch took, so that a backlog of a million expired rows is gone in
// minutes while live writes seldom wait for a batch.
const DefaultSweepDutyCycle = 0.25

// DDL creates the session table with the default name [DefaultTableName] and
// its indexes. It is idempotent. [Store.CreateTable] runs the same statements
// for the configured table name; use this constant in a migration tool
// instead, if you prefer.
//
// The id is the 32-byte SHA-256 the Manager hands over as 64 hexadecimal
// characters; expiry is Unix milliseconds; owner is NULL for sessions without
// an owner, which keeps them out of the owner index.
const DDL = `CREATE TABLE IF NOT EXISTS "sessions" (
	id      BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
	data    BLOB    NOT NULL,
	version INTEGER NOT NULL,
	expiry  INTEGER NOT NULL,
	owner   TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "sessions_expiry" ON "sessions" (expiry);
CREATE INDEX IF NOT EXISTS "sessions_owner" ON "sessions" (owner, expiry) WHERE owner IS NOT NULL;`

// tableNameRE is what [Options.Table] must match: an SQL identifier that
// needs no escaping, short enough for the derived index names.
var tableNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,54}$`)

// ErrInvalidTableName is returned by [New] when [Options.Table] is not a plain
// identifier.
var ErrInvalidTableName = errors.New("sqlitestore: invalid table name")

// ErrInvalidOptions is returned by [New] for an out-of-range option other than
// the table name.
var ErrInvalidOptions = errors.New("sqlitestore: invalid options")

// ErrInvalidID is returned by [Store.Create] when the id is not 64 lower-case
// hexadecimal characters, the format of the ids the Manager produces. The
// other methods report such an id as absent, since no record can have it.
var ErrInvalidID = errors.New("sqlitestore: invalid id")

// ErrNoBusyTimeout is returned by [Store.CreateTable] when the connection has
// no busy timeout: concurrent writes would then fail with "database is
// locked". Set one in the DSN (see the package documentation).
var ErrNoBusyTimeout = errors.New("sqlitestore: busy_timeout is 0; set it in the DSN")

// Options configures a [Store]. The zero value is ready to use.
type Options struct {
	// Table is the name of the session table. It must match
	// ^[A-Za-z_][A-Za-z0-9_]{0,54}$ and must not start with "sqlite_"; it is
	// quoted in every statement. The indexes are named Table+"_expiry" and
	// Table+"_owner". Zero means [DefaultTableName].
	Table string

	// SweepBatch is the number of rows [Store.DeleteExpired] deletes per
	// statement, which bounds how long it holds the write lock. Zero means
	// [DefaultSweepBatch]; it must not be negative.
	SweepBatch int

	// SweepDutyCycle is the share of its time [Store.DeleteExpired] spends
	// deleting: after each batch but the last it rests for the batch's
	// duration times (1/SweepDutyCycle - 1), so that live writes find the
	// write lock free most of the time, and a sweep slows down by itself
	// when the database is slow. 1 deletes batch after batch without a
	// rest (nor the checkpoint described at [Store.DeleteExpired]); 0.25,
	// the default, rests three times as long as each batch took. Zero
	// means [DefaultSweepDutyCycle]; it must be at most 1 and not negative.
	SweepDutyCycle float64
}

// Store is a session store in an SQLite table. Create one with [New]; the zero
// value is not usable. A Store is safe for concurrent use by multiple
// goroutines and holds no resources of its own: closing the *sql.DB is the
// caller's business.
type Store struct {
	db    *sql.DB
	table string
	batch int
	duty  float64

	// writes is a one-slot semaphore that queues this Store's writing
	// statements in Go (see lockWrites).
	writes chan struct{}

	ddl          string
	createSQL    string
	loadSQL      string
	updateSQL    string
	existsSQL    string
	touchSQL     string
	deleteSQL    string
	sweepSQL     string
	listOwnerSQL string
	delOwnerSQL  string
}

// New returns a Store that keeps sessions in db. It validates opts (nil means
// all defaults) but does no I/O: call [Store.CreateTable] once at start-up, or
// create the table with [DDL] beforehand.
func New(db *sql.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("sqlitestore: nil *sql.DB: %w", ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTableName
	}
	if !tableNameRE.MatchString(o.Table) || strings.HasPrefix(strings.ToLower(o.Table), "sqlite_") {
		return nil, fmt.Errorf("sqlitestore: table name %q: %w", o.Table, ErrInvalidTableName)
	}
	switch {
	case o.SweepBatch < 0:
		return nil, fmt.Errorf("sqlitestore: negative SweepBatch %d: %w", o.SweepBatch, ErrInvalidOptions)
	case o.SweepBatch == 0:
		o.SweepBatch = DefaultSweepBatch
	}
	switch {
	case !(o.SweepDutyCycle >= 0 && o.SweepDutyCycle <= 1): // NaN too
		return nil, fmt.Errorf("sqlitestore: SweepDutyCycle %v not in [0, 1]: %w", o.SweepDutyCycle, ErrInvalidOptions)
	case o.SweepDutyCycle == 0:
		o.SweepDutyCycle = DefaultSweepDutyCycle
	}

	t := `"` + o.Table + `"`
	s := &Store{
		db:     db,
		table:  o.Table,
		batch:  o.SweepBatch,
		duty:   o.SweepDutyCycle,
		writes: make(chan struct{}, 1),
		ddl:    schema(o.Table),
		// An expired row with the same id is replaced; a live one is left
		// alone and the statement changes no row.
		createSQL: `INSERT INTO ` + t + ` (id, data, version, expiry, owner) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (id) DO UPDATE SET data = excluded.data, version = 1, expiry = excluded.expiry, owner = excluded.owner
WHERE ` + t + `.expiry <= ?`,
		loadSQL:      `SELECT data, version, expiry FROM ` + t + ` WHERE id = ? AND expiry > ?`,
		updateSQL:    `UPDATE ` + t + ` SET data = ?, expiry = ?, owner = ?, version = version + 1 WHERE id = ? AND version = ? AND expiry > ?`,
		existsSQL:    `SELECT 1 FROM ` + t + ` WHERE id = ? AND expiry > ?`,
		touchSQL:     `UPDATE ` + t + ` SET expiry = max(expiry, ?) WHERE id = ? AND expiry > ?`,
		deleteSQL:    `DELETE FROM ` + t + ` WHERE id = ?`,
		sweepSQL:     `DELETE FROM ` + t + ` WHERE id IN (SELECT id FROM ` + t + ` WHERE expiry <= ? ORDER BY expiry LIMIT ?)`,
		listOwnerSQL: `SELECT id FROM ` + t + ` WHERE owner = ? AND expiry > ?`,
		delOwnerSQL:  `DELETE FROM ` + t + ` WHERE owner = ? RETURNING expiry`,
	}
	return s, nil
}

// schema returns [DDL] for the table name.
func schema(table string) string {
	return strings.ReplaceAll(DDL, `"sessions`, `"`+table)
}

// Table returns the name of the session table.
func (s *Store) Table() string { return s.table }

// DDL returns the statements [Store.CreateTable] runs: [DDL] for the
// configured table name.
func (s *Store) DDL() string { return s.ddl }

// CreateTable prepares the database for the store. It is idempotent and meant
// to run once at start-up:
//
//   - it returns an error wrapping [ErrNoBusyTimeout] if the connection it
//     uses has busy_timeout 0;
//   - it switches a file database to journal_mode=WAL if it is in another
//     mode (in-memory databases are left alone);
//   - it creates the table and its indexes if they do not exist.
func (s *Store) CreateTable(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlitestore: create table: %w", err)
	}
	defer conn.Close()

	var timeout int64
	if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil {
		return fmt.Errorf("sqlitestore: create table: %w", err)
	}
	if timeout <= 0 {
		return fmt.Errorf("sqlitestore: create table: %w", ErrNoBusyTimeout)
	}

	// SQLite answers SQLITE_BUSY at once, without its busy handler, when
	// switching the journal mode races another connection (several
	// processes opening a new database file together): retry for as long
	// as the busy timeout, as the handler would have waited.
	retry := func(f func() error) error {
		deadline := time.Now().Add(time.Duration(timeout) * time.Millisecond)
		for attempt := 1; ; attempt++ {
			err := f()
			if err == nil || !isBusy(err) || time.Now().After(deadline) {
				return err
			}
			t := time.NewTimer(time.Duration(min(attempt, 10)) * 10 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return err
			}
		}
	}
	var mode string
	if err := retry(func() error { return conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode) }); err != nil {
		return fmt.Errorf("sqlitestore: create table: %w", err)
	}
	if m := strings.ToLower(mode); m != "wal" && m != "memory" {
		if err := retry(func() error { return conn.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode) }); err != nil {
			return fmt.Errorf("sqlitestore: create table: journal_mode: %w", err)
		}
	}

	// One statement per call: not every driver executes several at once.
	for _, stmt := range strings.SplitAfter(s.ddl, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if err := retry(func() error { _, err := conn.ExecContext(ctx, stmt); return err }); err != nil {
			return fmt.Errorf("sqlitestore: create table: %w", err)
		}
	}
	return nil
}

// isBusy reports whether err is SQLite's SQLITE_BUSY ("database is
// locked"), as modernc.org/sqlite and mattn/go-sqlite3 word it.
func isBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// decodeID turns a 64-character lower-case hexadecimal id into its 32 bytes.
func decodeID(id string) ([]byte, bool) {
	if len(id) != 64 {
		return nil, false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	b, err := hex.DecodeString(id)
	return b, err == nil
}

// ms converts t to the stored representation, Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// nullOwner maps the empty owner to NULL, which the owner index skips.
func nullOwner(owner string) any {
	if owner == "" {
		return nil
	}
	return owner
}

// nonNil returns b, or an empty non-nil slice if b is nil: data is NOT NULL
// and a record's data round-trips as a non-nil slice.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// lockWrites waits until no other write of this Store is running, or until
// ctx ends. SQLite runs one write at a time anyway; queueing them here
// rather than in SQLite's busy handler, which polls by sleeping for up to
// 100 ms, hands the lock over as soon as it is free. Writes from other
// Stores or processes still meet through busy_timeout. Call unlockWrites
// after the statement.
func (s *Store) lockWrites(ctx context.Context) error {
	select {
	case s.writes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unlockWrites() { <-s.writes }

// exec runs one writing statement under lockWrites and returns the number
// of rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if err := s.lockWrites(ctx); err != nil {
		return 0, err
	}
	defer s.unlockWrites()
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func wrap(op string, err error) error {
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}

// Create stores a new record with version 1 unless a live record has the id;
// an expired record with the id is replaced. It is one INSERT … ON CONFLICT
// statement. An id that is not 64 lower-case hexadecimal characters is an
// error wrapping [ErrInvalidID].
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	key, ok := decodeID(id)
	if !ok {
		return false, wrap("create", ErrInvalidID)
	}
	n, err := s.exec(ctx, s.createSQL, key, nonNil(data), ms(expiry), nullOwner(owner), ms(now))
	if err != nil {
		return false, wrap("create", err)
	}
	return n == 1, nil
}

// Load returns the record with the id if it is live at now. The returned
// slice belongs to the caller.
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	key, ok := decodeID(id)
	if !ok {
		if err := ctx.Err(); err != nil {
			return nil, 0, time.Time{}, false, wrap("load", err)
		}
		return nil, 0, time.Time{}, false, nil
	}
	var (
		data    []byte
		version int64
		expiry  int64
	)
	err := s.db.QueryRowContext(ctx, s.loadSQL, key, ms(now)).Scan(&data, &version, &expiry)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, time.Time{}, false, nil
	}
	if err != nil {
		return nil, 0, time.Time{}, false, wrap("load", err)
	}
	return nonNil(data), version, time.UnixMilli(expiry), true, nil
}

// Update replaces the data, expiry and owner of the record with the id and
// increments its version, if the record is live at now and has the given
// version. It is one UPDATE statement; only when it changes no row does a
// second query tell "changed" (found) from "gone".
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	key, ok := decodeID(id)
	if !ok {
		if err := ctx.Err(); err != nil {
			return false, false, wrap("update", err)
		}
		return false, false, nil
	}
	n, err := s.exec(ctx, s.updateSQL, nonNil(data), ms(expiry), nullOwner(owner), key, version, ms(now))
	if err != nil {
		return false, false, wrap("update", err)
	}
	if n == 1 {
		return true, true, nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, s.existsSQL, key, ms(now)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, wrap("update", err)
	}
	return false, true, nil
}

// Touch moves the expiry of the live record with the id to expiry if that is
// later. It is one UPDATE statement and never creates a record.
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	key, ok := decodeID(id)
	if !ok {
		if err := ctx.Err(); err != nil {
			return false, wrap("touch", err)
		}
		return false, nil
	}
	n, err := s.exec(ctx, s.touchSQL, ms(expiry), key, ms(now))
	if err != nil {
		return false, wrap("touch", err)
	}
	return n == 1, nil
}

// Delete removes the record with the id, live or expired. Deleting an absent
// record is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	key, ok := decodeID(id)
	if !ok {
		if err := ctx.Err(); err != nil {
			return wrap("delete", err)
		}
		return nil
	}
	if _, err := s.exec(ctx, s.deleteSQL, key); err != nil {
		return wrap("delete", err)
	}
	return nil
}

// DeleteExpired removes the records whose expiry is at or before now, in
// statements of at most [Options.SweepBatch] rows each so that no statement
// holds the write lock for long, and returns how many it removed. Each
// statement is its own transaction. It stops early, returning the count so
// far with the error, when ctx ends, during a rest too.
//
// Unless [Options.SweepDutyCycle] is 1, the sweep rests between
// statements, and starts each rest with a passive WAL checkpoint
// (PRAGMA wal_checkpoint(PASSIVE)), outside the Store's write queue: a
// passive checkpoint does not block writers, while the automatic one
// SQLite runs when a commit finds the WAL over 1000 pages would run inside
// the batch's statement, or in a live write's, and hold up every queued
// write while it copies pages and syncs the file. A failed checkpoint is
// left to the automatic one. The statement's time, including its wait for
// the write lock, and the checkpoint's make up the work the rest is
// proportional to, so a busy store makes the sweep rest longer.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	total := 0
	cutoff := ms(now)
	for {
		if err := ctx.Err(); err != nil {
			return total, wrap("delete expired", err)
		}
		start := time.Now()
		n, err := s.exec(ctx, s.sweepSQL, cutoff, s.batch)
		if err != nil {
			return total, wrap("delete expired", err)
		}
		total += int(n)
		if n < int64(s.batch) {
			return total, nil
		}
		if s.duty >= 1 {
			continue
		}
		// busy, log and checkpointed frames; only ctx's end matters.
		var busy, log, done int64
		if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil && ctx.Err() != nil {
			return total, wrap("delete expired", ctx.Err())
		}
		if err := pace.Rest(ctx, time.Since(start), s.duty); err != nil {
			return total, wrap("delete expired", err)
		}
	}
}

// ListOwner returns the ids of the records owned by owner that are live at
// now, using the owner index. The empty owner yields an empty list.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if owner == "" {
		if err := ctx.Err(); err != nil {
			return nil, wrap("list owner", err)
		}
		return []string{}, nil
	}
	rows, err := s.db.QueryContext(ctx, s.listOwnerSQL, owner, ms(now))
	if err != nil {
		return nil, wrap("list owner", err)
	}
	defer rows.Close()
	ids := []string{}
	var key []byte
	for rows.Next() {
		if err := rows.Scan(&key); err != nil {
			return nil, wrap("list owner", err)
		}
		ids = append(ids, hex.EncodeToString(key))
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list owner", err)
	}
	return ids, nil
}

// DeleteOwner removes every record owned by owner, live or expired, in one
// DELETE statement and returns how many of them were live at now. The empty
// owner deletes nothing.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if owner == "" {
		if err := ctx.Err(); err != nil {
			return 0, wrap("delete owner", err)
		}
		return 0, nil
	}
	if err := s.lockWrites(ctx); err != nil {
		return 0, wrap("delete owner", err)
	}
	defer s.unlockWrites() // after rows.Close, deferred below
	rows, err := s.db.QueryContext(ctx, s.delOwnerSQL, owner)
	if err != nil {
		return 0, wrap("delete owner", err)
	}
	defer rows.Close()
	live := 0
	cutoff := ms(now)
	var expiry int64
	for rows.Next() {
		if err := rows.Scan(&expiry); err != nil {
			return 0, wrap("delete owner", err)
		}
		if expiry > cutoff {
			live++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, wrap("delete owner", err)
	}
	return live, nil
}
