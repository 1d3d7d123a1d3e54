package pgxstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults applied by [NewNearCache] to zero [NearCacheOptions] fields.
const (
	// DefaultNearCacheMaxAge is the hard bound on how long a loaded record
	// is served from the process when NearCacheOptions.MaxAge is zero.
	DefaultNearCacheMaxAge = 30 * time.Second
	// DefaultNearCacheEntries is the number of records a near cache keeps
	// when NearCacheOptions.MaxEntries is zero.
	DefaultNearCacheEntries = 100_000
	// DefaultNearCacheHeartbeat is the longest the notification connection
	// stays silent before the cache checks it with a ping, when
	// NearCacheOptions.Heartbeat is zero (and MaxAge is at least twice
	// that).
	DefaultNearCacheHeartbeat = 5 * time.Second
)

// NearCacheOptions configures [NewNearCache]. The zero value (or a nil
// *NearCacheOptions) is valid.
type NearCacheOptions struct {
	// MaxAge is the hard upper bound on how long a record loaded from
	// PostgreSQL is served from the process without asking PostgreSQL
	// again, whether or not a notification arrives. Zero means
	// DefaultNearCacheMaxAge; negative is an error.
	MaxAge time.Duration

	// MaxEntries bounds the number of cached records; beyond it an
	// arbitrary record is dropped. Zero means DefaultNearCacheEntries;
	// negative is an error.
	MaxEntries int

	// Heartbeat is the longest the notification connection may stay
	// silent before the cache pings it, so that a connection lost without
	// a word (a network partition) is noticed. Zero means the smaller of
	// DefaultNearCacheHeartbeat and MaxAge/2; negative is an error.
	Heartbeat time.Duration

	// Logger receives the cache's state changes: connection lost (Warn),
	// resumed (Info), trigger missing (Error). Nil means slog.Default().
	Logger *slog.Logger
}

// NearCache is a [Store] with a coherent cache of loaded records in the
// process. Create it with [NewNearCache] and stop it with [NearCache.Close].
// It implements sessions.Store, sessions.ExpiredDeleter and
// sessions.OwnerIndex, and is safe for concurrent use by multiple
// goroutines.
//
// # Coherence
//
// A trigger on the table (installed by [NearCache.CreateTable], or
// [Store.CreateNotifyTrigger]) sends a notification with the record's id
// for every row that is updated (unless neither its version nor its expiry
// changed) or deleted, whoever wrote it: this store, another instance, an
// instance without the cache, a sweep, a manual statement. PostgreSQL
// delivers notifications at commit, in commit order. The cache listens on
// a connection of its own and drops a record when its notification
// arrives; its own writes drop the record at once, so a process always
// reads its own writes.
//
// A Load that misses puts a placeholder in the cache before it queries
// PostgreSQL and keeps the result only if no notification (and no flush)
// removed the placeholder meanwhile, so a result that a concurrent write
// has already made stale is never cached.
//
// Writes are the [Store]'s compare-and-set statements, unchanged: a write
// based on a copy that is being invalidated fails as "changed" or "gone",
// exactly as with a stale read from PostgreSQL itself. Nothing is lost and
// nothing is resurrected.
//
// # Bounds
//
// A record is served from the process at most MaxAge after it was loaded,
// and only while the notification connection is up. When that connection
// is lost, the cache empties itself, logs a warning, reads every Load
// through to PostgreSQL, and reconnects with backoff; once it listens
// again (and has checked that the trigger exists), it logs that it resumed
// and caches again. A connection that dies silently is noticed by the
// heartbeat ping; until then MaxAge bounds the staleness.
type NearCache struct {
	*Store

	connect   func(context.Context) (*pgx.Conn, error)
	maxAge    time.Duration
	heartbeat time.Duration
	perShard  int
	log       *slog.Logger

	shards [nearShards]nearShard
	live   atomic.Bool
	fill   atomic.Uint64

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

const nearShards = 64

type nearShard struct {
	mu sync.Mutex
	m  map[string]*nearEntry
}

// A nearEntry is a cached record, or a placeholder (fill != 0) for a load
// in flight.
type nearEntry struct {
	fill    uint64
	data    []byte
	version int64
	expiry  time.Time
	loaded  time.Time
}

// NewNearCache returns a near cache in front of s. connect opens the
// dedicated connection the cache listens on (for example
// func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) });
// it is called again after the connection is lost. The cache starts
// listening in the background and reads through until it listens; Close
// stops it. The trigger must exist: run [NearCache.CreateTable] (or
// [Store.CreateNotifyTrigger]) once.
func NewNearCache(s *Store, connect func(context.Context) (*pgx.Conn, error), opts *NearCacheOptions) (*NearCache, error) {
	if s == nil || connect == nil {
		return nil, fmt.Errorf("pgxstore: nil Store or connect: %w", ErrInvalidOptions)
	}
	var o NearCacheOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MaxAge < 0:
		return nil, fmt.Errorf("pgxstore: negative MaxAge %v: %w", o.MaxAge, ErrInvalidOptions)
	case o.MaxAge == 0:
		o.MaxAge = DefaultNearCacheMaxAge
	}
	switch {
	case o.MaxEntries < 0:
		return nil, fmt.Errorf("pgxstore: negative MaxEntries %d: %w", o.MaxEntries, ErrInvalidOptions)
	case o.MaxEntries == 0:
		o.MaxEntries = DefaultNearCacheEntries
	}
	switch {
	case o.Heartbeat < 0:
		return nil, fmt.Errorf("pgxstore: negative Heartbeat %v: %w", o.Heartbeat, ErrInvalidOptions)
	case o.Heartbeat == 0:
		o.Heartbeat = min(DefaultNearCacheHeartbeat, o.MaxAge/2)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &NearCache{
		Store:     s,
		connect:   connect,
		maxAge:    o.MaxAge,
		heartbeat: o.Heartbeat,
		perShard:  max(1, o.MaxEntries/nearShards),
		log:       o.Logger.With("store", "pgxstore", "table", s.table),
		cancel:    cancel,
		done:      make(chan struct{}),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*nearEntry)
	}
	go c.run(ctx)
	return c, nil
}

// Close stops listening and empties the cache; later Loads read through.
// It waits for the listener to end and closes its connection. It is safe
// to call more than once.
func (c *NearCache) Close() error {
	c.once.Do(func() {
		c.cancel()
		<-c.done
		c.flush()
	})
	return nil
}

// Listening reports whether the cache is listening for notifications right
// now, and so serving loads from the process. It is false until the first
// LISTEN succeeds, while the connection is lost, and after Close: useful
// for a health check or a metric.
func (c *NearCache) Listening() bool { return c.live.Load() }

// CreateTable creates the table, its indexes and the notification trigger
// if they do not exist (see [Store.CreateTable]).
func (c *NearCache) CreateTable(ctx context.Context) error {
	if err := c.Store.CreateTable(ctx); err != nil {
		return err
	}
	return c.CreateNotifyTrigger(ctx)
}

// CreateNotifyTrigger installs (or replaces) the trigger that a [NearCache]
// relies on: after every UPDATE that changes a row's version or expiry, and
// every DELETE, it runs pg_notify('<table>_changed', <hex id>). It is
// idempotent and safe to run from many processes at once. Every writer of
// the table pays for it (one pg_notify per changed row), cache or not.
func (s *Store) CreateNotifyTrigger(ctx context.Context) error {
	q := "DO $sessionkit$ BEGIN PERFORM pg_advisory_xact_lock(" + ddlLockKey + "); "
	for _, st := range s.notifyDDL {
		q += "EXECUTE " + quoteLiteral(st) + "; "
	}
	q += "END $sessionkit$"
	if _, err := s.db.Exec(ctx, q); err != nil {
		return fmt.Errorf("pgxstore: create notify trigger: %w", err)
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings).
func quoteLiteral(s string) string {
	return "'" + string(bytes.ReplaceAll([]byte(s), []byte("'"), []byte("''"))) + "'"
}

func (c *NearCache) shard(id string) *nearShard {
	// Ids are hex SHA-256: their first two characters are uniform.
	return &c.shards[(int(id[0])*31+int(id[1]))%nearShards]
}

// Load returns the record from the process when a copy loaded less than
// MaxAge ago is there and no notification has dropped it; otherwise from
// PostgreSQL, keeping a copy while the notification connection is up.
func (c *NearCache) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if len(id) != 64 || !c.live.Load() {
		return c.Store.Load(ctx, id, now)
	}
	sh := c.shard(id)
	sh.mu.Lock()
	if e := sh.m[id]; e != nil && e.fill == 0 && e.expiry.After(now) && time.Since(e.loaded) < c.maxAge {
		data := bytes.Clone(e.data)
		version, expiry := e.version, e.expiry
		sh.mu.Unlock()
		return data, version, expiry, true, nil
	}
	token := c.fill.Add(1)
	c.put(sh, id, &nearEntry{fill: token})
	sh.mu.Unlock()

	data, version, expiry, found, err := c.Store.Load(ctx, id, now)

	sh.mu.Lock()
	if e := sh.m[id]; e != nil && e.fill == token {
		if err == nil && found {
			sh.m[id] = &nearEntry{data: bytes.Clone(data), version: version, expiry: expiry, loaded: time.Now()}
		} else {
			delete(sh.m, id)
		}
	}
	sh.mu.Unlock()
	return data, version, expiry, found, err
}

// put stores e under id, dropping an arbitrary entry when the shard is
// full. sh.mu is held.
func (c *NearCache) put(sh *nearShard, id string, e *nearEntry) {
	if _, ok := sh.m[id]; !ok && len(sh.m) >= c.perShard {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[id] = e
}

// drop removes the cached copy of id (or a placeholder for it).
func (c *NearCache) drop(id string) {
	if len(id) != 64 {
		return
	}
	sh := c.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

// flush empties the cache, placeholders included.
func (c *NearCache) flush() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

// Create is [Store.Create]; it drops any copy of the id (an expired record
// that the new one replaces).
func (c *NearCache) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	defer c.drop(id)
	return c.Store.Create(ctx, id, data, expiry, owner, now)
}

// Update is [Store.Update]; the process's copy is dropped when it returns.
func (c *NearCache) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	defer c.drop(id)
	return c.Store.Update(ctx, id, version, data, expiry, owner, now)
}

// Touch is [Store.Touch]; the process's copy is dropped when it returns.
func (c *NearCache) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	defer c.drop(id)
	return c.Store.Touch(ctx, id, expiry, now)
}

// Delete is [Store.Delete]; the process's copy is dropped when it returns.
func (c *NearCache) Delete(ctx context.Context, id string) error {
	defer c.drop(id)
	return c.Store.Delete(ctx, id)
}

// DeleteExpired is [Store.DeleteExpired]; afterwards the process drops its
// copies that are expired at now (other instances learn of the deleted rows
// through the trigger).
func (c *NearCache) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := c.Store.DeleteExpired(ctx, now)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if e.fill == 0 && !e.expiry.After(now) {
				delete(sh.m, id)
			}
		}
		sh.mu.Unlock()
	}
	return n, err
}

// DeleteOwner is [Store.DeleteOwner] in one statement that also returns the
// ids it removed, so the process drops their copies at once.
func (c *NearCache) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if owner == "" {
		return 0, nil
	}
	n := 0
	// Retried (from the start) when a row moved to another partition
	// under the statement, in the partitioned layout.
	err := c.retry(ctx, 0, func() error {
		n = 0
		rows, err := c.db.Query(ctx, c.qDeleteOwnerIDs, c.args(owner, now.UnixMilli())...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				key  []byte
				live bool
			)
			if err := rows.Scan(&key, &live); err != nil {
				return err
			}
			c.drop(encodeID(key))
			if live {
				n++
			}
		}
		return rows.Err()
	})
	if err != nil {
		return n, fmt.Errorf("pgxstore: delete owner: %w", err)
	}
	return n, nil
}

// run keeps a listening connection until ctx ends.
func (c *NearCache) run(ctx context.Context) {
	defer close(c.done)
	const minBackoff, maxBackoff = 50 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	lost := false // the last connection was lost: log when listening again
	failing := false
	for ctx.Err() == nil {
		conn, err := c.listen(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				c.log.Warn("pgxstore: near cache cannot listen for invalidations; reading through to PostgreSQL until it can", "err", err)
				failing = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff, failing = minBackoff, false
		c.flush()
		c.live.Store(true)
		if lost {
			c.log.Info("pgxstore: near cache listening again; serving loads from the process")
		}
		err = c.receive(ctx, conn)
		c.live.Store(false)
		c.flush()
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		lost = true
		c.log.Warn("pgxstore: near cache lost its notification connection; cache flushed, reading through to PostgreSQL until it reconnects", "err", err)
	}
}

// listen connects, checks the trigger and runs LISTEN.
func (c *NearCache) listen(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := c.connect(cctx)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(cctx, c.qTriggerExists, c.table, c.triggerName).Scan(&ok); err != nil {
		_ = conn.Close(cctx)
		return nil, err
	}
	if !ok {
		_ = conn.Close(cctx)
		c.log.Error("pgxstore: near cache: the notification trigger is missing; run NearCache.CreateTable or Store.CreateNotifyTrigger", "trigger", c.triggerName)
		return nil, errors.New("pgxstore: notification trigger " + c.triggerName + " missing")
	}
	if _, err := conn.Exec(cctx, `LISTEN "`+c.channel+`"`); err != nil {
		_ = conn.Close(cctx)
		return nil, err
	}
	return conn, nil
}

// receive drops the records named by notifications until the connection
// fails or ctx ends. It waits with a read deadline on the socket rather
// than a context: pgconn watches a cancellable context with a goroutine
// and a timer per wait, that is per notification. Close ends the wait by
// moving the deadline to now.
func (c *NearCache) receive(ctx context.Context, conn *pgx.Conn) error {
	nc := conn.PgConn().Conn()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		if err := nc.SetReadDeadline(time.Now().Add(c.heartbeat)); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil { // after the deadline: AfterFunc may have run before it
			return err
		}
		n, err := conn.WaitForNotification(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || conn.IsClosed() {
				return err
			}
			// Silent for a heartbeat: make sure the connection still works.
			if err := nc.SetReadDeadline(time.Time{}); err != nil {
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, c.heartbeat)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		if n.Payload == "" || n.Payload == "*" {
			c.flush()
			continue
		}
		c.drop(n.Payload)
	}
}
