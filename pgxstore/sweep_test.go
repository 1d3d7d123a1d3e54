package pgxstore_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionkit/sessions/pgxstore"
)

// explainDB sends every statement to the pool, and before each sweep batch
// (a DELETE over the expiry index) runs the same statement with the same
// arguments under EXPLAIN (ANALYZE, BUFFERS) in a transaction it rolls
// back, recording how many buffers the scan of the expiry index touched.
type explainDB struct {
	pool  *pgxpool.Pool
	index string // name of the expiry index
	t     testing.TB

	mu      sync.Mutex
	buffers []int64 // per sweep batch, in order
}

func isSweep(sql string) bool {
	return strings.Contains(sql, "DELETE FROM") && strings.Contains(sql, "expiry <= $1")
}

func (e *explainDB) explain(ctx context.Context, sql string, args ...any) {
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		e.t.Errorf("begin: %v", err)
		return
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var out []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&out); err != nil {
		e.t.Errorf("explain: %v", err)
		return
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		e.t.Errorf("explain output %s: %v", out, err)
		return
	}
	n, found := plans[0].Plan.indexBuffers(e.index)
	if !found {
		e.t.Errorf("the sweep's plan does not scan %s: %s", e.index, out)
	}
	e.mu.Lock()
	e.buffers = append(e.buffers, n)
	e.mu.Unlock()
}

type planNode struct {
	IndexName  string     `json:"Index Name"`
	SharedHit  int64      `json:"Shared Hit Blocks"`
	SharedRead int64      `json:"Shared Read Blocks"`
	Plans      []planNode `json:"Plans"`
}

// indexBuffers sums the buffers of the nodes that scan index.
func (p planNode) indexBuffers(index string) (int64, bool) {
	var n int64
	found := p.IndexName == index
	if found {
		n = p.SharedHit + p.SharedRead
	}
	for _, c := range p.Plans {
		m, ok := c.indexBuffers(index)
		n += m
		found = found || ok
	}
	return n, found
}

func (e *explainDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if isSweep(sql) {
		e.explain(ctx, sql, args...)
	}
	return e.pool.Exec(ctx, sql, args...)
}

func (e *explainDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if isSweep(sql) {
		e.explain(ctx, sql, args...)
	}
	return e.pool.Query(ctx, sql, args...)
}

func (e *explainDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if isSweep(sql) {
		e.explain(ctx, sql, args...)
	}
	return e.pool.QueryRow(ctx, sql, args...)
}

// TestDeleteExpiredDoesNotRewalk checks that a late batch of a long sweep
// reads no more of the expiry index than the first one. A sweep whose
// every batch starts from the lowest expiry reads, in batch k, the index
// entries of the k-1 batches before it: PostgreSQL keeps them (dead) until
// VACUUM, which is kept off this table. With 40,000 rows in 100 batches
// that is about a hundred extra index pages in the last batch; the bound
// asserted is a count of buffers, not a timing.
func TestDeleteExpiredDoesNotRewalk(t *testing.T) {
	t.Parallel()
	const rows, batch, live = 40_000, 400, 10
	p := testPool(t)
	schema := testSchema(t, p)
	e := &explainDB{pool: p, index: pgxstore.DefaultTable + "_expiry_idx", t: t}
	s, err := pgxstore.New(e, &pgxstore.Options{Schema: schema, SweepBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	table := `"` + schema + `"."` + pgxstore.DefaultTable + `"`
	now := t0
	if _, err := p.Exec(ctx, `ALTER TABLE `+table+` SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	// Expired rows with distinct expiries, in expiry order on the heap
	// as sessions created over time would be; random ids.
	if _, err := p.Exec(ctx, `INSERT INTO `+table+` (id, data, version, expiry)
SELECT decode(md5(g::text) || md5((-g)::text), 'hex'), '\x00'::bytea, 1, $1::bigint - $2::bigint + g
FROM generate_series(0, $2::bigint - 1) g`, now.UnixMilli(), rows); err != nil {
		t.Fatal(err)
	}
	for i := range live {
		if _, err := s.Create(ctx, testID(t, i), []byte("live"), now.Add(time.Hour), "", now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Exec(ctx, `ANALYZE `+table); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpired(ctx, now)
	if err != nil || n != rows {
		t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, rows)
	}
	var left int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&left); err != nil || left != live {
		t.Fatalf("%d rows left (%v); want the %d live ones", left, err, live)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.buffers) != rows/batch+1 {
		t.Fatalf("%d sweep batches; want %d", len(e.buffers), rows/batch+1)
	}
	first, last := e.buffers[0], e.buffers[len(e.buffers)-2] // the last full batch
	t.Logf("buffers of the expiry index scan: first batch %d, last full batch %d, all %v", first, last, e.buffers)
	if last > 2*first+10 {
		t.Errorf("the last full batch of the sweep read %d buffers of the expiry index, the first %d: later batches re-walk the entries of the rows earlier batches removed", last, first)
	}
}
