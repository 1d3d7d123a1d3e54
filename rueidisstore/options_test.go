package rueidisstore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestNewOptions: nil and zero options give the documented defaults (the
// near-cache on with a 10 s bound); invalid ones are errors, never panics.
func TestNewOptions(t *testing.T) {
	c := singleClient(t)
	for _, o := range []*Options{nil, {}} {
		s, err := New(c, o)
		if err != nil {
			t.Fatal(err)
		}
		if s.prefix != DefaultPrefix || s.timeout != DefaultTimeout || s.grace != DefaultTTLGrace.Milliseconds() || s.maxAge != DefaultMaxCacheAge {
			t.Errorf("New(%v): %q %v %d %v; want the defaults", o, s.prefix, s.timeout, s.grace, s.maxAge)
		}
	}
	if _, err := New(nil, nil); !errors.Is(err, ErrNilClient) {
		t.Errorf("New(nil): %v", err)
	}
	for _, o := range []Options{
		{Prefix: strings.Repeat("p", 257)},
		{Prefix: "a{b}:"},
		{Timeout: -1},
		{TTLGrace: -time.Second},
		{MaxCacheAge: -time.Second},
	} {
		if _, err := New(c, &o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("New(%+v): err = %v, want ErrInvalidOption", o, err)
		}
	}
}

// TestNearCacheServesAndInvalidates: a second Load is served from memory
// (no command reaches Redis), and a write from another client drops the
// copy; the copy also ends at MaxCacheAge at the latest.
func TestNearCacheServesAndInvalidates(t *testing.T) {
	ca, cb := singleClient(t), newClient(t, singleOption(t), "Redis")
	a := newStore(t, ca, &Options{MaxCacheAge: 300 * time.Millisecond})
	b := newStore(t, cb, &Options{Prefix: a.prefix})
	ctx := t.Context()
	id := newID(t)
	now := time.Now()
	if ok, err := b.Create(ctx, id, []byte("one"), now.Add(time.Hour), "", now); !ok || err != nil {
		t.Fatal(ok, err)
	}
	get := func() *rueidisResult { return cacheProbe(ctx, ca, a.sessionKey(id)) }
	if _, _, _, ok, err := a.Load(ctx, id, now); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if !get().hit {
		t.Fatal("second read was not a near-cache hit")
	}
	if up, _, err := b.Update(ctx, id, 1, []byte("two"), now.Add(time.Hour), "", now); !up || err != nil {
		t.Fatal(up, err)
	}
	deadline := time.Now().Add(200 * time.Millisecond) // well below MaxCacheAge
	for {
		data, v, _, ok, err := a.Load(ctx, id, now)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if v == 2 && string(data) == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A still serves version %d %q 200 ms after B's write", v, data)
		}
		time.Sleep(time.Millisecond)
	}
	// The hard bound: a copy is never older than MaxCacheAge.
	_ = get()
	time.Sleep(400 * time.Millisecond)
	if r := get(); r.hit {
		t.Errorf("a copy outlived MaxCacheAge (%v)", a.maxAge)
	}
}
