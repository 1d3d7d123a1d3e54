package pgxstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PartitionedDDL creates the default table ("sessions") in the partitioned
// layout (Options.Partition set) with its indexes and the function Create
// calls. It is what [Store.CreateTable] runs for Options with only
// Partition set, before it creates the partitions themselves (see
// [Store.CreateTable]). Every statement is idempotent.
const PartitionedDDL = `CREATE TABLE IF NOT EXISTS "sessions" (
	id      bytea  NOT NULL,
	data    bytea  NOT NULL,
	version bigint NOT NULL,
	expiry  bigint NOT NULL,
	owner   text,
	PRIMARY KEY (id, expiry)
) PARTITION BY RANGE (expiry);
CREATE INDEX IF NOT EXISTS "sessions_expiry_idx" ON "sessions" (expiry);
CREATE INDEX IF NOT EXISTS "sessions_owner_idx" ON "sessions" (owner) WHERE owner IS NOT NULL;
CREATE OR REPLACE FUNCTION "sessions_create"(p_id bytea, p_data bytea, p_expiry bigint, p_owner text, p_now bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('"sessions"'), hashtext(encode(p_id, 'hex')));
	DELETE FROM "sessions" WHERE id = p_id AND expiry <= p_now;
	IF EXISTS (SELECT 1 FROM "sessions" WHERE id = p_id AND expiry > p_now) THEN
		RETURN false;
	END IF;
	IF p_expiry > p_now THEN
		INSERT INTO "sessions" (id, data, version, expiry, owner)
		VALUES (p_id, p_data, 1, p_expiry, NULLIF(p_owner, ''));
	END IF;
	RETURN true;
END $fn$;
`

// ErrLayout is wrapped by CreateTable when the table exists in the other
// layout than Options.Partition asks for (a plain table for a partitioned
// store, or the reverse).
var ErrLayout = errors.New("pgxstore: table layout does not match Options.Partition")

// partitionComment marks the partitions the store creates, so that a
// partition detached by an interrupted sweep (but not dropped) is
// recognised as the store's own and dropped by the next sweep.
const partitionComment = "pgxstore partition"

// maxRetries bounds the statements retried after a row moved to another
// partition under them, or after a missing partition was created.
const maxRetries = 5

// partLayout holds what the partitioned layout adds to a Store.
type partLayout struct {
	width, ahead int64  // milliseconds
	tableName    string // unquoted, unqualified
	schema       string // quoted schema and dot, or ""
	lockKey      string // SQL expression: the advisory lock of partition DDL

	qList, qOrphans, qRelkind string
	qCreateFn, qUpdateDead    string
}

var (
	boundRE = regexp.MustCompile(`FROM \((.*)\) TO \((.*)\)`)
)

// checkPartition validates the partition options in o.
func checkPartition(db DB, o *Options) error {
	switch {
	case o.Partition < 0:
		return fmt.Errorf("pgxstore: negative Partition %v: %w", o.Partition, ErrInvalidOptions)
	case o.PartitionAhead < 0:
		return fmt.Errorf("pgxstore: negative PartitionAhead %v: %w", o.PartitionAhead, ErrInvalidOptions)
	case o.Partition == 0:
		if o.PartitionAhead != 0 {
			return fmt.Errorf("pgxstore: PartitionAhead without Partition: %w", ErrInvalidOptions)
		}
		return nil
	case o.Partition < time.Minute || o.Partition > 30*24*time.Hour || o.Partition%time.Millisecond != 0:
		return fmt.Errorf("pgxstore: Partition %v is not a whole number of milliseconds between 1m and 720h: %w", o.Partition, ErrInvalidOptions)
	case len(o.Table) > 40:
		return fmt.Errorf("pgxstore: Table %q is longer than 40 characters, the limit with Partition: %w", o.Table, ErrInvalidOptions)
	}
	if _, ok := db.(pgx.Tx); ok {
		return fmt.Errorf("pgxstore: Partition with a pgx.Tx as DB (DETACH PARTITION CONCURRENTLY cannot run in a transaction): %w", ErrInvalidOptions)
	}
	if o.PartitionAhead == 0 {
		o.PartitionAhead = DefaultPartitionAhead
	}
	if o.PartitionAhead/o.Partition > MaxPartitions {
		return fmt.Errorf("pgxstore: PartitionAhead %v is more than %d partitions of %v: %w", o.PartitionAhead, MaxPartitions, o.Partition, ErrInvalidOptions)
	}
	return nil
}

// partitioned switches s to the partitioned layout; o is validated and t
// is the quoted, qualified table name.
func (s *Store) partitioned(o Options, t string) {
	schema := ""
	if o.Schema != "" {
		schema = `"` + o.Schema + `".`
	}
	fn := schema + `"` + o.Table + `_create"`
	p := &partLayout{
		width:     o.Partition.Milliseconds(),
		ahead:     o.PartitionAhead.Milliseconds(),
		tableName: o.Table,
		schema:    schema,
		lockKey:   "hashtext(" + quoteLiteral("github.com/sessionkit/sessions/pgxstore.partition:"+t) + ")",
		qList: `SELECT c.oid::regclass::text, pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`,
		// Tables the store created as partitions of this table that
		// are no longer attached: an interrupted sweep detached them
		// and did not drop them.
		qOrphans: `SELECT c.oid::regclass::text FROM pg_class c
WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::regclass)
AND c.relkind = 'r' AND NOT c.relispartition AND left(c.relname, length($2)) = $2
AND obj_description(c.oid, 'pg_class') = $3`,
		qRelkind: `SELECT relkind::text FROM pg_class WHERE oid = $1::regclass`,
		// Create-if-absent without a unique index on id (the partition
		// key must be part of every unique index): a function, so that
		// the check and the insert run in one statement, after a
		// transaction-level advisory lock on the id. In READ COMMITTED
		// every statement of a (volatile) function takes a new
		// snapshot, so the check after the lock sees whatever a
		// concurrent creator of the id committed before releasing it.
		qCreateFn: `SELECT ` + fn + `($1, $2, $3, $4, $5)`,
		// An Update whose expiry is already past is a delete: the record
		// is expired at once either way, and the row needs no partition
		// of the past (which every sweep would drop and a later write
		// create again).
		qUpdateDead: `DELETE FROM ` + t + ` WHERE id = $1 AND version = $2 AND expiry > $3`,
	}
	s.part = p
	s.ddl = []string{
		`CREATE TABLE IF NOT EXISTS ` + t + ` (
	id      bytea  NOT NULL,
	data    bytea  NOT NULL,
	version bigint NOT NULL,
	expiry  bigint NOT NULL,
	owner   text,
	PRIMARY KEY (id, expiry)
) PARTITION BY RANGE (expiry)`,
		`CREATE INDEX IF NOT EXISTS "` + o.Table + `_expiry_idx" ON ` + t + ` (expiry)`,
		`CREATE INDEX IF NOT EXISTS "` + o.Table + `_owner_idx" ON ` + t + ` (owner) WHERE owner IS NOT NULL`,
		`CREATE OR REPLACE FUNCTION ` + fn + `(p_id bytea, p_data bytea, p_expiry bigint, p_owner text, p_now bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext(` + quoteLiteral(t) + `), hashtext(encode(p_id, 'hex')));
	DELETE FROM ` + t + ` WHERE id = p_id AND expiry <= p_now;
	IF EXISTS (SELECT 1 FROM ` + t + ` WHERE id = p_id AND expiry > p_now) THEN
		RETURN false;
	END IF;
	IF p_expiry > p_now THEN
		INSERT INTO ` + t + ` (id, data, version, expiry, owner)
		VALUES (p_id, p_data, 1, p_expiry, NULLIF(p_owner, ''));
	END IF;
	RETURN true;
END $fn$`,
	}
	// The sweep of the partition that holds now: the plain layout's
	// batch, with the expiry range repeated on the DELETE so that its
	// lookups by id are pruned to the partitions of that range instead
	// of probing every partition's primary key.
	s.qSweep = `WITH d AS (DELETE FROM ` + t + ` WHERE expiry >= $3 AND expiry <= $1 AND id = ANY (ARRAY(
	SELECT id FROM ` + t + ` WHERE expiry >= $3 AND expiry <= $1 ORDER BY expiry LIMIT $2 FOR UPDATE SKIP LOCKED
)) RETURNING expiry)
SELECT count(*), coalesce(max(expiry), $3) FROM d`
}

// part is one partition: its name (quoted as needed, qualified when not on
// the search_path), its bounds in milliseconds, and whether a DETACH
// CONCURRENTLY of it was interrupted.
type part struct {
	name    string
	lo, hi  int64
	pending bool
}

func parseBound(s string) (int64, error) {
	s = strings.Trim(strings.TrimSpace(s), "'")
	switch s {
	case "MINVALUE":
		return math.MinInt64, nil
	case "MAXVALUE":
		return math.MaxInt64, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// partitions lists the table's partitions.
func (s *Store) partitions(ctx context.Context) ([]part, error) {
	rows, err := s.db.Query(ctx, s.part.qList, s.table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []part
	for rows.Next() {
		var (
			p     part
			bound string
		)
		if err := rows.Scan(&p.name, &bound, &p.pending); err != nil {
			return nil, err
		}
		m := boundRE.FindStringSubmatch(bound)
		if m == nil {
			return nil, fmt.Errorf("partition %s has bound %q, not a range", p.name, bound)
		}
		if p.lo, err = parseBound(m[1]); err != nil {
			return nil, fmt.Errorf("partition %s has bound %q: %w", p.name, bound, err)
		}
		if p.hi, err = parseBound(m[2]); err != nil {
			return nil, fmt.Errorf("partition %s has bound %q: %w", p.name, bound, err)
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// partStart returns the lower bound of the partition of expiry ms.
func (p *partLayout) partStart(ms int64) int64 {
	k := ms / p.width
	if ms%p.width < 0 {
		k--
	}
	return k * p.width
}

// partName returns the quoted, qualified name of the partition that starts
// at lo.
func (p *partLayout) partName(lo int64) string {
	n := strconv.FormatInt(lo, 10)
	if lo < 0 {
		n = "m" + n[1:]
	}
	return p.schema + `"` + p.tableName + "_p" + n + `"`
}

// limit is where expiries stop being partitioned: beyond ±2^62 ms (146
// million years) the bounds would overflow.
const limit = 1 << 62

// ensurePartitions creates the partitions missing for expiries from..to
// (milliseconds, inclusive), in one transaction under an advisory lock.
// Each is created as a table of its own and then attached, which takes a
// SHARE UPDATE EXCLUSIVE lock on the parent (no conflict with reads and
// writes), where CREATE TABLE ... PARTITION OF would take ACCESS
// EXCLUSIVE.
func (s *Store) ensurePartitions(ctx context.Context, from, to int64) error {
	p := s.part
	if from < -limit || to > limit {
		return fmt.Errorf("expiry out of the partitioned range (±2^62 ms)")
	}
	have, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	for lo := p.partStart(from); lo <= to; lo += p.width {
		hi := lo + p.width
		covered := false
		for _, h := range have {
			if h.lo < hi && lo < h.hi { // overlaps (a pending detach included)
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		name := p.partName(lo)
		lit := quoteLiteral(name)
		fmt.Fprintf(&b, `IF to_regclass(%[1]s) IS NULL THEN
	CREATE TABLE %[2]s (LIKE %[3]s INCLUDING DEFAULTS);
	COMMENT ON TABLE %[2]s IS %[6]s;
END IF;
IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%[1]s)) THEN
	ALTER TABLE %[3]s ATTACH PARTITION %[2]s FOR VALUES FROM (%[4]d) TO (%[5]d);
END IF;
`, lit, name, s.table, lo, hi, quoteLiteral(partitionComment))
	}
	if b.Len() == 0 {
		return nil
	}
	q := "DO $sessionkit$ BEGIN PERFORM pg_advisory_xact_lock(" + p.lockKey + ");\n" + b.String() + "END $sessionkit$"
	_, err = s.db.Exec(ctx, q)
	return err
}

// createPartitioned is CreateTable for the partitioned layout, after the
// table's DDL ran: it checks the layout and creates the partitions from
// now to PartitionAhead.
func (s *Store) createPartitioned(ctx context.Context) error {
	var kind string
	if err := s.db.QueryRow(ctx, s.part.qRelkind, s.table).Scan(&kind); err != nil {
		return err
	}
	if kind != "p" {
		return fmt.Errorf("%s is not partitioned (migrate it, see the README): %w", s.table, ErrLayout)
	}
	now := time.Now().UnixMilli()
	return s.ensurePartitions(ctx, now, now+s.part.ahead)
}

// isMoved reports a row that a concurrent update moved to another partition
// while this statement waited for its lock (READ COMMITTED cannot follow it
// there).
func isMoved(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "40001" && strings.Contains(pe.Message, "another partition")
}

// isNoPartition reports a row written with an expiry no partition covers.
func isNoPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && strings.HasPrefix(pe.Message, "no partition of relation")
}

// retry runs op again (a bounded number of times) when, in the partitioned
// layout, a row it waited for moved to another partition, or when no
// partition covered the expiry it wrote (expiry, in milliseconds): then it
// creates that partition first. In the plain layout it runs op once.
func (s *Store) retry(ctx context.Context, expiry int64, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || s.part == nil || attempt == maxRetries {
			return err
		}
		switch {
		case isMoved(err):
		case isNoPartition(err):
			if err := s.ensurePartitions(ctx, expiry, expiry); err != nil {
				return fmt.Errorf("creating the partition of expiry %d: %w", expiry, err)
			}
		default:
			return err
		}
	}
}

// deleteExpiredPartitioned is DeleteExpired for the partitioned layout.
func (s *Store) deleteExpiredPartitioned(ctx context.Context, nowMS int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	total, err := s.dropOrphans(ctx)
	if err != nil {
		return total, err
	}
	parts, err := s.partitions(ctx)
	if err != nil {
		return total, err
	}
	for _, p := range parts {
		if !p.pending && p.hi > nowMS {
			continue
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		// DETACH ... CONCURRENTLY takes SHARE UPDATE EXCLUSIVE on the
		// parent, marks the partition as detaching (new queries no
		// longer see it), commits, waits for the transactions that
		// could still see it, and completes in a second transaction.
		// Interrupted in between (a deadline, a crash), it leaves the
		// partition pending, and FINALIZE completes it.
		finalize := `ALTER TABLE ` + s.table + ` DETACH PARTITION ` + p.name + ` FINALIZE`
		q := `ALTER TABLE ` + s.table + ` DETACH PARTITION ` + p.name + ` CONCURRENTLY`
		if p.pending {
			q = finalize
		}
		_, err := s.db.Exec(ctx, q)
		if isPendingDetach(err) {
			// The detach of an earlier sweep that its deadline cut
			// had not yet ended when the partitions were listed.
			_, err = s.db.Exec(ctx, finalize)
		}
		if isGone(err) {
			continue // another sweep detached (and dropped) it
		}
		if err != nil {
			return total, err
		}
		n, err := s.dropDetached(ctx, p.name)
		total += n
		if err != nil {
			return total, err
		}
	}
	// Once more: the detach of a sweep whose deadline cut it may have
	// completed on the server meanwhile (the cancellation reaches a
	// statement waiting for a lock late, or not at all when the
	// connection just closes), leaving a partition that the FINALIZE
	// above found no longer pending.
	n, err := s.dropOrphans(ctx)
	total += n
	if err != nil {
		return total, err
	}
	now := nowMS
	if err := s.ensurePartitions(ctx, now, now+s.part.ahead); err != nil {
		return total, err
	}
	n, err = s.sweep(ctx, nowMS)
	return total + n, err
}

// dropOrphans counts and drops the store's partitions of this table that
// are no longer attached: an interrupted sweep detached them and did not
// drop them.
func (s *Store) dropOrphans(ctx context.Context) (int, error) {
	rows, err := s.db.Query(ctx, s.part.qOrphans, s.table, s.part.tableName+"_p", partitionComment)
	if err != nil {
		return 0, err
	}
	orphans, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	total := 0
	for _, name := range orphans {
		n, err := s.dropDetached(ctx, name)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// dropDetached counts the rows of a detached partition (which no write can
// reach any more) and drops it. It finishes even when ctx ends meanwhile,
// within a minute, so that a sweep cut by its deadline does not leave a
// detached partition behind.
func (s *Store) dropDetached(ctx context.Context, name string) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var n int64
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM `+name).Scan(&n)
	if err == nil {
		_, err = s.db.Exec(ctx, `DROP TABLE `+name)
	}
	if isGone(err) {
		return 0, nil // another sweep dropped it first, and counted it
	}
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// isPendingDetach reports a DETACH ... CONCURRENTLY of a partition that
// another one (interrupted or still running) already marked as detaching.
func isPendingDetach(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55000" && strings.Contains(pe.Message, "pending detach")
}

// isGone reports a partition that no longer exists, or is no longer a
// partition of the table: another sweep took it first.
func isGone(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "42P01" || // undefined_table
		pe.Code == "42P17" && strings.Contains(pe.Message, "is not a partition") ||
		pe.Code == "55000" && strings.Contains(pe.Message, "no pending concurrent detach")
}

// args returns the arguments of a contract statement. In the partitioned
// layout they go with pgx.QueryExecModeExec: an unnamed statement, which
// PostgreSQL plans for the actual values, so that the expiry conditions
// prune partitions when the statement is planned, and the statement locks
// only the partitions it reads. A prepared statement's generic plan (after
// five executions) prunes only when it runs, having locked every partition
// and index of the table: with hundreds of partitions (a backlog that no
// sweep has dropped), concurrent statements then queue on PostgreSQL's
// lock manager (LWLock:LockManager), and live requests took seconds in
// the sweep test of the reliability module.
func (s *Store) args(args ...any) []any {
	if s.part == nil {
		return args
	}
	return append([]any{pgx.QueryExecModeExec}, args...)
}
