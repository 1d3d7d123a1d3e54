package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/sqlitestore"
)

// Cleanup at scale: a table holding many expired sessions and a few
// thousand live ones; live traffic (increments on live sessions, at a
// constant rate) runs before, during and after one DeleteExpired of the
// whole backlog. Reported: the sweep's duration and rate, the live p99
// during the sweep against the p99 without it (the slower of the phases
// before and after), and the longest lock wait seen (PostgreSQL:
// pg_locks.waitstart; MariaDB: information_schema.INNODB_TRX in LOCK WAIT;
// both sampled every 20 ms). CI uses 50,000 expired rows in PostgreSQL and
// MariaDB, 20,000 in SQLite; the long form (10 million in PostgreSQL, one million in MariaDB and SQLite):
//
//	cd reliability && SESSIONS_SWEEP_FULL=1 go test -run TestSweepAtScale -v -timeout 60m .

type sweepCase struct {
	name    string
	expired int
	store   sessions.Store
	// fill inserts n expired rows (expiries in the past, before now).
	fill func(ctx context.Context, n int, nowMS int64) error
	// lockWait returns the longest current lock wait, or -1 when the
	// store cannot tell.
	lockWait func(ctx context.Context) time.Duration
}

const liveRate = 100 // live requests per second

func TestSweepAtScale(t *testing.T) {
	heavy(t)
	full := longRun("SESSIONS_SWEEP_FULL")
	scale := func(n int) int {
		if full {
			return n
		}
		return 50_000
	}
	sqliteScale := func(n int) int {
		if full {
			return n
		}
		return 20_000 // one writer: the CI form stays short
	}
	t.Run("postgres", func(t *testing.T) {
		store, pool := pgStore(t, strings.Replace(pgDSN(localPG()), "dbname=postgres", "dbname=test", 1), nil)
		table := tableOf(t, pool, store)
		runSweep(t, sweepCase{
			name: "postgres", expired: scale(10_000_000), store: store,
			fill: func(ctx context.Context, n int, nowMS int64) error {
				// 32-byte ids from two md5s of the row number; expiries
				// spread over the last n milliseconds.
				_, err := pool.Exec(ctx, `INSERT INTO "`+table+`" (id, data, version, expiry, owner)
SELECT decode(md5(g::text) || md5((-g)::text), 'hex'), '\x'::bytea, 1, $1::bigint - 1000 - g, NULL
FROM generate_series(1, $2::bigint) g`, nowMS, n)
				if err == nil {
					_, err = pool.Exec(ctx, `ANALYZE "`+table+`"`)
				}
				return err
			},
			lockWait: func(ctx context.Context) time.Duration {
				var us float64
				if err := pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM max(now() - waitstart)) * 1e6, 0)
FROM pg_locks WHERE NOT granted`).Scan(&us); err != nil {
					return -1
				}
				return time.Duration(us) * time.Microsecond
			},
		})
	})
	t.Run("mariadb", func(t *testing.T) {
		store, db := mariaStore(t, localMaria())
		table := mariaTable(t, db)
		runSweep(t, sweepCase{
			name: "mariadb", expired: scale(1_000_000), store: store,
			fill: func(ctx context.Context, n int, nowMS int64) error {
				// The Sequence engine's seq_1_to_N table.
				for start := 1; start <= n; start += 200_000 {
					end := min(start+200_000-1, n)
					q := fmt.Sprintf("INSERT INTO `%s` (id, data, version, expiry, owner) "+
						"SELECT UNHEX(SHA2(seq, 256)), '', 1, %d - 1000 - seq, NULL FROM seq_%d_to_%d", table, nowMS, start, end)
					if _, err := db.ExecContext(ctx, q); err != nil {
						return err
					}
				}
				_, err := db.ExecContext(ctx, "ANALYZE TABLE `"+table+"`")
				return err
			},
			lockWait: mariaLockWaits(db),
		})
	})
	batches := []int{0}
	if full {
		batches = append(batches, 100)
	}
	for _, batch := range batches {
		name := "sqlite"
		if batch != 0 {
			name = fmt.Sprintf("sqlite-batch%d", batch)
		}
		t.Run(name, func(t *testing.T) {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "sweep.db")+
				"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			store, err := sqlitestore.New(db, &sqlitestore.Options{SweepBatch: batch})
			if err != nil {
				t.Fatal(err)
			}
			if err := store.CreateTable(context.Background()); err != nil {
				t.Fatal(err)
			}
			runSweep(t, sweepCase{
				name: name, expired: sqliteScale(1_000_000), store: store,
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

// tableOf finds the table pgStore created (the newest rel_ table).
func tableOf(t *testing.T, pool *pgxpool.Pool, _ sessions.Store) string {
	t.Helper()
	var name string
	if err := pool.QueryRow(context.Background(), `SELECT c.relname FROM pg_class c WHERE c.relname LIKE 'rel\_%' AND c.relkind = 'r'
ORDER BY c.oid DESC LIMIT 1`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func mariaTable(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name string
	if err := db.QueryRow(`SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()
AND table_name LIKE 'rel\_%' ORDER BY create_time DESC LIMIT 1`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// mariaLockWaits estimates the longest lock wait from successive samples
// of the transactions in LOCK WAIT (first and last time each was seen).
func mariaLockWaits(db *sql.DB) func(ctx context.Context) time.Duration {
	first := map[string]time.Time{}
	var mu sync.Mutex
	return func(ctx context.Context) time.Duration {
		rows, err := db.QueryContext(ctx, `SELECT trx_id FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'`)
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

func runSweep(t *testing.T, c sweepCase) {
	ctx := context.Background()
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

	// One attack for all three phases; each result is put in the phase
	// during which it started.
	const (
		before = iota
		during
		after
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
	lat := [4][]time.Duration{}
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

	window := 3 * time.Second
	if longRun("SESSIONS_SWEEP_FULL") {
		window = 20 * time.Second
	}
	time.Sleep(time.Second)
	phase.Store(before)
	time.Sleep(window)
	phase.Store(during)
	var maxWait atomic.Int64
	sampling := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-tk.C:
				if w := c.lockWait(ctx); int64(w) > maxWait.Load() {
					maxWait.Store(int64(w))
				}
			}
		}
	}()
	sweepStart := time.Now()
	n, err := c.store.(sessions.ExpiredDeleter).DeleteExpired(ctx, time.Now())
	sweepTook := time.Since(sweepStart)
	close(sampling)
	wg.Wait()
	phase.Store(after)
	time.Sleep(window)
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("%s: DeleteExpired: %v", c.name, err)
	}
	if n != c.expired {
		t.Errorf("%s: DeleteExpired removed %d rows; want %d", c.name, n, c.expired)
	}
	p99 := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return percentile(s, .99)
	}
	base := max(p99(lat[before]), p99(lat[after]))
	ratio := float64(p99(lat[during])) / float64(base)
	wait := "not measured"
	if c.lockWait(ctx) >= 0 {
		wait = time.Duration(maxWait.Load()).Round(time.Millisecond).String()
	}
	maxDuring := slices.Max(append([]time.Duration{0}, lat[during]...))
	t.Logf("%s: swept %d rows in %v (%.0f rows/s); live p99 before %v, during %v, after %v: %.2fx; slowest live request during the sweep %v; longest lock wait seen %s; %d live requests failed",
		c.name, n, sweepTook.Round(time.Millisecond), float64(n)/sweepTook.Seconds(),
		p99(lat[before]), p99(lat[during]), p99(lat[after]), ratio, maxDuring, wait, failed)
	if failed > 0 {
		t.Errorf("%s: %d live requests failed", c.name, failed)
	}
	// The target is 1.5x; CI on a shared machine asserts a generous 4x
	// (not on SQLite, whose single writer makes live writes queue behind
	// each batch: reported, not asserted) and no lock wait over 100 ms
	// (the live requests touch only live rows).
	if ratio > 4 && !strings.HasPrefix(c.name, "sqlite") {
		t.Errorf("%s: live p99 during the sweep is %.2fx the p99 without it", c.name, ratio)
	}
	if w := time.Duration(maxWait.Load()); w > 100*time.Millisecond {
		t.Errorf("%s: a lock wait of %v during the sweep", c.name, w)
	}
	// Every live session is still there.
	for i, ck := range live {
		if code, body, err := a.read(hc, "/get", ck); err != nil || code != 200 || body == "none" {
			t.Fatalf("%s: live session %d after the sweep: %d %q %v", c.name, i, code, body, err)
		}
	}
}
