package sessions

import (
	"context"
	"sync"
	"time"
)

// begin returns the context of one store call of op: ctx (as the observer
// returns it, if there is one) with a deadline StoreTimeout away. The
// caller calls finish when the store call returns.
func (m *Manager) begin(ctx context.Context, op StoreOp, attempt int) *callContext {
	var end func(StoreResult)
	if o := m.cfg.Observer; o != nil {
		ctx, end = o.StoreCall(ctx, StoreCall{Op: op, Attempt: attempt})
	}
	return &callContext{parent: ctx, deadline: time.Now().Add(m.cfg.StoreTimeout), end: end}
}

// callContext is a context with a deadline whose timer is created only when
// a store asks for Done. A store that completes in process and only checks
// Err (memstore) never pays for a timer, which is most of the cost of
// context.WithTimeout; a network store that selects on Done gets exactly
// the context.WithDeadline it would have had.
type callContext struct {
	parent   context.Context
	deadline time.Time

	end func(StoreResult) // the observer's, if any

	mu     sync.Mutex
	inner  context.Context // the real deadline context, once Done was called
	cancel context.CancelFunc
	done   bool // released
}

func (c *callContext) materialize() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		c.inner, c.cancel = context.WithDeadline(c.parent, c.deadline)
		if c.done {
			c.cancel()
		}
	}
	return c.inner
}

func (c *callContext) current() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inner
}

func (c *callContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *callContext) Done() <-chan struct{} { return c.materialize().Done() }

func (c *callContext) Err() error {
	c.mu.Lock()
	inner, released := c.inner, c.done
	c.mu.Unlock()
	if inner != nil {
		return inner.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if released {
		return context.Canceled
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *callContext) Value(key any) any {
	// Once the real context exists, it answers, so that contexts derived
	// from this one see it as their parent (context's internal lookups go
	// through Value).
	if inner := c.current(); inner != nil {
		return inner.Value(key)
	}
	return c.parent.Value(key)
}

// finish releases c and tells the observer, if any, how the call ended.
func (c *callContext) finish(outcome Outcome, err error) {
	c.release()
	if c.end != nil {
		if err != nil {
			outcome = OutcomeError
		}
		c.end(StoreResult{Outcome: outcome, Err: err})
	}
}

func (c *callContext) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.cancel != nil {
		c.cancel()
	}
}
