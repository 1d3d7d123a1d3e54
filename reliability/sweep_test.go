package reliability

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/mysqlstore"
	"github.com/sessionkit/sessions/pgxstore"
	"github.com/sessionkit/sessions/sqlitestore"
)

// Cleanup at scale: a table holding many expired sessions and 500 live
// ones; live traffic (increments on the live sessions, 100 per second)
// runs while DeleteExpired removes the whole backlog. The sweep runs in
// slices (DeleteExpired with a deadline of 1 s, 10 s in the long form)
// separated by pauses of the same length, so the live latencies with and
// without the sweep are sampled in alternation, under the same load from
// the rest of the machine. Reported: the sweep's duration (the slices'
// sum) and rate (per slice, and over the first and the last million rows,
// or tenth of the backlog when smaller), the live p99 while sweeping
// against the p99 between slices, and the longest lock wait seen on the
// test's own table (PostgreSQL: pg_locks.waitstart of the test's
// connections; MariaDB: information_schema.INNODB_TRX in LOCK WAIT on the
// test's table; both sampled every 20 ms).
//
// CI runs the short form (see the sweepRows calls); the long form (10
// million rows in PostgreSQL, one million in MariaDB and SQLite):
//
//	cd reliability && SESSIONS_SWEEP_FULL=1 go test -run TestSweepAtScale -v -timeout 90m .
//
// A subtest name selects one store (-run TestSweepAtScale/postgres).

type sweepCase struct {
	name    string
	expired int
	store   sessions.Store
	// fill inserts n expired rows (expiries in the past, before nowMS).
	fill func(ctx context.Context, n int, nowMS int64) error
	// lockWait returns the longest current lock wait, or -1 when the
	// store cannot tell.
	lockWait func(ctx context.Context) time.Duration
	// assertRatio asserts the live p99 ratio (see runSweep).
	assertRatio bool
}

const (
	liveRate   = 100  // live requests per second
	sweepBatch = 1000 // the stores' default SweepBatch
)

// sweepBatchEnv returns SESSIONS_SWEEP_BATCH, the SweepBatch of the
// PostgreSQL, MariaDB and SQLite cases (0, the stores' default, when unset).
func sweepBatchEnv(t testing.TB) int {
	v := getenv("SESSIONS_SWEEP_BATCH")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SESSIONS_SWEEP_BATCH=%q: want a positive integer", v)
	}
	return n
}

// sweepDutyEnv returns SESSIONS_SWEEP_DUTY, the SweepDutyCycle of the
// MariaDB and SQLite cases (0, the stores' default, when unset).
func sweepDutyEnv(t testing.TB) float64 {
	v := getenv("SESSIONS_SWEEP_DUTY")
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0 && f <= 1) {
		t.Fatalf("SESSIONS_SWEEP_DUTY=%q: want a number in (0, 1]", v)
	}
	return f
}

// sweepRowsEnv returns SESSIONS_SWEEP_ROWS, the backlog of the MariaDB
// and SQLite cases, or n when unset: a mid-sized backlog for comparing
// settings without the long form's million rows.
func sweepRowsEnv(t testing.TB, n int) int {
	v := getenv("SESSIONS_SWEEP_ROWS")
	if v == "" {
		return n
	}
	k, err := strconv.Atoi(v)
	if err != nil || k < 1 {
		t.Fatalf("SESSIONS_SWEEP_ROWS=%q: want a positive integer", v)
	}
	return k
}

// sweepRows is the backlog of each store: the long form's, or the short
// form's that CI runs (about 45 s for the three stores under -race on
// the shared two-core machine).
func sweepRows(full bool, long, short int) int {
	if full {
		return long
	}
	return short
}

func TestSweepAtScale(t *testing.T) {
	full := longRun("SESSIONS_SWEEP_FULL")
	t.Run("postgres", func(t *testing.T) {
		table := uniqueName("rel_sweep_")
		// The application name marks this test's connections, so that
		// lock waits elsewhere on the shared server do not count.
		dsn := strings.Replace(pgDSN(localPG()), "dbname=postgres", "dbname=test", 1) + " application_name=" + table
		store, pool := pgStore(t, dsn, &pgxstore.Options{Table: table, SweepBatch: sweepBatchEnv(t)})
		runSweep(t, sweepCase{
			name: "postgres", expired: sweepRows(full, 10_000_000, 300_000), store: store,
			fill:        func(ctx context.Context, n int, nowMS int64) error { return pgFill(ctx, pool, table, n, nowMS) },
			assertRatio: true,
			lockWait: func(ctx context.Context) time.Duration {
				var us float64
				if err := pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM max(now() - l.waitstart)) * 1e6, 0)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.application_name = $1`, table).Scan(&us); err != nil {
					return -1
				}
				return time.Duration(us) * time.Microsecond
			},
		})
	})
	t.Run("postgres-partitioned", func(t *testing.T) {
		// The partitioned layout (pgxstore Options.Partition): partitions
		// six hours wide (the Manager's 24 h Lifetime in four), and the
		// backlog spread over the ten days before now, as real
		// expirations would be, so that the sweep drops 40 partitions
		// and deletes the expired rows of the current one in batches.
		// (Hour-wide partitions, 240 of them, are slower to sweep and
		// slow live requests down: see pgxstore's README.)
		table := uniqueName("rel_psweep_")
		dsn := strings.Replace(pgDSN(localPG()), "dbname=postgres", "dbname=test", 1) + " application_name=" + table
		store, pool := pgStore(t, dsn, &pgxstore.Options{Table: table, SweepBatch: sweepBatchEnv(t), Partition: 6 * time.Hour})
		t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP FUNCTION IF EXISTS "`+table+`_create"`) })
		// Its sweep of ten million rows takes about 3 s, too short for a
		// p99: the backlog is filled and swept in rounds, and the live
		// latencies pooled over them (see runSweepRounds): in the long
		// form, ten rounds or more, until the sweeps have seen 3,000 live
		// requests (a p99 over them is their 30th-slowest).
		rounds, minLive, gap := 3, 0, time.Second
		if full {
			rounds, minLive, gap = 10, 3000, 3*time.Second
		}
		if v := getenv("SESSIONS_SWEEP_ROUNDS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("SESSIONS_SWEEP_ROUNDS=%q: want a positive integer", v)
			}
			rounds = n
		}
		runSweepRounds(t, sweepRounds{
			name: "postgres-partitioned", rounds: rounds, minLive: minLive, expired: sweepRows(full, 10_000_000, 100_000), gap: gap,
			store: store, pool: pool,
			fill: func(ctx context.Context, n int, nowMS int64) error {
				return pgFillPartitioned(ctx, pool, table, n, nowMS, 6*time.Hour, 10*24*time.Hour)
			},
			lockWait: pgLiveLockWait(pool, table),
		})
	})
	// MariaDB and SQLite run with the stores' SweepDutyCycle (the default
	// unless SESSIONS_SWEEP_DUTY sets it) and SweepBatch (the default
	// unless SESSIONS_SWEEP_BATCH sets it); the long form also runs them
	// flat out first (SweepDutyCycle 1, no rest between batches, and
	// batches of 1000 unless SESSIONS_SWEEP_BATCH sets them: the
	// behaviour before the option), for the comparison in the same run.
	type paced struct {
		suffix string
		batch  int
		duty   float64
	}
	pacings := []paced{{"", sweepBatchEnv(t), sweepDutyEnv(t)}}
	if full {
		flat := paced{"-flatout", sweepBatchEnv(t), 1}
		if flat.batch == 0 {
			flat.batch = 1000
		}
		pacings = append([]paced{flat}, pacings...)
	}
	for _, p := range pacings {
		name := "mariadb" + p.suffix
		t.Run(name, func(t *testing.T) {
			store, db, table := sweepMariaStore(t, localMaria(), p.batch, p.duty)
			runSweep(t, sweepCase{
				name: name, expired: sweepRowsEnv(t, sweepRows(full, 1_000_000, 100_000)), store: store,
				// The flat-out case is the reference, reported only.
				assertRatio: p.duty != 1,
				fill: func(ctx context.Context, n int, nowMS int64) error {
					// The Sequence engine's seq_1_to_N table.
					for start := 1; start <= n; start += 100_000 {
						end := min(start+100_000-1, n)
						q := fmt.Sprintf("INSERT INTO `%s` (id, data, version, expiry, owner) "+
							"SELECT UNHEX(SHA2(seq, 256)), '', 1, %d - 1000 - seq, NULL FROM seq_%d_to_%d", table, nowMS, start, end)
						if _, err := db.ExecContext(ctx, q); err != nil {
							return err
						}
					}
					_, err := db.ExecContext(ctx, "ANALYZE TABLE `"+table+"`")
					return err
				},
				lockWait: mariaLockWaits(db, table),
			})
		})
	}
	for _, p := range pacings {
		name := "sqlite" + p.suffix
		t.Run(name, func(t *testing.T) {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "sweep.db")+
				"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			store, err := sqlitestore.New(db, &sqlitestore.Options{SweepBatch: p.batch, SweepDutyCycle: p.duty})
			if err != nil {
				t.Fatal(err)
			}
			if err := store.CreateTable(context.Background()); err != nil {
				t.Fatal(err)
			}
			runSweep(t, sweepCase{
				name: name, expired: sweepRowsEnv(t, sweepRows(full, 1_000_000, 10_000)), store: store,
				fill: func(ctx context.Context, n int, nowMS int64) error {
					_, err := db.ExecContext(ctx, `WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ?)
INSERT INTO "sessions" (id, data, version, expiry, owner) SELECT randomblob(32), x'', 1, ? - 1000 - x, NULL FROM g`, n, nowMS)
					return err
				},
				lockWait: func(context.Context) time.Duration { return -1 },
			})
		})
	}
}

// pgFill inserts n expired rows into the store's table: 32-byte ids from
// two md5s of the row number, expiries spread over the n milliseconds
// before nowMS. To be quick it drops the table's primary key and expiry
// index, inserts in chunks of a million rows without waiting for the WAL
// flush (synchronous_commit off, this session only), and then builds the
// same constraint and index again: the table ends as the store created it,
// with indexes freshly built rather than grown row by row.
func pgFill(ctx context.Context, pool *pgxpool.Pool, table string, n int, nowMS int64) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	t := `"` + table + `"`
	stmts := []string{
		`SET synchronous_commit = off`,
		`SET maintenance_work_mem = '512MB'`,
		`ALTER TABLE ` + t + ` DROP CONSTRAINT "` + table + `_pkey"`,
		`DROP INDEX "` + table + `_expiry_idx"`,
	}
	if err := execAll(ctx, c, stmts); err != nil {
		return err
	}
	for start := 1; start <= n; start += 1_000_000 {
		end := min(start+1_000_000-1, n)
		if _, err := c.Exec(ctx, `INSERT INTO `+t+` (id, data, version, expiry, owner)
SELECT decode(md5(g::text) || md5((-g)::text), 'hex'), '\x'::bytea, 1, $1::bigint - 1000 - g, NULL
FROM generate_series($2::bigint, $3::bigint) g`, nowMS, start, end); err != nil {
			return err
		}
	}
	stmts = []string{
		`ALTER TABLE ` + t + ` ADD CONSTRAINT "` + table + `_pkey" PRIMARY KEY (id)`,
		`CREATE INDEX "` + table + `_expiry_idx" ON ` + t + ` (expiry)`,
		`ANALYZE ` + t,
		`RESET synchronous_commit`,
		`RESET maintenance_work_mem`,
	}
	return execAll(ctx, c, stmts)
}

// pgLiveLockWait returns the longest current lock wait of the test's
// connections (application_name app) other than the sweep's DETACH
// PARTITION ... CONCURRENTLY, which waits by design for the transactions
// in flight when it marked the partition as detaching, without blocking
// anyone.
func pgLiveLockWait(pool *pgxpool.Pool, app string) func(ctx context.Context) time.Duration {
	return func(ctx context.Context) time.Duration {
		var us float64
		if err := pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM max(now() - l.waitstart)) * 1e6, 0)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND a.application_name = $1 AND a.query NOT LIKE '%DETACH PARTITION%'`, app).Scan(&us); err != nil {
			return -1
		}
		return time.Duration(us) * time.Microsecond
	}
}

// pgFillPartitioned is pgFill for the partitioned layout: the n expired
// rows get expiries spread evenly over span before nowMS, in partitions of
// width created first (as the store would have created them ahead, with
// its names and mark), and the primary key and expiry index are dropped
// for the insert and built again, on every partition, afterwards.
func pgFillPartitioned(ctx context.Context, pool *pgxpool.Pool, table string, n int, nowMS int64, width, span time.Duration) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	t := `"` + table + `"`
	w := width.Milliseconds()
	from := (nowMS - span.Milliseconds()) / w * w
	stmts := []string{
		`SET synchronous_commit = off`,
		`SET maintenance_work_mem = '512MB'`,
		fmt.Sprintf(`DO $fill$ DECLARE lo bigint; BEGIN
FOR lo IN SELECT g FROM generate_series(%[1]d::bigint, %[2]d::bigint, %[3]d::bigint) g LOOP
	IF to_regclass(%[4]s || lo) IS NULL THEN
		EXECUTE format('CREATE TABLE %%I (LIKE %%I INCLUDING DEFAULTS)', %[4]s || lo, %[5]s);
		EXECUTE format('COMMENT ON TABLE %%I IS %%L', %[4]s || lo, 'pgxstore partition');
		EXECUTE format('ALTER TABLE %%I ATTACH PARTITION %%I FOR VALUES FROM (%%s) TO (%%s)', %[5]s, %[4]s || lo, lo, lo + %[3]d);
	END IF;
END LOOP; END $fill$`, from, nowMS, w, "'"+table+"_p'", "'"+table+"'"),
		`ALTER TABLE ` + t + ` DROP CONSTRAINT "` + table + `_pkey"`,
		`DROP INDEX "` + table + `_expiry_idx"`,
	}
	if err := execAll(ctx, c, stmts); err != nil {
		return err
	}
	step := float64(span.Milliseconds()-1000) / float64(n)
	for start := 1; start <= n; start += 1_000_000 {
		end := min(start+1_000_000-1, n)
		if _, err := c.Exec(ctx, `INSERT INTO `+t+` (id, data, version, expiry, owner)
SELECT decode(md5(g::text) || md5((-g)::text), 'hex'), '\x'::bytea, 1, $1::bigint - 1000 - (g * $4::float8)::bigint, NULL
FROM generate_series($2::bigint, $3::bigint) g`, nowMS, start, end, step); err != nil {
			return err
		}
	}
	stmts = []string{
		`ALTER TABLE ` + t + ` ADD CONSTRAINT "` + table + `_pkey" PRIMARY KEY (id, expiry)`,
		`CREATE INDEX "` + table + `_expiry_idx" ON ` + t + ` (expiry)`,
		`ANALYZE ` + t,
		`RESET synchronous_commit`,
		`RESET maintenance_work_mem`,
	}
	return execAll(ctx, c, stmts)
}

// sweepMariaStore is mariaStore with a read timeout long enough for the
// fill's statements, the given SweepBatch and SweepDutyCycle, and the
// table name.
func sweepMariaStore(t testing.TB, addr string, batch int, duty float64) (*mysqlstore.Store, *sql.DB, string) {
	t.Helper()
	db, err := sql.Open("mysql", "root@tcp("+addr+")/test?timeout=1s&readTimeout=600s&writeTimeout=600s")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		unavailable(t, "MariaDB unreachable at %s: %v", addr, err)
	}
	table := uniqueName("rel_sweep_")
	s, err := mysqlstore.New(db, &mysqlstore.Options{Table: table, SweepBatch: batch, SweepDutyCycle: duty})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_, _ = db.Exec("DROP TABLE IF EXISTS `" + table + "`")
	})
	return s, db, table
}

// mariaLockWaits estimates the longest lock wait on table from successive
// samples of the transactions in LOCK WAIT (first and last time each was
// seen).
func mariaLockWaits(db *sql.DB, table string) func(ctx context.Context) time.Duration {
	first := map[string]time.Time{}
	var mu sync.Mutex
	return func(ctx context.Context) time.Duration {
		rows, err := db.QueryContext(ctx, `SELECT trx_id FROM information_schema.INNODB_TRX
WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE CONCAT('%', ?, '%')`, table)
		if err != nil {
			return -1
		}
		defer rows.Close()
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		var longest time.Duration
		seen := map[string]bool{}
		for rows.Next() {
			var id string
			if rows.Scan(&id) != nil {
				continue
			}
			seen[id] = true
			if _, ok := first[id]; !ok {
				first[id] = now
			}
			longest = max(longest, now.Sub(first[id]))
		}
		for id := range first {
			if !seen[id] {
				delete(first, id)
			}
		}
		return longest
	}
}

// progress is the number of rows a sweep had removed after some time of
// sweeping.
type progress struct {
	at time.Duration // since the sweep started
	n  int64         // rows removed by then
}

// crossing returns when the samples first reached n rows (interpolated
// between samples).
func crossing(ps []progress, n int64) (time.Duration, bool) {
	for i := 1; i < len(ps); i++ {
		if ps[i].n >= n {
			a, b := ps[i-1], ps[i]
			if b.n == a.n {
				return b.at, true
			}
			f := float64(n-a.n) / float64(b.n-a.n)
			return a.at + time.Duration(f*float64(b.at-a.at)), true
		}
	}
	return 0, false
}

func runSweep(t *testing.T, c sweepCase) {
	ctx := context.Background()
	full := longRun("SESSIONS_SWEEP_FULL")
	a := newApp(t, c.store, &sessions.Options{StoreTimeout: 10 * time.Second})
	hc := &http.Client{Timeout: 10 * time.Second}
	live := make([]*http.Cookie, 500)
	for i := range live {
		live[i] = a.newSession(t, hc)
	}
	start := time.Now()
	if err := c.fill(ctx, c.expired, time.Now().UnixMilli()); err != nil {
		t.Fatalf("%s: inserting %d expired rows: %v", c.name, c.expired, err)
	}
	t.Logf("%s: inserted %d expired rows in %v", c.name, c.expired, time.Since(start).Round(time.Millisecond))

	// One attack for the whole run; each result is put in the phase
	// during which it started. The sweep runs in slices (DeleteExpired
	// with a deadline) separated by pauses of the same length, so that
	// the live latencies with and without the sweep are sampled in
	// alternation, under the same load from the rest of the machine.
	const (
		off = iota
		on
		warmup
	)
	var phase atomic.Int32
	phase.Store(warmup)
	var seq atomic.Uint64
	targeter := func(v *vegeta.Target) error {
		i := seq.Add(1) % uint64(len(live))
		v.Method = http.MethodGet
		v.URL = fmt.Sprintf("%s/inc?p=%d", a.srv.URL, phase.Load())
		v.Header = http.Header{"Cookie": {live[i].Name + "=" + live[i].Value}}
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Timeout(30*time.Second), vegeta.Workers(16), vegeta.MaxWorkers(256), vegeta.KeepAlive(true))
	lat := [3][]time.Duration{}
	failed := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		res := atk.Attack(targeter, vegeta.Rate{Freq: liveRate, Per: time.Second}, 0, c.name)
		go func() { <-stop; atk.Stop() }()
		for r := range res {
			p := int(r.URL[len(r.URL)-1] - '0')
			lat[p] = append(lat[p], r.Latency)
			if r.Code != 200 {
				failed++
			}
		}
	}()

	slice := time.Second
	if full {
		slice = 10 * time.Second
	}
	stopSampling := sampleLockWaits(ctx, c.lockWait)
	time.Sleep(time.Second)
	phase.Store(off)
	time.Sleep(slice)
	sweepAt := time.Now()
	d := c.store.(sessions.ExpiredDeleter)
	var (
		n         int
		sweepTook time.Duration
		samples   = []progress{{0, 0}} // rows removed against sweeping time, at the end of each slice
		rates     []string
		sweepErr  error
	)
	for {
		phase.Store(on)
		sctx, cancel := context.WithTimeout(ctx, slice)
		start := time.Now()
		k, err := d.DeleteExpired(sctx, sweepAt)
		took := time.Since(start)
		cancel()
		phase.Store(off)
		n += k
		sweepTook += took
		samples = append(samples, progress{sweepTook, int64(n)})
		rates = append(rates, fmt.Sprintf("%.0f", float64(k)/took.Seconds()))
		time.Sleep(slice)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			sweepErr = err
			break
		}
	}
	maxWait := stopSampling()
	close(stop)
	<-done
	if sweepErr != nil {
		t.Fatalf("%s: DeleteExpired: %v", c.name, sweepErr)
	}
	// A batch whose statement the deadline interrupted after the server
	// had committed it is not counted: up to a batch per slice.
	if n > c.expired || n < c.expired-sweepBatch*(len(rates)-1) {
		t.Errorf("%s: DeleteExpired removed %d rows in %d slices; want %d (less at most %d per interrupted slice)", c.name, n, len(rates), c.expired, sweepBatch)
	}
	if k, err := d.DeleteExpired(ctx, sweepAt); k != 0 || err != nil {
		t.Errorf("%s: a last DeleteExpired removed %d rows (%v); want none left", c.name, k, err)
	}
	p99 := func(ds []time.Duration) time.Duration { return sortedPct(ds, .99) }
	ratio := float64(p99(lat[on])) / float64(p99(lat[off]))
	wait := "not measured"
	if c.lockWait(ctx) >= 0 {
		wait = maxWait.Round(time.Millisecond).String()
	}
	t.Logf("%s: swept %d rows in %v of sweeping (%.0f rows/s) in %d slices of at most %v; live p99 while sweeping %v, between slices %v: %.2fx (%d and %d requests; slowest %v and %v); longest lock wait seen %s; %d live requests failed",
		c.name, n, sweepTook.Round(time.Millisecond), float64(n)/sweepTook.Seconds(), len(rates), slice,
		p99(lat[on]), p99(lat[off]), ratio, len(lat[on]), len(lat[off]),
		slices.Max(append([]time.Duration{0}, lat[on]...)), slices.Max(append([]time.Duration{0}, lat[off]...)), wait, failed)
	t.Logf("%s: rows/s in each slice: %s", c.name, strings.Join(rates, ", "))
	if len(samples) > 3 {
		// The rate over the first and the last million rows (or tenth of
		// the backlog), interpolated within slices.
		chunk := min(int64(1_000_000), int64(n)/10)
		t1, ok1 := crossing(samples, chunk)
		t2, ok2 := crossing(samples, int64(n)-chunk)
		if ok1 && ok2 {
			t.Logf("%s: the first %d rows in %v (%.0f rows/s), the last %d in %v (%.0f rows/s)", c.name,
				chunk, t1.Round(time.Millisecond), float64(chunk)/t1.Seconds(),
				chunk, (sweepTook - t2).Round(time.Millisecond), float64(chunk)/(sweepTook-t2).Seconds())
		}
	}
	if failed > 0 {
		t.Errorf("%s: %d live requests failed", c.name, failed)
	}
	// The target: a live p99 while sweeping of at most 1.5x the p99
	// without, and no lock wait over 100 ms. Asserted on PostgreSQL and
	// MariaDB: no lock wait over 100 ms (the live requests touch only
	// live rows, which the sweep never locks), and, in the long form
	// only (thousands of requests in each phase), the 1.5x ratio. The
	// short form CI runs reports the ratio without asserting it: its
	// phases have a few hundred requests over two or three slices, so a
	// p99 is the third or fourth slowest request, and one burst of load
	// from the rest of the shared two-core machine moves it (0.6x to 5x
	// in successive runs here). SQLite is reported, not asserted: it has
	// one writer, and live writes queue behind each batch.
	if full && c.assertRatio && ratio > 1.5 {
		t.Errorf("%s: live p99 while sweeping is %.2fx the p99 between slices; want at most 1.5x", c.name, ratio)
	}
	if w := maxWait; w > 100*time.Millisecond {
		t.Errorf("%s: a lock wait of %v during the sweep", c.name, w)
	}
	// Every live session is still there.
	for i, ck := range live {
		if code, body, err := a.read(hc, "/get", ck); err != nil || code != 200 || body == "none" {
			t.Fatalf("%s: live session %d after the sweep: %d %q %v", c.name, i, code, body, err)
		}
	}
}

// sampleLockWaits polls lockWait every 20 ms until the function it returns
// is called; that function returns the longest wait seen.
func sampleLockWaits(ctx context.Context, lockWait func(context.Context) time.Duration) (stop func() time.Duration) {
	var longest atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				if w := lockWait(ctx); int64(w) > longest.Load() {
					longest.Store(int64(w))
				}
			}
		}
	})
	return func() time.Duration {
		close(done)
		wg.Wait()
		return time.Duration(longest.Load())
	}
}

// execAll runs the statements on c in order, naming the one that failed.
func execAll(ctx context.Context, c *pgxpool.Conn, stmts []string) error {
	for _, q := range stmts {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
