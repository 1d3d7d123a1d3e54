package rueidisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// The owner index is redisstore's: a hash per owner under
// "<Prefix>owner:{<tag>}", field = session id, value = "<added>.<random>"
// (the caller's now in Unix ms when the member was written, and random
// bytes). Members are written before their session; a member whose session
// is missing or names another owner is pruned only once older than
// Timeout + 1 minute (it may belong to a write in flight), and only if its
// token is unchanged. ListOwner and DeleteOwner read the sessions through
// (never from the near-cache).

const (
	minPruneAge    = time.Minute
	indexPruneFrom = 32
	batchSize      = 256
)

func (s *Store) pruneAge() int64 { return (s.timeout + minPruneAge).Milliseconds() }

func token(now int64) string {
	return strconv.FormatInt(now, 10) + "." + strconv.FormatUint(rand.Uint64(), 36)
}

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

func (s *Store) indexAdd(ctx context.Context, owner, id string, until, now int64) error {
	n, err := indexAddScript.Exec(ctx, s.c, []string{s.ownerKey(owner)},
		[]string{id, token(now), itoa(s.pxat(until))}).AsInt64()
	if err != nil {
		return fmt.Errorf("owner index: %w", err)
	}
	if n >= indexPruneFrom && n&(n-1) == 0 {
		_, _ = s.scanOwner(ctx, owner, now) // best effort
	}
	return nil
}

// ListOwner implements [sessions.OwnerIndex]: HGETALL of the owner's index,
// then one pipelined GETRANGE of each member's header.
func (s *Store) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if owner == "" {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ids, err := s.scanOwner(ctx, owner, ms(now))
	return ids, wrap(ctx, "list owner", err)
}

func (s *Store) members(ctx context.Context, idx string) (map[string]string, []string, error) {
	members, err := s.c.Do(ctx, s.c.B().Hgetall().Key(idx).Build()).AsStrMap()
	if err != nil {
		return nil, nil, err
	}
	all := make([]string, 0, len(members))
	for id := range members {
		all = append(all, id)
	}
	return members, all, nil
}

func (s *Store) scanOwner(ctx context.Context, owner string, now int64) ([]string, error) {
	idx := s.ownerKey(owner)
	members, all, err := s.members(ctx, idx)
	if err != nil {
		return nil, err
	}
	var live, stale []string
	for start := 0; start < len(all); start += batchSize {
		batch := all[start:min(start+batchSize, len(all))]
		cmds := make(rueidis.Commands, len(batch))
		for i, id := range batch {
			cmds[i] = s.c.B().Getrange().Key(s.sessionKey(id)).Start(0).End(int64(headerLen + len(owner) - 1)).Build()
		}
		for i, r := range s.c.DoMulti(ctx, cmds...) {
			b, err := r.AsBytes()
			if err != nil && !rueidis.IsRedisNil(err) {
				return nil, err
			}
			id := batch[i]
			h, derr := decode(b, false)
			if derr != nil || ownerLen(b) != len(owner) || string(h.Owner) != owner {
				if tok := members[id]; tokenTime(tok) < now-s.pruneAge() {
					stale = append(stale, id, tok)
				}
				continue
			}
			if h.Expiry > now {
				live = append(live, id)
			}
		}
	}
	if err := s.indexRemove(ctx, idx, stale); err != nil {
		return nil, err
	}
	return live, nil
}

func (s *Store) indexRemove(ctx context.Context, idx string, pairs []string) error {
	for start := 0; start < len(pairs); start += 2 * batchSize {
		batch := pairs[start:min(start+2*batchSize, len(pairs))]
		if err := indexRemoveScript.Exec(ctx, s.c, []string{idx}, batch).Error(); err != nil {
			return fmt.Errorf("owner index: %w", err)
		}
	}
	return nil
}

// DeleteOwner implements [sessions.OwnerIndex]: one script per indexed
// session (pipelined) deletes it if it still names the owner; then the
// deleted and stale members leave the index. Other processes drop their
// copies when Redis invalidates them.
func (s *Store) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if owner == "" {
		return 0, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := s.deleteOwner(ctx, owner, ms(now))
	return n, wrap(ctx, "delete owner", err)
}

func (s *Store) deleteOwner(ctx context.Context, owner string, now int64) (int, error) {
	idx := s.ownerKey(owner)
	members, all, err := s.members(ctx, idx)
	if err != nil {
		return 0, err
	}
	deleted := 0
	var remove []string
	for start := 0; start < len(all); start += batchSize {
		batch := all[start:min(start+batchSize, len(all))]
		execs := make([]rueidis.LuaExec, len(batch))
		for i, id := range batch {
			execs[i] = rueidis.LuaExec{Keys: []string{s.sessionKey(id)}, Args: []string{owner, itoa(now)}}
		}
		for i, r := range deleteOwnedScript.ExecMulti(ctx, s.c, execs...) {
			n, err := r.AsInt64()
			if err != nil {
				for _, id := range batch[i:] {
					s.fences.set(id, fence{unknown: true})
				}
				return deleted, err
			}
			id, tok := batch[i], members[batch[i]]
			if n != 0 {
				s.fences.set(id, fence{gone: true})
			}
			switch {
			case n == 1:
				deleted++
				remove = append(remove, id, tok)
			case n == 2 || tokenTime(tok) < now-s.pruneAge():
				remove = append(remove, id, tok)
			}
		}
	}
	return deleted, s.indexRemove(ctx, idx, remove)
}
