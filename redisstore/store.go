// Package redisstore is a [sessions.Store] backed by Redis: a single server,
// a Sentinel-managed primary (redis.NewFailoverClient) or a Redis Cluster.
// It takes any [redis.UniversalClient] from github.com/redis/go-redis/v9 and
// needs Redis 7.0 or later.
//
// # Operations
//
// Every operation on a session without an owner is one round trip and
// atomic: Load is one GET, Create one SET PXAT NX, Update a compare-and-set
// Lua script on the version, Touch a Lua script that only moves the expiry
// later (and never creates), and Delete one DEL. A write whose expiry is at or
// before now deletes the record.
//
// # Records
//
// A session is one Redis string under "<Prefix>id:<id>" holding a 29-byte
// header (format byte 0x01, version, expiry in Unix milliseconds,
// owner-index deadline, owner length; integers big-endian), then the owner,
// then the data. The store compares the embedded expiry with the caller's
// now on every read; the Redis TTL (the expiry plus [Options.TTLGrace]) is
// only garbage collection and never ends a session early. Expiries have
// millisecond precision.
//
// # Owner index
//
// The store implements [sessions.OwnerIndex]. Each owner has a hash under
// "<Prefix>owner:{<tag>}", where tag is the first 32 hex digits of the
// SHA-256 of the owner, mapping session ids to a write token (the caller's
// now and random bytes). The hash tag keeps one owner's index in one cluster
// slot; the sessions themselves spread over all slots, and no command or
// script ever touches two keys, so nothing can fail with CROSSSLOT.
//
// The index is written in a separate call before the session, so a session
// is never owned without being indexed, and it may hold stale members:
// ListOwner checks every member against its session's embedded owner and
// expiry, and DeleteOwner deletes a session only if it still names the
// owner. A member is pruned only when its session is gone or owned by
// someone else, the member is older than [Options.Timeout] plus one minute
// (it may belong to a write still in flight), and its token is unchanged
// (so a concurrent re-add survives). Nothing is pruned by expiry, which
// Touch can move. ListOwner and DeleteOwner prune; so does adding a member when the
// index reaches 32, 64, 128, ... members.
//
// The index key itself expires well after the latest expiry of its
// sessions: each record remembers how far its index is known to live, and an
// Update or Touch that moves the expiry past that extends the index first
// (to twice the remaining lifetime): the script declines, the index is
// extended, the script runs again. With a sliding expiry those two extra
// round trips happen about once per idle timeout; every other operation on
// an owned session stays one round trip, and Create with an owner is two.
//
// # Replication
//
// Redis replication is asynchronous: after a failover the new primary may
// lack writes the old one acknowledged, including a DEL that logged a user
// out, which then comes back. [Options.MinReplicas] makes the writes that
// end a session wait (WAIT) for replicas and fail when too few
// acknowledged them; see the README for other mitigations.
package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessions"
)

// Defaults for [Options].
const (
	DefaultPrefix   = "session:"
	DefaultTimeout  = 3 * time.Second
	DefaultTTLGrace = time.Minute
)

// maxPrefixLen bounds [Options.Prefix].
const maxPrefixLen = 256

// Errors returned by [New].
var (
	ErrNilClient     = errors.New("redisstore: nil client")
	ErrInvalidOption = errors.New("redisstore: invalid option")
)

// Options configures a [Store]. The zero value (or a nil *Options) gives the
// documented defaults.
type Options struct {
	// Prefix starts every key the store writes, so that several
	// applications (or tests) can share one Redis. The default is
	// "session:". It may hold at most 256 bytes and no '{' or '}': hash
	// tags are the store's own.
	Prefix string

	// Timeout bounds each Store method call, all its round trips included,
	// on top of the caller's context: a call returns an error at the
	// earlier of the two deadlines. The default is 3 seconds; negative is
	// an error. Clients created with ContextTimeoutEnabled honour it at the
	// socket; for others the store stops waiting at the deadline while
	// go-redis finishes the command in the background (bounded by its
	// ReadTimeout).
	Timeout time.Duration

	// TTLGrace is how long Redis keeps a record past its expiry before
	// deleting it. Expiry is enforced on the application's clock; the grace
	// keeps a Redis clock running ahead from deleting live records. The
	// default is one minute; negative is an error.
	TTLGrace time.Duration

	// MinReplicas, when positive, makes every write that ends a session
	// (Delete, DeleteOwner, and the Update with an expiry at or before now
	// that retires a renewed session's old record) wait until at least
	// that many replicas of the key's primary acknowledged it (Redis WAIT,
	// sent in one pipeline with the write, on the same connection). When
	// fewer acknowledge within ReplicaTimeout the call returns an error
	// wrapping [ErrNotReplicated], so the logout is reported as failed
	// instead of succeeding and coming back after a failover. The deletion
	// itself is not undone. Zero (the default) waits for no replica; negative is an error. It needs a
	// *redis.Client (single server or Sentinel failover client) or a
	// *redis.ClusterClient; with a Cluster, a key moving to another node
	// during the call makes it fail instead of following the redirection.
	MinReplicas int

	// ReplicaTimeout bounds each wait for MinReplicas. The default is
	// half of Timeout; it must be less than Timeout, and negative is an
	// error. Only used when MinReplicas is positive.
	ReplicaTimeout time.Duration
}

// ErrNotReplicated is wrapped by the error of a session-ending write that
// fewer than [Options.MinReplicas] replicas acknowledged in time.
var ErrNotReplicated = errors.New("redisstore: write not acknowledged by enough replicas")

// Store is a [sessions.Store] and [sessions.OwnerIndex] on Redis. Create it
// with [New]; the zero value is not usable. A Store is safe for concurrent use
// and holds no goroutines or state of its own besides the client.
type Store struct {
	c        redis.UniversalClient
	prefix   string
	timeout  time.Duration
	grace    int64 // ms
	ctxAware bool

	minReplicas    int
	replicaTimeout time.Duration
}

var (
	_ sessions.Store      = (*Store)(nil)
	_ sessions.OwnerIndex = (*Store)(nil)
)

// New returns a Store using c, which the caller keeps ownership of (the Store
// never closes it). opts may be nil.
func New(c redis.UniversalClient, opts *Options) (*Store, error) {
	if c == nil {
		return nil, ErrNilClient
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if len(o.Prefix) > maxPrefixLen {
		return nil, fmt.Errorf("prefix longer than %d bytes: %w", maxPrefixLen, ErrInvalidOption)
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("prefix %q contains '{' or '}': %w", o.Prefix, ErrInvalidOption)
	}
	switch {
	case o.Timeout < 0:
		return nil, fmt.Errorf("negative Timeout %v: %w", o.Timeout, ErrInvalidOption)
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.TTLGrace < 0:
		return nil, fmt.Errorf("negative TTLGrace %v: %w", o.TTLGrace, ErrInvalidOption)
	case o.TTLGrace == 0:
		o.TTLGrace = DefaultTTLGrace
	}
	switch {
	case o.MinReplicas < 0:
		return nil, fmt.Errorf("negative MinReplicas %d: %w", o.MinReplicas, ErrInvalidOption)
	case o.ReplicaTimeout < 0:
		return nil, fmt.Errorf("negative ReplicaTimeout %v: %w", o.ReplicaTimeout, ErrInvalidOption)
	case o.ReplicaTimeout == 0:
		o.ReplicaTimeout = o.Timeout / 2
	}
	if o.MinReplicas > 0 {
		if o.ReplicaTimeout >= o.Timeout {
			return nil, fmt.Errorf("ReplicaTimeout %v not less than Timeout %v: %w", o.ReplicaTimeout, o.Timeout, ErrInvalidOption)
		}
		if o.ReplicaTimeout < time.Millisecond {
			return nil, fmt.Errorf("ReplicaTimeout %v under one millisecond: %w", o.ReplicaTimeout, ErrInvalidOption)
		}
		switch c.(type) {
		case *redis.Client, *redis.ClusterClient:
		default:
			return nil, fmt.Errorf("MinReplicas needs a *redis.Client or *redis.ClusterClient, not %T: %w", c, ErrInvalidOption)
		}
	}
	return &Store{
		c:              c,
		prefix:         o.Prefix,
		timeout:        o.Timeout,
		grace:          o.TTLGrace.Milliseconds(),
		ctxAware:       contextAware(c),
		minReplicas:    o.MinReplicas,
		replicaTimeout: o.ReplicaTimeout,
	}, nil
}

// primaryFor returns the client whose pipelines reach key's primary on one
// connection: the store's own client, or on a Cluster the client of the
// key's master.
func (s *Store) primaryFor(ctx context.Context, key string) (redis.UniversalClient, error) {
	if c, ok := s.c.(*redis.ClusterClient); ok {
		return c.MasterForKey(ctx, key)
	}
	return s.c, nil
}

// replicated checks the reply of a WAIT sent after a session-ending write.
func (s *Store) replicated(w *redis.IntCmd) error {
	n, err := w.Result()
	if err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}
	if n < int64(s.minReplicas) {
		return fmt.Errorf("%w (%d of %d within %v)", ErrNotReplicated, n, s.minReplicas, s.replicaTimeout)
	}
	return nil
}

// contextAware reports whether go-redis applies context deadlines to socket
// I/O for c.
func contextAware(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

func (s *Store) sessionKey(id string) string { return s.prefix + "id:" + id }

func (s *Store) ownerKey(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return s.prefix + "owner:{" + hex.EncodeToString(sum[:16]) + "}"
}

// pxat is the Redis expiry (garbage collection) for a record expiring at ms.
func (s *Store) pxat(ms int64) int64 { return max(ms+s.grace, 1) }

// indexHorizon is how far an owner index written at now for a record
// expiring at exp is known to live (before the grace): twice the remaining
// lifetime, so that a sliding expiry extends it about once per lifetime.
func indexHorizon(exp, now int64) int64 {
	return clampMillis(exp + max(exp-now, 0))
}

func ms(t time.Time) int64 { return clampMillis(t.UnixMilli()) }

// bound applies the store's timeout to ctx, unless ctx already ends no
// later (as the sessions Manager's store-call contexts do with the default
// timeouts): a second deadline would cost a timer and change nothing.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// wrap prefixes a failure of op, adding ctx's error when the context ended
// (go-redis reports an expired deadline as a network timeout).
func wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
		// The socket deadline (set from ctx) fired before ctx's own timer.
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redisstore: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// detached runs f in its own goroutine and returns when it does or when ctx
// ends, whichever is first: for clients that ignore context deadlines at the
// socket. (Context-aware clients call the operation directly, with no
// closure or goroutine on the hot path.)
func detached[T any](ctx context.Context, op string, f func(ctx context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, wrap(ctx, op, r.err)
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("redisstore: %s: %w", op, ctx.Err())
	}
}

// Create implements [sessions.Store]. It is one SET PXAT NX (plus, with an
// owner, one call to the owner index first). Only when the key exists does a
// second script replace a record that is expired at now.
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if len(owner) > maxOwnerSize {
		return false, fmt.Errorf("redisstore: create: owner longer than %d bytes: %w", maxOwnerSize, ErrInvalidOption)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if !s.ctxAware {
		return detached(ctx, "create", func(ctx context.Context) (bool, error) {
			return s.create(ctx, id, data, expiry, owner, now)
		})
	}
	created, err := s.create(ctx, id, data, expiry, owner, now)
	return created, wrap(ctx, "create", err)
}

func (s *Store) create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	key := s.sessionKey(id)
	exp, nowMs := ms(expiry), ms(now)
	var until int64
	if owner != "" && exp > nowMs {
		until = indexHorizon(exp, nowMs)
		if err := s.indexAdd(ctx, owner, id, until, nowMs); err != nil {
			return false, err
		}
	}
	val := encodeRecord(1, exp, until, owner, data)
	if exp > nowMs {
		cmd := redis.NewStatusCmd(ctx, "set", key, val, "pxat", s.pxat(exp), "nx")
		err := s.c.Process(ctx, cmd)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, redis.Nil) {
			return false, err
		}
	}
	expired := "0"
	if exp <= nowMs {
		expired = "1"
	}
	n, err := createScript.Run(ctx, s.c, []string{key}, nowMs, val, s.pxat(exp), expired).Int64()
	return n == 1, err
}

// loaded is Load's result.
type loaded struct {
	data    []byte
	version int64
	expiry  time.Time
	found   bool
}

// Load implements [sessions.Store] with one GET.
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r loaded
	var err error
	if s.ctxAware {
		r, err = s.load(ctx, id, now)
		err = wrap(ctx, "load", err)
	} else {
		r, err = detached(ctx, "load", func(ctx context.Context) (loaded, error) { return s.load(ctx, id, now) })
	}
	return r.data, r.version, r.expiry, r.found, err
}

func (s *Store) load(ctx context.Context, id string, now time.Time) (loaded, error) {
	b, err := s.c.Get(ctx, s.sessionKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return loaded{}, nil
	}
	if err != nil {
		return loaded{}, err
	}
	rec, err := decodeRecord(b, true)
	if err != nil {
		return loaded{}, err
	}
	if rec.Expiry <= ms(now) {
		return loaded{}, nil
	}
	return loaded{rec.Data, rec.Version, time.UnixMilli(rec.Expiry), true}, nil
}

// updated is Update's result.
type updated struct{ updated, found bool }

// Update implements [sessions.Store] as one compare-and-set script. With an
// owner, the owner index is extended first when the owner changes or the
// expiry moves past the index's known lifetime (see the package doc).
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if len(owner) > maxOwnerSize {
		return false, false, fmt.Errorf("redisstore: update: owner longer than %d bytes: %w", maxOwnerSize, ErrInvalidOption)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r updated
	var err error
	if s.ctxAware {
		r, err = s.update(ctx, id, version, data, expiry, owner, now)
		err = wrap(ctx, "update", err)
	} else {
		r, err = detached(ctx, "update", func(ctx context.Context) (updated, error) {
			return s.update(ctx, id, version, data, expiry, owner, now)
		})
	}
	return r.updated, r.found, err
}

func (s *Store) update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (updated, error) {
	key := s.sessionKey(id)
	exp, nowMs := ms(expiry), ms(now)
	want := be64(version)
	val := encodeRecord(version+1, exp, 0, owner, data)
	permit := "0"
	for attempt := 0; ; attempt++ {
		var n int64
		var err error
		if s.minReplicas > 0 && exp <= nowMs {
			// The retirement of a renewed session's old record (or any
			// write that ends a session) waits for the replicas.
			var res []int64
			res, err = s.runPipelined(ctx, updateScript, []string{id}, nowMs, want, val, exp, s.pxat(exp), owner, permit, s.grace)
			if err == nil {
				n = res[0]
			}
		} else {
			n, err = updateScript.Run(ctx, s.c, []string{key}, nowMs, want, val, exp, s.pxat(exp), owner, permit, s.grace).Int64()
		}
		if err != nil {
			return updated{}, err
		}
		switch n {
		case 0:
			return updated{false, false}, nil
		case 1:
			return updated{false, true}, nil
		case 2:
			return updated{true, true}, nil
		}
		if attempt > 0 {
			return updated{}, errors.New("unexpected reply from update script")
		}
		until := indexHorizon(exp, nowMs)
		if err := s.indexAdd(ctx, owner, id, until, nowMs); err != nil {
			return updated{}, err
		}
		val = encodeRecord(version+1, exp, until, owner, data)
		permit = "1"
	}
}

// maxTouchAttempts bounds Touch's retries when the owner of a record keeps
// changing under it.
const maxTouchAttempts = 3

// Touch implements [sessions.Store] as one script that only moves the
// expiry later: it reads the record's header, checks it is live at now,
// rewrites the embedded expiry and runs PEXPIREAT ... GT. It never creates
// a record.
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if !s.ctxAware {
		return detached(ctx, "touch", func(ctx context.Context) (bool, error) { return s.touch(ctx, id, expiry, now) })
	}
	found, err := s.touch(ctx, id, expiry, now)
	return found, wrap(ctx, "touch", err)
}

func (s *Store) touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	key := s.sessionKey(id)
	exp, nowMs := ms(expiry), ms(now)
	args := []any{nowMs, exp, s.pxat(exp)}
	for range maxTouchAttempts {
		v, err := touchScript.Run(ctx, s.c, []string{key}, args...).Result()
		if err != nil {
			return false, err
		}
		switch v := v.(type) {
		case int64:
			return v == 1, nil
		case string:
			until := indexHorizon(exp, nowMs)
			if err := s.indexAdd(ctx, v, id, until, nowMs); err != nil {
				return false, err
			}
			args = append(args[:3], v, until)
		default:
			return false, fmt.Errorf("unexpected reply %T from touch script", v)
		}
	}
	return false, errors.New("owner kept changing during touch")
}

// Delete implements [sessions.Store] with one DEL. The owner index keeps a
// stale member until the next ListOwner or DeleteOwner prunes it.
func (s *Store) Delete(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if !s.ctxAware {
		_, err := detached(ctx, "delete", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, s.del(ctx, id)
		})
		return err
	}
	return wrap(ctx, "delete", s.del(ctx, id))
}

func (s *Store) del(ctx context.Context, id string) error {
	key := s.sessionKey(id)
	if s.minReplicas == 0 {
		return s.c.Del(ctx, key).Err()
	}
	node, err := s.primaryFor(ctx, key)
	if err != nil {
		return err
	}
	var w *redis.IntCmd
	if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		w = s.waitCmd(ctx, p)
		return nil
	}); err != nil {
		return err
	}
	return s.replicated(w)
}

// waitCmd queues a WAIT for the replicas on p.
func (s *Store) waitCmd(ctx context.Context, p redis.Pipeliner) *redis.IntCmd {
	w := redis.NewIntCmd(ctx, "wait", s.minReplicas, s.replicaTimeout.Milliseconds())
	_ = p.Process(ctx, w)
	return w
}
