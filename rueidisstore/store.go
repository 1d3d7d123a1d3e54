// Package rueidisstore is a [sessions.Store] on Redis with a coherent
// near-cache: loads are served from process memory until Redis says the
// record changed. It takes a [rueidis.Client] (github.com/redis/rueidis) on
// a single server, a Sentinel-managed primary or a Redis Cluster, and needs
// Redis 7.0 or later.
//
// # Near-cache
//
// Load is a GET through rueidis's server-assisted client-side caching
// (DoCache): Redis remembers which keys each connection read (CLIENT
// TRACKING) and pushes an invalidation over RESP3 when anyone modifies one,
// from any process, including this store's scripts and a redisstore.Store
// sharing the database. Until then the copy in memory is served with no
// round trip. [Options.MaxCacheAge] is the hard upper bound on the age of a
// copy, for the case that an invalidation is lost; rueidis also drops a
// connection's cache when the connection breaks.
//
// Invalidations are asynchronous: another process sees a destroy, renewal
// or logout-everywhere as soon as the invalidation reaches it (the README
// gives measured delays), never later than MaxCacheAge. This process sees
// its own writes at once: after a write returns, a Load on the same Store
// does not serve a copy older than the write (the store remembers what it
// wrote until the cache has caught up, and reads through meanwhile).
//
// # Writes
//
// Writes never use the cache: Create is SET PXAT NX, Update a
// compare-and-set Lua script on the version, Touch a script that only moves
// the expiry later, Delete a DEL. A Load served from a copy that is being
// invalidated can make the Manager write with an old version; the script
// then reports a conflict (or "gone" for a deleted record), so no update is
// lost and nothing deleted comes back.
//
// # Records and sharing a database
//
// Keys, record layout, owner index and scripts are those of
// github.com/sessionkit/sessions/redisstore (format 1): a redisstore.Store
// and a rueidisstore.Store with the same Prefix and TTLGrace may serve the
// same sessions. See redisstore's documentation for the layout and the
// owner index.
package rueidisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/sessionkit/sessions"
)

// Defaults for [Options].
const (
	DefaultPrefix      = "session:"
	DefaultTimeout     = 3 * time.Second
	DefaultTTLGrace    = time.Minute
	DefaultMaxCacheAge = 10 * time.Second
)

const maxPrefixLen = 256

// Errors returned by [New].
var (
	ErrNilClient     = errors.New("rueidisstore: nil client")
	ErrInvalidOption = errors.New("rueidisstore: invalid option")
)

// Options configures a [Store]. The zero value (or a nil *Options) gives the
// documented defaults, with the near-cache on.
type Options struct {
	// Prefix starts every key the store writes. The default is "session:"
	// (redisstore's). At most 256 bytes, no '{' or '}'.
	Prefix string

	// Timeout bounds each Store method call, all its round trips
	// included, on top of the caller's context. The default is 3 seconds;
	// negative is an error.
	Timeout time.Duration

	// TTLGrace is how long Redis keeps a record past its expiry (garbage
	// collection; the expiry itself is enforced on the application's
	// clock). The default is one minute; negative is an error.
	TTLGrace time.Duration

	// MaxCacheAge is the hard upper bound on how long a copy of a record
	// may be served from memory, in case an invalidation is lost. Copies
	// are normally dropped much earlier, when Redis invalidates them. The
	// default is 10 seconds; negative is an error. To read through on every
	// Load, create the client with rueidis.ClientOption.DisableCache.
	MaxCacheAge time.Duration
}

// Store is a [sessions.Store] and [sessions.OwnerIndex] on Redis with a
// coherent near-cache. Create it with [New]; the zero value is not usable.
// A Store is safe for concurrent use and starts no goroutines (rueidis runs
// the client's own).
type Store struct {
	c       rueidis.Client
	prefix  string
	timeout time.Duration
	grace   int64 // ms
	maxAge  time.Duration
	fences  fences
}

var (
	_ sessions.Store      = (*Store)(nil)
	_ sessions.OwnerIndex = (*Store)(nil)
)

// New returns a Store on c, which the caller keeps ownership of (the Store
// never closes it). opts may be nil. For the near-cache, c must speak
// RESP3 with client-side caching enabled (rueidis's default on Redis 6+);
// otherwise every Load reads through, which is correct but slower.
func New(c rueidis.Client, opts *Options) (*Store, error) {
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
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &o.Timeout, DefaultTimeout},
		{"TTLGrace", &o.TTLGrace, DefaultTTLGrace},
		{"MaxCacheAge", &o.MaxCacheAge, DefaultMaxCacheAge},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("negative %s %v: %w", d.name, *d.v, ErrInvalidOption)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	s := &Store{
		c:       c,
		prefix:  o.Prefix,
		timeout: o.Timeout,
		grace:   o.TTLGrace.Milliseconds(),
		maxAge:  o.MaxCacheAge,
	}
	s.fences.init(2 * o.MaxCacheAge)
	return s, nil
}

func (s *Store) sessionKey(id string) string { return s.prefix + "id:" + id }

func (s *Store) ownerKey(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return s.prefix + "owner:{" + hex.EncodeToString(sum[:16]) + "}"
}

func (s *Store) pxat(ms int64) int64 { return max(ms+s.grace, 1) }

func indexHorizon(exp, now int64) int64 { return clampMillis(exp + max(exp-now, 0)) }

func ms(t time.Time) int64 { return clampMillis(t.UnixMilli()) }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// wrap prefixes a failure of op and adds ctx's error when the context ended.
func wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("rueidisstore: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("rueidisstore: %s: %w", op, err)
}

// Create implements [sessions.Store]: one SET PXAT NX (plus, with an owner,
// one call to the owner index first); only when the key exists does a
// script replace a record that is expired at now.
func (s *Store) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	if len(owner) > maxOwnerSize {
		return false, fmt.Errorf("rueidisstore: create: owner longer than %d bytes: %w", maxOwnerSize, ErrInvalidOption)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	created, err := s.create(ctx, id, data, expiry, owner, now)
	if err != nil {
		s.fences.set(id, fence{unknown: true})
	} else if created {
		exp := ms(expiry)
		if exp > ms(now) {
			s.fences.set(id, fence{version: 1, expiry: exp})
		} else {
			s.fences.set(id, fence{gone: true})
		}
	}
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
	val := rueidis.BinaryString(encode(1, exp, until, owner, data))
	if exp > nowMs {
		err := s.c.Do(ctx, s.c.B().Set().Key(key).Value(val).Nx().PxatMillisecondsTimestamp(s.pxat(exp)).Build()).Error()
		if err == nil {
			return true, nil
		}
		if !rueidis.IsRedisNil(err) {
			return false, err
		}
	}
	expired := "0"
	if exp <= nowMs {
		expired = "1"
	}
	n, err := createScript.Exec(ctx, s.c, []string{key}, []string{itoa(nowMs), val, itoa(s.pxat(exp)), expired}).AsInt64()
	return n == 1, err
}

// Load implements [sessions.Store]: a GET served from the near-cache when
// it holds the key, else from Redis (and then cached, tracked).
func (s *Store) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	h, found, err := s.load(ctx, id, ms(now))
	if err != nil || !found {
		return nil, 0, time.Time{}, false, wrap(ctx, "load", err)
	}
	return h.Data, h.Version, time.UnixMilli(h.Expiry), true, nil
}

func (s *Store) load(ctx context.Context, id string, now int64) (header, bool, error) {
	key := s.sessionKey(id)
	f, fenced := s.fences.get(id)
	v, err := s.c.DoCache(ctx, s.c.B().Get().Key(key).Cache(), s.maxAge).ToString()
	h, found, err := parse(v, err, now)
	if err != nil {
		return header{}, false, err
	}
	if fenced {
		if !f.satisfiedBy(h, found) {
			// The copy predates this store's own write: read through.
			v, err = s.c.Do(ctx, s.c.B().Get().Key(key).Build()).ToString()
			return parse(v, err, now)
		}
		s.fences.clear(id, f)
	}
	return h, found, nil
}

// parse decodes a GET reply. The reply may be the near-cache's own copy,
// shared by every caller: the header is decoded in place and only the data
// is copied, into a slice the caller owns.
func parse(v string, err error, now int64) (header, bool, error) {
	if rueidis.IsRedisNil(err) {
		return header{}, false, nil
	}
	if err != nil {
		return header{}, false, err
	}
	h, err := decode(unsafe.Slice(unsafe.StringData(v), len(v)), true)
	if err != nil {
		return header{}, false, err
	}
	if h.Expiry <= now {
		return header{}, false, nil
	}
	h.Data = append([]byte{}, h.Data...)
	h.Owner = nil
	return h, true, nil
}

// Update implements [sessions.Store] as one compare-and-set script. With an
// owner, the owner index is extended first when needed (see redisstore).
func (s *Store) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	if len(owner) > maxOwnerSize {
		return false, false, fmt.Errorf("rueidisstore: update: owner longer than %d bytes: %w", maxOwnerSize, ErrInvalidOption)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	up, found, err := s.update(ctx, id, version, data, expiry, owner, now)
	if err != nil {
		s.fences.set(id, fence{unknown: true})
	} else if up {
		exp := ms(expiry)
		if exp > ms(now) {
			s.fences.set(id, fence{version: version + 1, expiry: exp})
		} else {
			s.fences.set(id, fence{gone: true})
		}
	}
	return up, found, wrap(ctx, "update", err)
}

func (s *Store) update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	key := s.sessionKey(id)
	exp, nowMs := ms(expiry), ms(now)
	args := []string{itoa(nowMs), be64(version), rueidis.BinaryString(encode(version+1, exp, 0, owner, data)),
		itoa(exp), itoa(s.pxat(exp)), owner, "0", itoa(s.grace)}
	for attempt := 0; ; attempt++ {
		n, err := updateScript.Exec(ctx, s.c, []string{key}, args).AsInt64()
		if err != nil {
			return false, false, err
		}
		switch n {
		case 0:
			return false, false, nil
		case 1:
			return false, true, nil
		case 2:
			return true, true, nil
		}
		if attempt > 0 {
			return false, false, errors.New("unexpected reply from update script")
		}
		until := indexHorizon(exp, nowMs)
		if err := s.indexAdd(ctx, owner, id, until, nowMs); err != nil {
			return false, false, err
		}
		args[2] = rueidis.BinaryString(encode(version+1, exp, until, owner, data))
		args[6] = "1"
	}
}

const maxTouchAttempts = 3

// Touch implements [sessions.Store] as one script that only moves the
// expiry later and never creates a record.
func (s *Store) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	found, err := s.touch(ctx, id, expiry, now)
	if err != nil {
		s.fences.set(id, fence{unknown: true})
	} else if found {
		s.fences.set(id, fence{touch: true, expiry: ms(expiry)})
	}
	return found, wrap(ctx, "touch", err)
}

func (s *Store) touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	key := s.sessionKey(id)
	exp, nowMs := ms(expiry), ms(now)
	args := []string{itoa(nowMs), itoa(exp), itoa(s.pxat(exp))}
	for range maxTouchAttempts {
		m, err := touchScript.Exec(ctx, s.c, []string{key}, args).ToMessage()
		if err != nil {
			return false, err
		}
		if m.IsInt64() {
			n, _ := m.AsInt64()
			return n == 1, nil
		}
		owner, err := m.ToString()
		if err != nil {
			return false, fmt.Errorf("unexpected reply from touch script: %w", err)
		}
		until := indexHorizon(exp, nowMs)
		if err := s.indexAdd(ctx, owner, id, until, nowMs); err != nil {
			return false, err
		}
		args = append(args[:3], owner, itoa(until))
	}
	return false, errors.New("owner kept changing during touch")
}

// Delete implements [sessions.Store] with one DEL.
func (s *Store) Delete(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.c.Do(ctx, s.c.B().Del().Key(s.sessionKey(id)).Build()).Error()
	if err != nil {
		s.fences.set(id, fence{unknown: true})
	} else {
		s.fences.set(id, fence{gone: true})
	}
	return wrap(ctx, "delete", err)
}
