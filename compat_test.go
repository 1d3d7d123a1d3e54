package sessions

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// mapStore is the least Store the package's internal tests need (memstore
// imports this package, so it cannot be used here).
type mapStore struct {
	mu sync.Mutex
	m  map[string]mapRecord
}

type mapRecord struct {
	data    []byte
	version int64
	expiry  time.Time
}

func newMapStore() *mapStore { return &mapStore{m: map[string]mapRecord{}} }

func (s *mapStore) Create(_ context.Context, id string, data []byte, expiry time.Time, _ string, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[id]; ok && r.expiry.After(now) {
		return false, nil
	}
	s.m[id] = mapRecord{append([]byte{}, data...), 1, expiry}
	return true, nil
}

func (s *mapStore) Load(_ context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	if !ok || !r.expiry.After(now) {
		return nil, 0, time.Time{}, false, nil
	}
	return append([]byte{}, r.data...), r.version, r.expiry, true, nil
}

func (s *mapStore) Update(_ context.Context, id string, version int64, data []byte, expiry time.Time, _ string, now time.Time) (bool, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	switch {
	case !ok || !r.expiry.After(now):
		return false, false, nil
	case r.version != version:
		return false, true, nil
	}
	s.m[id] = mapRecord{append([]byte{}, data...), version + 1, expiry}
	return true, true, nil
}

func (s *mapStore) Touch(_ context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	if !ok || !r.expiry.After(now) {
		return false, nil
	}
	if expiry.After(r.expiry) {
		r.expiry = expiry
		s.m[id] = r
	}
	return true, nil
}

func (s *mapStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// TestFormat1RecordUpgrades: a record written by an earlier release
// (format 1, without its last write time) still loads, is not held to the
// current idle timeout it cannot be checked against, and is rewritten in
// format 2 by the next request that uses it.
func TestFormat1RecordUpgrades(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMapStore()
		m, err := New(st, &Options{IdleTimeout: 15 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		now := m.now()
		old := record{start: now.Add(-2 * time.Hour).UnixMilli(), values: valuesOf(map[string]json.RawMessage{"k": json.RawMessage(`"v"`)})}
		data := old.encode()
		if data[0] != recordV1 {
			t.Fatalf("the test record is format %d, want 1", data[0])
		}
		tok, id, _ := newToken()
		if _, err := st.Create(context.Background(), id, data, now.Add(time.Hour), "", now); err != nil {
			t.Fatal(err)
		}
		var got string
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, _, _ = Get[string](FromContext(r.Context()), "k")
		}))
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: m.CookieName(), Value: tok})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got != "v" || w.Code != 200 {
			t.Fatalf("format 1 record: %d, read %q", w.Code, got)
		}
		b, _, exp, found, err := st.Load(context.Background(), id, m.now())
		if err != nil || !found {
			t.Fatalf("after the read: found %v, %v", found, err)
		}
		rec, err := decodeRecord(b)
		if err != nil || b[0] != recordVersion || rec.active != now.UnixMilli() || rec.idleUsed != (15*time.Minute).Milliseconds() {
			t.Errorf("the record was not rewritten in format 2: format %d, active %d, idle in force %d, %v", b[0], rec.active, rec.idleUsed, err)
		}
		if want := now.Add(15 * time.Minute); !exp.Equal(want) {
			t.Errorf("rewritten expiry %v, want %v", exp, want)
		}
	})
}

// TestLiveUsesTheLaterActivity checks the last-activity bound live
// computes from the last write and the last touch.
func TestLiveUsesTheLaterActivity(t *testing.T) {
	m, err := New(newMapStore(), &Options{IdleTimeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	base := time.UnixMilli(1_800_000_000_000)
	min := func(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }
	tests := []struct {
		name   string
		rec    record
		expiry time.Time
		now    time.Time
		want   bool
	}{
		{"written 5 min ago", record{start: base.UnixMilli(), active: min(0).UnixMilli(), idleUsed: 600_000}, min(10), min(5), true},
		{"written 11 min ago, never touched", record{start: base.UnixMilli(), active: min(0).UnixMilli(), idleUsed: 3_600_000}, min(60), min(11), false},
		{"written long ago, touched 5 min ago", record{start: base.UnixMilli(), active: min(0).UnixMilli(), idleUsed: 3_600_000}, min(95), min(40), true},
		{"format 1: not checkable", record{start: base.UnixMilli()}, min(60), min(50), true},
		{"no idle in force when written", record{start: base.UnixMilli(), active: min(0).UnixMilli()}, min(600), min(11), false},
		{"past the lifetime", record{start: base.UnixMilli(), active: min(0).UnixMilli()}, min(600), base.Add(25 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.live(&tt.rec, tt.expiry, tt.now); got != tt.want {
				t.Errorf("live = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestClientSideUpdateSealsOnce: an Update seals the cookie when it
// saves; the commit sends that cookie and does not seal it again (a second
// seal would cost as much as the first).
func TestClientSideUpdateSealsOnce(t *testing.T) {
	m, err := NewClientSide(&Options{Keys: [][]byte{make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	var sealed string
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		if _, err := Update(s, "n", func(n int) int { return n + 1 }); err != nil {
			t.Fatal(err)
		}
		sealed = s.token
	}))
	var cookie *http.Cookie
	for range 2 {
		r := httptest.NewRequest("GET", "/", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		cookie = w.Result().Cookies()[0]
		if cookie.Value != sealed {
			t.Errorf("the commit sealed the cookie again: sent %.20q..., Update sealed %.20q...", cookie.Value, sealed)
		}
	}
}
