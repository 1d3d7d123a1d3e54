package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// The contract of /expiry: "The response re-sends the cookie accordingly",
// on every call, also when the override does not move the effective
// deadline (issue 12).
func init() {
	cases = append(cases, testCase{"ExpiryResend", testExpiryResend, false, nil})
}

func testExpiryResend(t *testing.T, e *env) {
	// -lifetime 3s, /expiry?at= one minute ahead: the lifetime still ends
	// the session first, so the deadline does not move; the cookie is
	// re-sent all the same, with the deadline that holds.
	a := e.start(t, "-lifetime", "3s")
	c := newClient(a)
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	tok := c.token()
	at := fmt.Sprintf("/expiry?at=%d", untilUnix(time.Minute))
	for i := range 2 {
		r := c.get(t, at)
		want(t, r, http.StatusOK, "ok")
		wantMaxAge(t, a, r, 1, 3)
		// A sealed cookie changes with every write by design; a token stays.
		if ck := r.cookie(t, a.name); !e.kind.sealed && ck.Value != tok {
			t.Fatalf("call %d: /expiry changed the token", i+1)
		}
	}

	// The same override again, and requests that land in the same
	// millisecond (their idle deadline is the same): each response re-sends
	// the cookie.
	b := e.alongside(t).start(t)
	c = newClient(b)
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	for i := range 3 {
		r := c.get(t, "/expiry?idle=30")
		want(t, r, http.StatusOK, "ok")
		wantMaxAge(t, b, r, 29, 30)
		if i > 0 && !e.kind.sealed && r.cookie(t, b.name).Value != c.token() {
			t.Fatalf("call %d: /expiry changed the token", i+1)
		}
	}
	tok = c.token()
	const burst = 8
	results := make([]*result, burst)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range burst {
		wg.Go(func() {
			<-start
			results[i] = b.get(t, "/expiry?idle=30", tok)
		})
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		want(t, r, http.StatusOK, "ok")
		ck := r.cookie(t, b.name)
		if ck == nil || (!e.kind.sealed && ck.Value != tok) {
			t.Fatalf("concurrent call %d: want the cookie re-sent with the same token, got %q", i+1, r.header.Values("Set-Cookie"))
		}
		wantMaxAge(t, b, r, 29, 30)
	}
}
