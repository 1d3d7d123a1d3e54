package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The owner index is a Redis hash per owner, field = session id, value =
// "<added>.<random>": the caller's now (Unix ms) when the member was
// written, and random bytes that make each write's token unique. Members are
// written before their session (see the package doc), so a member whose
// session is missing or names another owner may belong to a write still in
// flight; such members are pruned only once they are older than
// s.pruneAge(), and only if their token is unchanged.

// minPruneAge is the least age of a member whose session is missing or owned
// by someone else before a prune removes it; Options.Timeout is added to it.
const minPruneAge = time.Minute

// indexPruneFrom is the index size from which adding a member prunes the
// index; it prunes again at every power of two above it, so an index that
// is never listed stays within about twice its live (or young) members.
const indexPruneFrom = 32

// batchSize bounds the commands in one pipeline and the members in one
// index-removal script.
const batchSize = 256

func (s *Store) pruneAge() int64 { return (s.timeout + minPruneAge).Milliseconds() }

// token returns a fresh index token for a member written at now.
func token(now int64) string {
	return strconv.FormatInt(now, 10) + "." + strconv.FormatUint(rand.Uint64(), 36)
}

// tokenTime returns the time a token was written, or the minimum int64 for
// a token this version cannot read (prunable as very old).
func tokenTime(tok string) int64 {
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return minMillis
	}
	t, err := strconv.ParseInt(tok[:i], 10, 64)
	if err != nil {
		return minMillis
	}
	return t
}

// indexAdd records that id belongs to owner, written at now, and makes the
// index live until at least until (plus the grace).
func (s *Store) indexAdd(ctx context.Context, owner, id string, until, now int64) error {
	n, err := indexAddScript.Run(ctx, s.c, []string{s.ownerKey(owner)}, id, token(now), s.pxat(until)).Int64()
	if err != nil {
		return fmt.Errorf("owner index: %w", err)
	}
	if n >= indexPruneFrom && n&(n-1) == 0 {
		// Best effort: a failure leaves stale members for the next prune.
		_, _ = s.scanOwner(ctx, owner, now)
	}
	return nil
}

// ListOwner implements [sessions.OwnerIndex]: it reads the owner's index,
// checks each member's record (a GETRANGE of its header, pipelined), and
// prunes members whose record is gone or owned by someone else.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if owner == "" {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	f := func(ctx context.Context) ([]string, error) { return s.scanOwner(ctx, owner, ms(now)) }
	if !s.ctxAware {
		return detached(ctx, "list owner", f)
	}
	ids, err := f(ctx)
	return ids, wrap(ctx, "list owner", err)
}

// scanOwner returns the ids owned by owner and live at now, pruning stale
// members as it goes.
func (s *Store) scanOwner(ctx context.Context, owner string, now int64) ([]string, error) {
	idx := s.ownerKey(owner)
	members, err := s.c.HGetAll(ctx, idx).Result()
	if err != nil {
		return nil, err
	}
	all := make([]string, 0, len(members))
	for id := range members {
		all = append(all, id)
	}
	var live, stale []string
	for start := 0; start < len(all); start += batchSize {
		batch := all[start:min(start+batchSize, len(all))]
		cmds := make([]*redis.StringCmd, len(batch))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				cmds[i] = p.GetRange(ctx, s.sessionKey(id), 0, int64(headerLen+len(owner)-1))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, id := range batch {
			b, _ := cmds[i].Bytes()
			rec, derr := decodeRecord(b, false)
			if derr != nil || ownerLen(b) != len(owner) || string(rec.Owner) != owner {
				// Gone, or owned by someone else: stale once old enough.
				if tok := members[id]; tokenTime(tok) < now-s.pruneAge() {
					stale = append(stale, id, tok)
				}
				continue
			}
			if rec.Expiry > now {
				live = append(live, id)
			}
		}
	}
	if err := s.indexRemove(ctx, idx, stale); err != nil {
		return nil, err
	}
	return live, nil
}

// indexRemove removes (id, token) pairs from an index where the token is
// unchanged.
func (s *Store) indexRemove(ctx context.Context, idx string, pairs []string) error {
	for start := 0; start < len(pairs); start += 2 * batchSize {
		batch := pairs[start:min(start+2*batchSize, len(pairs))]
		args := make([]any, len(batch))
		for i, a := range batch {
			args[i] = a
		}
		if err := indexRemoveScript.Run(ctx, s.c, []string{idx}, args...).Err(); err != nil {
			return fmt.Errorf("owner index: %w", err)
		}
	}
	return nil
}

// DeleteOwner implements [sessions.OwnerIndex]. It deletes, with one script
// per session (pipelined), every indexed record that still names the owner,
// then removes from the index the members it deleted and the stale ones.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if owner == "" {
		return 0, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if !s.ctxAware {
		return detached(ctx, "delete owner", func(ctx context.Context) (int, error) { return s.deleteOwner(ctx, owner, now) })
	}
	n, err := s.deleteOwner(ctx, owner, now)
	return n, wrap(ctx, "delete owner", err)
}

func (s *Store) deleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	idx := s.ownerKey(owner)
	members, err := s.c.HGetAll(ctx, idx).Result()
	if err != nil {
		return 0, err
	}
	all := make([]string, 0, len(members))
	for id := range members {
		all = append(all, id)
	}
	nowMs := ms(now)
	deleted := 0
	var remove []string
	for start := 0; start < len(all); start += batchSize {
		batch := all[start:min(start+batchSize, len(all))]
		res, err := s.runPipelined(ctx, deleteOwnedScript, batch, owner, nowMs)
		if err != nil {
			return deleted, err
		}
		for i, n := range res {
			id, tok := batch[i], members[batch[i]]
			switch {
			case n == 1:
				deleted++
				remove = append(remove, id, tok)
			case n == 2 || tokenTime(tok) < nowMs-s.pruneAge():
				remove = append(remove, id, tok)
			}
		}
	}
	return deleted, s.indexRemove(ctx, idx, remove)
}

// runPipelined runs script once per session id in one pipeline and returns
// the integer replies. It uses EVALSHA; the commands that fail with NOSCRIPT
// (a server that lacks the script) are retried once after SCRIPT LOAD. With
// [Options.MinReplicas], the ids are grouped by primary and each group's
// pipeline ends with a WAIT on the same connection.
func (s *Store) runPipelined(ctx context.Context, script *redis.Script, ids []string, args ...any) ([]int64, error) {
	out := make([]int64, len(ids))
	all := make([]int, len(ids))
	for i := range all {
		all[i] = i
	}
	if s.minReplicas == 0 {
		return out, s.runOn(ctx, s.c, false, script, ids, all, out, args)
	}
	groups := make(map[redis.UniversalClient][]int)
	var order []redis.UniversalClient
	for i, id := range ids {
		node, err := s.primaryFor(ctx, s.sessionKey(id))
		if err != nil {
			return nil, err
		}
		if _, ok := groups[node]; !ok {
			order = append(order, node)
		}
		groups[node] = append(groups[node], i)
	}
	// Every primary gets its writes even when another one's replicas
	// lag: a logout everywhere deletes what it can.
	var first error
	for _, node := range order {
		if err := s.runOn(ctx, node, true, script, ids, groups[node], out, args); err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// runOn runs script for ids[i], i in todo, in pipelines on c, storing the
// replies in out; with wait, each pipeline ends with a WAIT for the
// replicas.
func (s *Store) runOn(ctx context.Context, c redis.UniversalClient, wait bool, script *redis.Script, ids []string, todo []int, out []int64, args []any) error {
	for attempt := 0; len(todo) > 0; attempt++ {
		cmds := make([]*redis.Cmd, len(todo))
		var w *redis.IntCmd
		_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range todo {
				cmds[j] = script.EvalSha(ctx, p, []string{s.sessionKey(ids[i])}, args...)
			}
			if wait {
				w = s.waitCmd(ctx, p)
			}
			return nil
		})
		var again []int
		for j, cmd := range cmds {
			n, err := cmd.Int64()
			switch {
			case err == nil:
				out[todo[j]] = n
			case attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT"):
				again = append(again, todo[j])
			default:
				return err
			}
		}
		if wait && len(again) < len(todo) {
			if err := s.replicated(w); err != nil {
				return err
			}
		}
		if len(again) > 0 {
			if err := script.Load(ctx, c).Err(); err != nil {
				return err
			}
		}
		todo = again
	}
	return nil
}
