package redisstore

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestUpdateDeclinedLeavesRecord: the update script writes first (SET ...
// GET) and puts the old value back when the write must not happen. Every
// declined Update must leave the record byte for byte as it was, with the
// same Redis expiry, and an Update of a missing record must leave no key.
func TestUpdateDeclinedLeavesRecord(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	exp := now.Add(time.Hour)

	snapshot := func(id string) ([]byte, time.Duration) {
		t.Helper()
		raw, err := c.Get(ctx, s.sessionKey(id)).Bytes()
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		pexp, err := c.PExpireTime(ctx, s.sessionKey(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return raw, pexp
	}
	same := func(what, id string, raw []byte, pexp time.Duration) {
		t.Helper()
		r, p := snapshot(id)
		if !bytes.Equal(r, raw) || p != pexp {
			t.Errorf("%s: record %x, PEXPIRETIME %v; want it unchanged: %x, %v", what, r, p, raw, pexp)
		}
	}

	// Changed meanwhile: a stale version.
	id := newID(t)
	if ok, err := s.Create(ctx, id, []byte("one"), exp, "", now); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// A touch moved the Redis expiry along with the embedded one.
	if ok, err := s.Touch(ctx, id, exp.Add(time.Minute), now); !ok || err != nil {
		t.Fatal(ok, err)
	}
	raw, pexp := snapshot(id)
	if up, found, err := s.Update(ctx, id, 7, []byte("two"), exp.Add(time.Hour), "", now); up || !found || err != nil {
		t.Fatalf("stale Update = %v, %v, %v; want false, true, nil", up, found, err)
	}
	same("stale Update", id, raw, pexp)

	// Expired at the caller's now (still in Redis within the grace).
	later := exp.Add(2 * time.Minute)
	if up, found, err := s.Update(ctx, id, 1, []byte("two"), later.Add(time.Hour), "", later); up || found || err != nil {
		t.Fatalf("Update of an expired record = %v, %v, %v; want false, false, nil", up, found, err)
	}
	same("Update of an expired record", id, raw, pexp)

	// Gone: no key is left behind.
	gone := newID(t)
	if up, found, err := s.Update(ctx, gone, 1, []byte("x"), exp, "", now); up || found || err != nil {
		t.Fatalf("Update of a missing record = %v, %v, %v", up, found, err)
	}
	if n, _ := c.Exists(ctx, s.sessionKey(gone)).Result(); n != 0 {
		t.Errorf("Update of a missing record left a key")
	}

	// The owner index must be extended first: declined, then written.
	owned := newID(t)
	if ok, err := s.Create(ctx, owned, []byte("one"), exp, "ann", now); !ok || err != nil {
		t.Fatal(ok, err)
	}
	raw, pexp = snapshot(owned)
	if up, _, err := s.Update(ctx, owned, 5, []byte("two"), exp.Add(48*time.Hour), "ann", now); up || err != nil {
		t.Fatalf("stale owned Update = %v, %v", up, err)
	}
	same("stale owned Update", owned, raw, pexp)
	if up, _, err := s.Update(ctx, owned, 1, []byte("two"), exp.Add(48*time.Hour), "ann", now); !up || err != nil {
		t.Fatalf("owned Update past the index horizon = %v, %v", up, err)
	}
	r, err := decodeRecord(mustGet(t, c, s.sessionKey(owned)), true)
	if err != nil || r.Version != 2 || string(r.Data) != "two" || string(r.Owner) != "ann" || r.IdxUntil < exp.Add(48*time.Hour).UnixMilli() {
		t.Errorf("after the owned Update: %+v, %v", r, err)
	}
	// Same owner within the horizon: the index deadline is kept.
	keep := r.IdxUntil
	if up, _, err := s.Update(ctx, owned, 2, []byte("three"), exp, "ann", now); !up || err != nil {
		t.Fatalf("owned Update = %v, %v", up, err)
	}
	if r, _ := decodeRecord(mustGet(t, c, s.sessionKey(owned)), true); r.IdxUntil != keep || string(r.Data) != "three" {
		t.Errorf("owned Update within the horizon: index deadline %d, data %q; want %d, three", r.IdxUntil, r.Data, keep)
	}
}

func mustGet(t *testing.T, c redis.UniversalClient, key string) []byte {
	t.Helper()
	b, err := c.Get(context.Background(), key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
