package benchmarks

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// The raw stores of the floor: one round trip per get and per put, the
// data as given, no versions, no hashing.

// memRaw is a mutex-guarded map.
type memRaw struct {
	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	data   []byte
	expiry time.Time
}

func newMemRaw() *memRaw { return &memRaw{m: map[string]memEntry{}} }

func (s *memRaw) get(_ context.Context, token string, now time.Time) ([]byte, bool, error) {
	s.mu.Lock()
	e, ok := s.m[token]
	s.mu.Unlock()
	if !ok || !e.expiry.After(now) {
		return nil, false, nil
	}
	return e.data, true, nil
}

func (s *memRaw) put(_ context.Context, token string, data []byte, expiry time.Time, _ bool) error {
	s.mu.Lock()
	s.m[token] = memEntry{data: data, expiry: expiry}
	s.mu.Unlock()
	return nil
}

func (s *memRaw) close() error { return nil }

// redisRaw is GET and SET with a TTL through go-redis.
type redisRaw struct {
	c      *redis.Client
	prefix string
}

func newRedisRaw(purpose string) (*redisRaw, error) {
	c, err := newRedisClient()
	if err != nil {
		return nil, err
	}
	return &redisRaw{c: c, prefix: "skbench:" + runID + ":" + purpose + ":"}, nil
}

func (s *redisRaw) get(ctx context.Context, token string, _ time.Time) ([]byte, bool, error) {
	b, err := s.c.Get(ctx, s.prefix+token).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	return b, err == nil, err
}

func (s *redisRaw) put(ctx context.Context, token string, data []byte, expiry time.Time, _ bool) error {
	return s.c.Set(ctx, s.prefix+token, data, time.Until(expiry)).Err()
}

func (s *redisRaw) close() error {
	defer s.c.Close()
	return deleteRedisPrefix(s.c, s.prefix)
}

// postgresRaw is one SELECT, UPDATE or INSERT through a pgx pool (which
// prepares and caches the statements).
type postgresRaw struct {
	pool                   *pgxpool.Pool
	table                  string
	qGet, qUpdate, qInsert string
}

func newPostgresRaw(purpose string) (*postgresRaw, error) {
	pool, err := newPgxPool()
	if err != nil {
		return nil, err
	}
	t := tableName(purpose)
	s := &postgresRaw{
		pool:    pool,
		table:   t,
		qGet:    `SELECT data FROM ` + t + ` WHERE token = $1 AND expiry > $2`,
		qUpdate: `UPDATE ` + t + ` SET data = $1, expiry = $2 WHERE token = $3`,
		qInsert: `INSERT INTO ` + t + ` (token, data, expiry) VALUES ($1, $2, $3)`,
	}
	if _, err := pool.Exec(context.Background(), `CREATE TABLE `+t+` (token text PRIMARY KEY, data bytea NOT NULL, expiry bigint NOT NULL)`); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *postgresRaw) get(ctx context.Context, token string, now time.Time) ([]byte, bool, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, s.qGet, token, now.UnixMilli()).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return data, err == nil, err
}

func (s *postgresRaw) put(ctx context.Context, token string, data []byte, expiry time.Time, create bool) error {
	var err error
	if create {
		_, err = s.pool.Exec(ctx, s.qInsert, token, data, expiry.UnixMilli())
	} else {
		_, err = s.pool.Exec(ctx, s.qUpdate, data, expiry.UnixMilli(), token)
	}
	return err
}

func (s *postgresRaw) close() error {
	defer s.pool.Close()
	_, err := s.pool.Exec(context.Background(), `DROP TABLE IF EXISTS `+s.table)
	return err
}

// mysqlRaw is one prepared SELECT, UPDATE or INSERT through database/sql.
type mysqlRaw struct {
	db                  *sql.DB
	table               string
	sGet, sUpdate, sIns *sql.Stmt
}

func newMySQLRaw(purpose string) (*mysqlRaw, error) {
	db, err := newSQLDB("mysql", mysqlDSN())
	if err != nil {
		return nil, err
	}
	t := tableName(purpose)
	s := &mysqlRaw{db: db, table: t}
	if _, err := db.Exec("CREATE TABLE `" + t + "` (token VARCHAR(64) PRIMARY KEY, data BLOB NOT NULL, expiry BIGINT NOT NULL)"); err != nil {
		db.Close()
		return nil, err
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		q    string
	}{
		{&s.sGet, "SELECT data FROM `" + t + "` WHERE token = ? AND expiry > ?"},
		{&s.sUpdate, "UPDATE `" + t + "` SET data = ?, expiry = ? WHERE token = ?"},
		{&s.sIns, "INSERT INTO `" + t + "` (token, data, expiry) VALUES (?, ?, ?)"},
	} {
		if *p.stmt, err = db.Prepare(p.q); err != nil {
			return nil, errors.Join(err, s.close())
		}
	}
	return s, nil
}

func (s *mysqlRaw) get(ctx context.Context, token string, now time.Time) ([]byte, bool, error) {
	var data []byte
	err := s.sGet.QueryRowContext(ctx, token, now.UnixMilli()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	return data, err == nil, err
}

func (s *mysqlRaw) put(ctx context.Context, token string, data []byte, expiry time.Time, create bool) error {
	var err error
	if create {
		_, err = s.sIns.ExecContext(ctx, token, data, expiry.UnixMilli())
	} else {
		_, err = s.sUpdate.ExecContext(ctx, data, expiry.UnixMilli(), token)
	}
	return err
}

func (s *mysqlRaw) close() error {
	defer s.db.Close()
	for _, st := range []*sql.Stmt{s.sGet, s.sUpdate, s.sIns} {
		if st != nil {
			st.Close()
		}
	}
	_, err := s.db.Exec("DROP TABLE IF EXISTS `" + s.table + "`")
	return err
}
