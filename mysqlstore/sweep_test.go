package mysqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sessionkit/sessions/mysqlstore"
)

// starts records the first argument of every execution of the sweep
// statement: the expiry its batch starts at.
type starts struct {
	driver.Connector
	mu   sync.Mutex
	args []any
	// executed, if not nil, receives the error of every execution of the
	// sweep statement once it has returned.
	executed chan error
}

func (s *starts) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := s.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &startsConn{Conn: c, s: s}, nil
}

type startsConn struct {
	driver.Conn
	s *starts
}

func (c *startsConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil || !strings.HasPrefix(query, "DELETE FROM") || !strings.Contains(query, "ORDER BY expiry") {
		return st, err
	}
	return &startsStmt{Stmt: st, s: c.s}, nil
}

func (c *startsConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *startsConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *startsConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

func (c *startsConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

type startsStmt struct {
	driver.Stmt
	s *starts
}

func (st *startsStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	st.s.mu.Lock()
	if len(args) > 0 {
		st.s.args = append(st.s.args, args[0].Value)
	}
	st.s.mu.Unlock()
	res, err := st.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	if st.s.executed != nil {
		st.s.executed <- err
	}
	return res, err
}

// TestDeleteExpiredStartsWhereTheLastBatchEnded checks that every batch of a
// sweep starts at the highest expiry the previous batch removed: a sweep
// whose batches all start at the lowest expiry walks, in each, the index
// entries of every row the earlier batches removed, which InnoDB keeps
// (delete-marked) until purge. Expiries include negative ones and a run of
// equal ones across a batch boundary. The table is small, so the optimizer
// may prefer a full scan and a sort for a wide range; a sweep that depends
// on the order rows are visited in (as one that read the last removed
// expiry through LAST_INSERT_ID(expiry) in the WHERE clause did) fails
// here.
func TestDeleteExpiredStartsWhereTheLastBatchEnded(t *testing.T) {
	t.Parallel()
	testDB(t) // skip when unreachable
	cfg, err := mysql.ParseDSN(baseDSN())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &starts{Connector: conn}
	db := sql.OpenDB(rec)
	t.Cleanup(func() { _ = db.Close() }) // after newStore's cleanup
	const batch, expired, live = 100, 2000, 3
	s, table := newStore(t, db, &mysqlstore.Options{SweepBatch: batch})
	ctx := context.Background()
	now := time.UnixMilli(100_000)
	var expiries []int64
	for i := range expired {
		// Three rows per expiry, from -10 s to +10 s around the epoch.
		e := int64(i/3-expired/6) * 10
		expiries = append(expiries, e)
		if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" (id, data, version, expiry) VALUES (?, '', 1, ?)", unhex(testID(t, i)), e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range live {
		if _, err := s.Create(ctx, testID(t, expired+i), []byte("d"), now.Add(time.Hour), "", now); err != nil {
			t.Fatal(err)
		}
	}
	// Fresh statistics (ANALYZE TABLE answers with rows).
	rows, err := db.QueryContext(ctx, "ANALYZE TABLE "+table)
	if err != nil {
		t.Fatal(err)
	}
	_ = rows.Close()
	slices.Sort(expiries)
	n, err := s.DeleteExpired(ctx, now)
	if err != nil || n != expired {
		t.Fatalf("DeleteExpired = %d, %v; want %d (batches started at %v)", n, err, expired, rec.args)
	}
	want := []any{int64(math.MinInt64)}
	for k := batch - 1; k < expired; k += batch {
		want = append(want, expiries[k])
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slices.Equal(rec.args, want) {
		t.Errorf("the sweep's batches started at %v; want %v (the first at the lowest possible expiry, each later one at the highest expiry its predecessor removed)", rec.args, want)
	}
	var left int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&left); err != nil || left != live {
		t.Errorf("%d rows left (%v); want the %d live ones", left, err, live)
	}
}

// TestDeleteExpiredRestsUntilCancelled sweeps a table of three batches
// with a duty cycle so small that the rest after the first batch is the
// longest there is (a day): the second batch must not start, and
// cancelling the context must end the rest at once, with the first
// batch's count and the context's error.
func TestDeleteExpiredRestsUntilCancelled(t *testing.T) {
	t.Parallel()
	testDB(t) // skip when unreachable
	cfg, err := mysql.ParseDSN(baseDSN())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &starts{Connector: conn, executed: make(chan error, 10)}
	db := sql.OpenDB(rec)
	t.Cleanup(func() { _ = db.Close() }) // after newStore's cleanup
	const batch, expired = 10, 25
	s, table := newStore(t, db, &mysqlstore.Options{SweepBatch: batch, SweepDutyCycle: 1e-12})
	bg := context.Background()
	now := time.UnixMilli(100_000)
	for i := range expired {
		if _, err := db.ExecContext(bg, "INSERT INTO "+table+" (id, data, version, expiry) VALUES (?, '', 1, ?)", unhex(testID(t, i)), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	left := func() int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(bg, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.DeleteExpired(ctx, now)
		done <- result{n, err}
	}()
	watchdog := time.After(30 * time.Second)
	select {
	case err := <-rec.executed:
		if err != nil {
			t.Fatalf("the first batch failed: %v", err)
		}
	case <-watchdog:
		t.Fatal("the first batch did not run within 30 s")
	}
	// Resting: no second batch, however long one looks.
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-rec.executed:
		t.Fatalf("a second batch ran (%v) during the rest", err)
	case r := <-done:
		t.Fatalf("DeleteExpired returned %d, %v during the rest", r.n, r.err)
	default:
	}
	if got := left(); got != expired-batch {
		t.Fatalf("%d rows left during the rest; want %d", got, expired-batch)
	}
	cancel()
	select {
	case r := <-done:
		if r.n != batch || !errors.Is(r.err, context.Canceled) || !strings.HasPrefix(r.err.Error(), "mysqlstore: ") {
			t.Fatalf("DeleteExpired = %d, %v; want %d and a wrapped context.Canceled", r.n, r.err, batch)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("DeleteExpired did not return within 30 s of the cancellation")
	}
	if got := left(); got != expired-batch {
		t.Fatalf("%d rows left after the cancellation; want %d", got, expired-batch)
	}
}
