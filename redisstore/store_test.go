package redisstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestNewOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	tests := []struct {
		name    string
		opts    *Options
		wantErr bool
		check   func(*Store) bool
	}{
		{"nil options", nil, false, func(s *Store) bool {
			return s.prefix == DefaultPrefix && s.timeout == DefaultTimeout && s.grace == DefaultTTLGrace.Milliseconds()
		}},
		{"custom", &Options{Prefix: "app:", Timeout: time.Second, TTLGrace: 5 * time.Second}, false, func(s *Store) bool {
			return s.prefix == "app:" && s.timeout == time.Second && s.grace == 5000
		}},
		{"brace in prefix", &Options{Prefix: "a{b}:"}, true, nil},
		{"open brace in prefix", &Options{Prefix: "a{"}, true, nil},
		{"long prefix", &Options{Prefix: strings.Repeat("p", maxPrefixLen+1)}, true, nil},
		{"negative timeout", &Options{Timeout: -time.Second}, true, nil},
		{"negative grace", &Options{TTLGrace: -time.Second}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(c, tt.opts)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidOption) {
					t.Fatalf("New: err = %v, want ErrInvalidOption", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.check(s) {
				t.Fatalf("unexpected configuration: %+v", s)
			}
		})
	}
	if _, err := New(nil, nil); !errors.Is(err, ErrNilClient) {
		t.Fatalf("New(nil): err = %v, want ErrNilClient", err)
	}
}

func TestRecordLayout(t *testing.T) {
	// The documented format-1 layout, byte for byte.
	got := encodeRecord(7, 1700000000123, 1700000900000, "al", []byte{0xde, 0xad})
	want := []byte{
		0x01,
		0, 0, 0, 0, 0, 0, 0, 7,
		0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, // 1700000000123
		0x00, 0x00, 0x01, 0x8b, 0xcf, 0xf3, 0x23, 0xa0, // 1700000900000
		0, 0, 0, 2,
		'a', 'l',
		0xde, 0xad,
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeRecord:\n got %x\nwant %x", got, want)
	}
	r, err := decodeRecord(got, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 7 || r.Expiry != 1700000000123 || r.IdxUntil != 1700000900000 || string(r.Owner) != "al" || !bytes.Equal(r.Data, []byte{0xde, 0xad}) {
		t.Fatalf("decodeRecord = %+v", r)
	}
	for _, bad := range [][]byte{nil, got[:headerLen-1], append([]byte{0x02}, got[1:]...), got[:headerLen+1]} {
		if _, err := decodeRecord(bad, true); !errors.Is(err, ErrMalformedRecord) {
			t.Errorf("decodeRecord(%x): err = %v, want ErrMalformedRecord", bad, err)
		}
	}
}

func TestKeyLayout(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	s, err := New(c, &Options{Prefix: "p:"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.sessionKey("ab"); got != "p:id:ab" {
		t.Errorf("sessionKey = %q", got)
	}
	// SHA-256("alice") = 2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90
	if got := s.ownerKey("alice"); got != "p:owner:{2bd806c97f0e00af1a1fc3328fa763a9}" {
		t.Errorf("ownerKey = %q", got)
	}
	// A hostile owner cannot pick the hash tag or escape the namespace.
	if got := s.ownerKey("}{x"); !strings.HasPrefix(got, "p:owner:{") || strings.Count(got, "{") != 1 {
		t.Errorf("ownerKey(hostile) = %q", got)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	id := newID(t)
	exp := now.Add(time.Hour)

	created, err := s.Create(ctx, id, []byte("one"), exp, "", now)
	if err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	// The value is one string in the documented layout, with a Redis TTL of
	// expiry + grace.
	raw, err := c.Get(ctx, s.sessionKey(id)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if want := encodeRecord(1, exp.UnixMilli(), 0, "", []byte("one")); !bytes.Equal(raw, want) {
		t.Fatalf("stored value %x, want %x", raw, want)
	}
	pexp, err := c.PExpireTime(ctx, s.sessionKey(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := exp.UnixMilli() + DefaultTTLGrace.Milliseconds(); pexp != time.Duration(want)*time.Millisecond {
		t.Fatalf("PEXPIRETIME = %v, want %v", pexp, time.Duration(want)*time.Millisecond)
	}

	if created, err := s.Create(ctx, id, []byte("two"), exp, "", now); err != nil || created {
		t.Fatalf("second Create = %v, %v; want false, nil", created, err)
	}

	data, v, gotExp, found, err := s.Load(ctx, id, now)
	if err != nil || !found || string(data) != "one" || v != 1 || !gotExp.Equal(exp.Truncate(time.Millisecond)) {
		t.Fatalf("Load = %q, %d, %v, %v, %v", data, v, gotExp, found, err)
	}

	updated, found, err := s.Update(ctx, id, 1, []byte("three"), exp, "", now)
	if err != nil || !updated || !found {
		t.Fatalf("Update = %v, %v, %v", updated, found, err)
	}
	updated, found, err = s.Update(ctx, id, 1, []byte("four"), exp, "", now)
	if err != nil || updated || !found {
		t.Fatalf("stale Update = %v, %v, %v; want changed", updated, found, err)
	}
	data, v, _, _, _ = s.Load(ctx, id, now)
	if string(data) != "three" || v != 2 {
		t.Fatalf("after Update: %q v%d", data, v)
	}

	// Touch moves expiry later only, in the record and in Redis.
	later := exp.Add(time.Hour)
	if found, err := s.Touch(ctx, id, later, now); err != nil || !found {
		t.Fatalf("Touch = %v, %v", found, err)
	}
	if found, err := s.Touch(ctx, id, exp, now); err != nil || !found {
		t.Fatalf("earlier Touch = %v, %v", found, err)
	}
	data, v, gotExp, _, _ = s.Load(ctx, id, now)
	if string(data) != "three" || v != 2 || !gotExp.Equal(later.Truncate(time.Millisecond)) {
		t.Fatalf("after Touch: %q v%d exp %v, want exp %v", data, v, gotExp, later)
	}
	pexp, _ = c.PExpireTime(ctx, s.sessionKey(id)).Result()
	if want := time.Duration(later.UnixMilli()+DefaultTTLGrace.Milliseconds()) * time.Millisecond; pexp != want {
		t.Fatalf("PEXPIRETIME after Touch = %v, want %v", pexp, want)
	}

	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if _, _, _, found, err := s.Load(ctx, id, now); err != nil || found {
		t.Fatalf("Load after Delete = %v, %v", found, err)
	}
	if found, err := s.Touch(ctx, id, later, now); err != nil || found {
		t.Fatalf("Touch after Delete = %v, %v", found, err)
	}
	if n, _ := c.Exists(ctx, s.sessionKey(id)).Result(); n != 0 {
		t.Fatal("Touch created a key")
	}
	if updated, found, err := s.Update(ctx, id, 2, []byte("x"), later, "", now); err != nil || updated || found {
		t.Fatalf("Update after Delete = %v, %v, %v; want gone", updated, found, err)
	}
}

// TestAppClock checks that expiry follows the caller's now, not Redis's
// clock: records linger in Redis for the grace, but are absent to every
// operation once expired at now.
func TestAppClock(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	id := newID(t)
	exp := now.Add(time.Second)
	if ok, err := s.Create(ctx, id, []byte("a"), exp, "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	after := exp // expired: expiry at or before now
	if _, _, _, found, err := s.Load(ctx, id, after); err != nil || found {
		t.Fatalf("Load at expiry = %v, %v", found, err)
	}
	if found, err := s.Touch(ctx, id, after.Add(time.Hour), after); err != nil || found {
		t.Fatalf("Touch at expiry = %v, %v", found, err)
	}
	if updated, found, err := s.Update(ctx, id, 1, []byte("b"), after.Add(time.Hour), "", after); err != nil || updated || found {
		t.Fatalf("Update at expiry = %v, %v, %v", updated, found, err)
	}
	// The key still exists (TTL grace), yet Create replaces it.
	if n, _ := c.Exists(ctx, s.sessionKey(id)).Result(); n != 1 {
		t.Fatal("expired record already removed by Redis; the test needs it present")
	}
	if ok, err := s.Create(ctx, id, []byte("new"), after.Add(time.Hour), "", after); !ok || err != nil {
		t.Fatalf("Create over expired = %v, %v", ok, err)
	}
	data, v, _, found, err := s.Load(ctx, id, after)
	if err != nil || !found || string(data) != "new" || v != 1 {
		t.Fatalf("Load = %q, %d, %v, %v", data, v, found, err)
	}
	// Still live just before its expiry, from a now in the past.
	if _, _, _, found, _ := s.Load(ctx, id, now); !found {
		t.Fatal("Load with an earlier now: not found")
	}
}

func TestPastExpiryDeletes(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()

	// Update with a past expiry deletes the record.
	id := newID(t)
	if ok, err := s.Create(ctx, id, []byte("a"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if updated, found, err := s.Update(ctx, id, 1, []byte("b"), now.Add(-time.Second), "", now); !updated || !found || err != nil {
		t.Fatalf("Update(past) = %v, %v, %v", updated, found, err)
	}
	if n, _ := c.Exists(ctx, s.sessionKey(id)).Result(); n != 0 {
		t.Fatal("Update with a past expiry left the key")
	}

	// Create with a past expiry writes nothing, and never replaces a live
	// record.
	id2 := newID(t)
	if ok, err := s.Create(ctx, id2, []byte("a"), now, "", now); !ok || err != nil {
		t.Fatalf("Create(past) = %v, %v", ok, err)
	}
	if n, _ := c.Exists(ctx, s.sessionKey(id2)).Result(); n != 0 {
		t.Fatal("Create with a past expiry wrote a key")
	}
	if ok, _ := s.Create(ctx, id2, []byte("live"), now.Add(time.Hour), "", now); !ok {
		t.Fatal("Create failed")
	}
	if ok, err := s.Create(ctx, id2, []byte("b"), now.Add(-time.Hour), "", now); ok || err != nil {
		t.Fatalf("Create(past) over live = %v, %v; want false", ok, err)
	}
	if data, _, _, _, _ := s.Load(ctx, id2, now); string(data) != "live" {
		t.Fatalf("live record changed to %q", data)
	}
}

func TestMalformedRecord(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	id := newID(t)
	if err := c.Set(ctx, s.sessionKey(id), "not a record", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := s.Load(ctx, id, now); !errors.Is(err, ErrMalformedRecord) {
		t.Errorf("Load: err = %v, want ErrMalformedRecord", err)
	}
	if _, _, err := s.Update(ctx, id, 1, nil, now.Add(time.Hour), "", now); err == nil || !strings.Contains(err.Error(), "malformed record") {
		t.Errorf("Update: err = %v, want malformed record", err)
	}
	if _, err := s.Touch(ctx, id, now.Add(time.Hour), now); err == nil || !strings.Contains(err.Error(), "malformed record") {
		t.Errorf("Touch: err = %v, want malformed record", err)
	}
	if _, err := s.Create(ctx, id, nil, now.Add(time.Hour), "", now); err == nil {
		t.Error("Create over a malformed value: nil error")
	}
	if got, _ := c.Get(ctx, s.sessionKey(id)).Result(); got != "not a record" {
		t.Errorf("malformed value overwritten: %q", got)
	}
}

func TestEmptyAndBinaryData(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	for _, data := range [][]byte{{}, {0}, []byte("\x00\xff{}\r\n"), bytes.Repeat([]byte{0xab}, 70000)} {
		id := newID(t)
		if ok, err := s.Create(ctx, id, data, now.Add(time.Hour), "own\x00er", now); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		got, _, _, found, err := s.Load(ctx, id, now)
		if err != nil || !found || got == nil || !bytes.Equal(got, data) {
			t.Fatalf("Load of %d bytes: found %v err %v, %d bytes (nil %v)", len(data), found, err, len(got), got == nil)
		}
	}
}

func TestContextHonoured(t *testing.T) {
	t.Parallel()
	for _, aware := range []bool{true, false} {
		opts := redisOptions(t)
		opts.ContextTimeoutEnabled = aware
		c := redis.NewClient(opts)
		t.Cleanup(func() { c.Close() })
		s := newStore(t, c, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		now := time.Now()
		id := newID(t)
		checks := map[string]error{}
		_, checks["create"] = s.Create(ctx, id, nil, now.Add(time.Hour), "", now)
		_, _, _, _, checks["load"] = s.Load(ctx, id, now)
		_, _, checks["update"] = s.Update(ctx, id, 1, nil, now.Add(time.Hour), "", now)
		_, checks["touch"] = s.Touch(ctx, id, now.Add(time.Hour), now)
		checks["delete"] = s.Delete(ctx, id)
		_, checks["list owner"] = s.ListOwner(ctx, "o", now)
		_, checks["delete owner"] = s.DeleteOwner(ctx, "o", now)
		for op, err := range checks {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("ContextTimeoutEnabled=%v %s: err = %v, want context.Canceled", aware, op, err)
			} else if !strings.HasPrefix(err.Error(), "redisstore: "+op+": ") {
				t.Errorf("%s: error %q lacks the redisstore: %s: prefix", op, err, op)
			}
		}
	}
}

func TestOwnerIndex(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	exp := now.Add(time.Hour)

	var alice []string
	for range 5 {
		id := newID(t)
		if ok, err := s.Create(ctx, id, []byte("a"), exp, "alice", now); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		alice = append(alice, id)
	}
	bob := newID(t)
	if ok, err := s.Create(ctx, bob, []byte("b"), exp, "bob", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	anon := newID(t)
	if ok, err := s.Create(ctx, anon, []byte("c"), exp, "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}

	list := func(owner string, at time.Time) []string {
		t.Helper()
		ids, err := s.ListOwner(ctx, owner, at)
		if err != nil {
			t.Fatalf("ListOwner(%q): %v", owner, err)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { ids = slices.Clone(ids); slices.Sort(ids); return ids }

	if got := list("alice", now); !slices.Equal(got, sorted(alice...)) {
		t.Fatalf("ListOwner(alice) = %v, want %v", got, sorted(alice...))
	}
	if got := list("", now); len(got) != 0 {
		t.Fatalf("ListOwner(\"\") = %v", got)
	}
	if got := list("nobody", now); len(got) != 0 {
		t.Fatalf("ListOwner(nobody) = %v", got)
	}

	// Ownership moves with Update; the old index keeps a stale member that
	// is filtered out and pruned, and DeleteOwner never touches the moved
	// record.
	if ok, _, err := s.Update(ctx, alice[0], 1, []byte("a2"), exp, "bob", now); !ok || err != nil {
		t.Fatalf("Update owner = %v, %v", ok, err)
	}
	if ok, _, err := s.Update(ctx, alice[1], 1, []byte("a2"), exp, "", now); !ok || err != nil {
		t.Fatalf("Update owner = %v, %v", ok, err)
	}
	// One is deleted outright, one has expired at the listing's now.
	if err := s.Delete(ctx, alice[2]); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Update(ctx, alice[3], 1, []byte("a2"), now.Add(time.Minute), "alice", now); !ok || err != nil {
		t.Fatalf("Update = %v, %v", ok, err)
	}
	at := now.Add(2 * time.Minute)
	if got := list("alice", at); !slices.Equal(got, sorted(alice[4])) {
		t.Fatalf("ListOwner(alice) = %v, want [%s]", got, alice[4])
	}
	if got := list("bob", at); !slices.Equal(got, sorted(bob, alice[0])) {
		t.Fatalf("ListOwner(bob) = %v, want %v", got, sorted(bob, alice[0]))
	}
	// Pruned: the members whose records are gone or owned by others; the
	// expired-but-present alice[3] stays until Redis removes it.
	members, _ := c.HKeys(ctx, s.ownerKey("alice")).Result()
	if got := sorted(members...); !slices.Equal(got, sorted(alice[3], alice[4])) {
		t.Fatalf("alice index after prune = %v, want %v", got, sorted(alice[3], alice[4]))
	}

	n, err := s.DeleteOwner(ctx, "alice", at)
	if err != nil || n != 1 {
		t.Fatalf("DeleteOwner(alice) = %d, %v; want 1 (one live, one expired)", n, err)
	}
	for _, id := range []string{alice[3], alice[4]} {
		if n, _ := c.Exists(ctx, s.sessionKey(id)).Result(); n != 0 {
			t.Errorf("DeleteOwner left %s", id)
		}
	}
	for _, id := range []string{alice[0], alice[1], bob, anon} {
		if _, _, _, found, _ := s.Load(ctx, id, at); !found {
			t.Errorf("DeleteOwner(alice) removed %s, not alice's", id)
		}
	}
	if n, _ := c.Exists(ctx, s.ownerKey("alice")).Result(); n != 0 {
		t.Error("alice's index survived DeleteOwner")
	}
	if n, err := s.DeleteOwner(ctx, "alice", at); n != 0 || err != nil {
		t.Fatalf("second DeleteOwner = %d, %v", n, err)
	}
	if n, err := s.DeleteOwner(ctx, "", at); n != 0 || err != nil {
		t.Fatalf("DeleteOwner(\"\") = %d, %v", n, err)
	}
}

// TestOwnerIndexOutlivesTouch checks the hazard of time-scored indexes:
// Touch extends a session far past the expiry it was indexed with, and the
// session must stay listed (and deletable) for its whole new lifetime.
func TestOwnerIndexOutlivesTouch(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, &Options{TTLGrace: time.Second})
	ctx := context.Background()
	now := time.Now()
	id := newID(t)
	if ok, err := s.Create(ctx, id, []byte("a"), now.Add(10*time.Second), "carol", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	idx := s.ownerKey("carol")
	first, _ := c.PExpireTime(ctx, idx).Result()
	// Index lives for twice the remaining lifetime plus the grace.
	if want := time.Duration(now.UnixMilli()+20_000+1000) * time.Millisecond; first != want {
		t.Fatalf("index PEXPIRETIME = %v, want %v", first, want)
	}

	// Touches within the index's horizon cost no index write.
	if found, err := s.Touch(ctx, id, now.Add(15*time.Second), now); !found || err != nil {
		t.Fatalf("Touch = %v, %v", found, err)
	}
	if got, _ := c.PExpireTime(ctx, idx).Result(); got != first {
		t.Fatalf("index PEXPIRETIME moved to %v on a Touch within its horizon", got)
	}

	// A Touch far beyond it extends the index first.
	far := now.Add(6 * time.Hour)
	if found, err := s.Touch(ctx, id, far, now); !found || err != nil {
		t.Fatalf("Touch = %v, %v", found, err)
	}
	got, _ := c.PExpireTime(ctx, idx).Result()
	if got < time.Duration(far.UnixMilli())*time.Millisecond {
		t.Fatalf("index PEXPIRETIME = %v, before the session's expiry %v", got, far.UnixMilli())
	}
	rec, _ := c.Get(ctx, s.sessionKey(id)).Bytes()
	r, err := decodeRecord(rec, true)
	if err != nil || r.IdxUntil < far.UnixMilli() || r.Expiry != far.UnixMilli() {
		t.Fatalf("record after Touch: %+v, %v", r, err)
	}

	// Listed and deletable long after its first expiry.
	late := now.Add(5 * time.Hour)
	if ids, err := s.ListOwner(ctx, "carol", late); err != nil || !slices.Equal(ids, []string{id}) {
		t.Fatalf("ListOwner = %v, %v", ids, err)
	}
	// The same holds after an Update that slides the expiry again.
	farther := now.Add(12 * time.Hour)
	if ok, _, err := s.Update(ctx, id, 1, []byte("b"), farther, "carol", late); !ok || err != nil {
		t.Fatalf("Update = %v, %v", ok, err)
	}
	if got, _ := c.PExpireTime(ctx, idx).Result(); got < time.Duration(farther.UnixMilli())*time.Millisecond {
		t.Fatalf("index PEXPIRETIME = %v after Update to %v", got, farther)
	}
	if n, err := s.DeleteOwner(ctx, "carol", now.Add(11*time.Hour)); n != 1 || err != nil {
		t.Fatalf("DeleteOwner = %d, %v", n, err)
	}
}

// TestOwnerIndexConditionalPrune checks that a prune never removes a member
// re-added after it was observed.
func TestOwnerIndexConditionalPrune(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	id := newID(t)
	idx := s.ownerKey("dave")
	if err := s.indexAdd(ctx, "dave", id, now.Add(time.Hour).UnixMilli(), now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	// The member is written before its session: a listing meanwhile must
	// not prune it while it is young.
	if ids, err := s.ListOwner(ctx, "dave", now.Add(time.Second)); err != nil || len(ids) != 0 {
		t.Fatalf("ListOwner = %v, %v; want none live", ids, err)
	}
	if n, _ := c.HLen(ctx, idx).Result(); n != 1 {
		t.Fatal("a young member without its session was pruned")
	}
	observed, _ := c.HGet(ctx, idx, id).Result()
	// Meanwhile the session is (re)created for dave, re-adding the member.
	if ok, err := s.Create(ctx, id, nil, now.Add(time.Hour), "dave", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	// A prune based on the stale observation must leave it.
	if err := s.indexRemove(ctx, idx, []string{id, observed}); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.ListOwner(ctx, "dave", now); err != nil || !slices.Equal(ids, []string{id}) {
		t.Fatalf("ListOwner = %v, %v", ids, err)
	}
}

// TestOwnerIndexBounded checks that an index nobody lists is pruned as it
// grows.
func TestOwnerIndexBounded(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	start := time.Now()
	for i := range 4 * indexPruneFrom {
		now := start.Add(time.Duration(i) * 2 * minPruneAge)
		id := newID(t)
		if ok, err := s.Create(ctx, id, nil, now.Add(time.Hour), "erin", now); !ok || err != nil {
			t.Fatalf("Create = %v, %v", ok, err)
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	n, _ := c.HLen(ctx, s.ownerKey("erin")).Result()
	if n >= 2*indexPruneFrom {
		t.Fatalf("index holds %d stale members after %d logins", n, 4*indexPruneFrom)
	}
}

func TestOwnerChangeIsIndexed(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	s := newStore(t, c, nil)
	ctx := context.Background()
	now := time.Now()
	id := newID(t)
	if ok, err := s.Create(ctx, id, nil, now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if n, _ := c.Exists(ctx, s.ownerKey("")).Result(); n != 0 {
		t.Fatal("empty owner indexed")
	}
	// Login: the same record gains an owner (Update needs the index first).
	if ok, _, err := s.Update(ctx, id, 1, []byte("x"), now.Add(time.Hour), "frank", now); !ok || err != nil {
		t.Fatalf("Update = %v, %v", ok, err)
	}
	if ids, _ := s.ListOwner(ctx, "frank", now); !slices.Equal(ids, []string{id}) {
		t.Fatalf("ListOwner(frank) = %v", ids)
	}
	// A failed Update (version changed) writes no record.
	if ok, found, err := s.Update(ctx, id, 1, []byte("y"), now.Add(time.Hour), "gina", now); ok || !found || err != nil {
		t.Fatalf("stale Update = %v, %v, %v", ok, found, err)
	}
	if ids, _ := s.ListOwner(ctx, "gina", now); len(ids) != 0 {
		t.Fatalf("ListOwner(gina) = %v", ids)
	}
	if data, v, _, _, _ := s.Load(ctx, id, now); string(data) != "x" || v != 2 {
		t.Fatalf("record = %q v%d", data, v)
	}
}
