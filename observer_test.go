package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
)

// recorder is an Observer that records every store call as
// "op/outcome/attempt" and checks that the store got its context.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

type obsKey struct{}

func (o *recorder) StoreCall(ctx context.Context, c sessions.StoreCall) (context.Context, func(sessions.StoreResult)) {
	return context.WithValue(ctx, obsKey{}, c.Op), func(r sessions.StoreResult) {
		o.mu.Lock()
		defer o.mu.Unlock()
		s := fmt.Sprintf("%s/%s/%d", c.Op, r.Outcome, c.Attempt)
		if r.Outcome == sessions.OutcomeError && r.Err == nil {
			s += "/no error"
		}
		o.calls = append(o.calls, s)
	}
}

func (o *recorder) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.calls
	o.calls = nil
	return c
}

// ctxCheckStore fails every call whose context lacks the observer's value.
type ctxCheckStore struct{ *stepStore }

func (s ctxCheckStore) check(ctx context.Context) error {
	if ctx.Value(obsKey{}) == nil {
		return errors.New("the store did not get the observer's context")
	}
	return nil
}

func (s ctxCheckStore) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	return s.stepStore.Load(ctx, id, now)
}

// TestObserverSeesStoreCalls: every store call is reported once, with its
// operation, outcome and attempt; an untouched request reports nothing.
func TestObserverSeesStoreCalls(t *testing.T) {
	obs := &recorder{}
	st := newStepStore()
	m := mustNew(t, ctxCheckStore{st}, &sessions.Options{Observer: obs, IdleTimeout: time.Hour, TouchInterval: time.Nanosecond})
	c := newClient(t, m, logoutHandler(t, m))
	other := newClient(t, m, logoutHandler(t, m))
	var old *http.Cookie
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"untouched", func() { c.get("/") }, nil},
		{"new session", func() { c.get("/login?user=alice") }, []string{"create/created/1"}},
		{"read", func() { time.Sleep(2 * time.Millisecond); c.get("/get?k=a") }, []string{"load/found/1", "touch/found/1"}},
		{"conflict", func() {
			other.cookie = c.cookie
			st.at(isOp("Update"), func() { other.get("/incr") })
			c.get("/incr")
			st.before = nil
		}, []string{"load/found/1", "load/found/1", "update/updated/1", "update/changed/1", "load/found/1", "update/updated/2"}},
		{"renew", func() { c.get("/renew") }, []string{"load/found/1", "create/created/1", "retire/updated/1", "delete/ok/1"}},
		{"logout everywhere", func() {
			old = c.cookie
			c.get("/logout-everywhere?user=alice")
			if c.cookie != nil {
				t.Error("logging out everywhere left the cookie")
			}
		}, []string{"load/found/1", "delete-owner/ok/1", "list-owner/ok/1"}},
		{"unknown cookie", func() { c.cookie = old; c.get("/get?k=a") }, []string{"load/not-found/1"}},
	}
	for _, s := range steps {
		obs.take()
		s.do()
		got := obs.take()
		if s.name == "conflict" {
			slices.Sort(got) // the other request's calls interleave
			slices.Sort(s.want)
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: observed %q, want %q", s.name, got, s.want)
		}
	}
	// A failing store is reported as an error with the store's error.
	st.before = nil
	hs := &hookStore{Store: mem()}
	m = mustNew(t, hs, &sessions.Options{Observer: obs})
	c = newClient(t, m, testHandler(t))
	hs.create = func(context.Context, string, []byte, time.Time, string, time.Time) (bool, error) {
		return false, errors.New("down")
	}
	obs.take()
	c.get("/set?k=a&v=1")
	if got := obs.take(); !slices.Equal(got, []string{"create/error/1"}) {
		t.Errorf("failing create: observed %q", got)
	}
}
