package auth_test

import (
	"net/http"
	"sync"
	"testing"
)

// A password change on device A racing a request on device B: B's request
// either completes with what it loaded before the change, never saving
// over the change, or sees the new secret and is logged out; B's next
// request is logged out either way, and A stays logged in. Each case is a
// fixed interleaving, enforced with channels.
func TestPasswordChangeRacesRequest(t *testing.T) {
	tests := []struct {
		name string
		// pauseInLoad: B pauses inside LoadUser, after its session was
		// loaded and before its user is read; otherwise B pauses after
		// User returned, before it writes to its session and commits.
		pauseInLoad  bool
		noOwnerIndex bool
		wantInFlight bool // B's paused request still sees the user
		wantCode     int  // status of B's paused request
	}{
		{"change between B's user load and B's commit", false, false, true, http.StatusConflict},
		{"change between B's user load and B's commit, no owner index", false, true, true, http.StatusOK},
		{"change between B's session load and B's user load", true, false, false, http.StatusOK},
		{"change between B's session load and B's user load, no owner index", true, true, false, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, &envOptions{noOwnerIndex: tt.noOwnerIndex})
			a, b := e.device(firefoxUA, "192.0.2.1"), e.device(chromeUA, "198.51.100.7")
			a.login("alice", false)
			b.login("alice", false)
			a.who()
			b.who()

			paused, resume := make(chan struct{}), make(chan struct{})
			var pauseOnce sync.Once
			pause := func() { pauseOnce.Do(func() { close(paused); <-resume }) }
			if tt.pauseInLoad {
				e.db.mu.Lock()
				e.db.hook = func(string) { pause() }
				e.db.mu.Unlock()
			}
			var (
				inFlight bool
				code     int
				wg       sync.WaitGroup
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := b.do(func(w http.ResponseWriter, r *http.Request) {
					_, inFlight, _ = e.a.User(r)
					if !tt.pauseInLoad {
						pause()
					}
					if inFlight {
						_ = e.m.FromContext(r.Context()).Set("note", "written by B")
					}
				})
				code = w.Code
			}()
			<-paused
			e.db.mu.Lock()
			e.db.hook = nil
			e.db.mu.Unlock()
			var err error
			a.do(func(w http.ResponseWriter, r *http.Request) {
				err = e.a.UpdateSessionAuthHash(r, e.db.setPassword("alice", "hash-a2"))
			})
			if err != nil {
				t.Fatalf("UpdateSessionAuthHash: %v", err)
			}
			close(resume)
			wg.Wait()
			if inFlight != tt.wantInFlight || code != tt.wantCode {
				t.Errorf("B's racing request: user %v, status %d; want %v, %d", inFlight, code, tt.wantInFlight, tt.wantCode)
			}
			if got := b.who(); got != "" {
				t.Errorf("B's next request: user %q, want logged out", got)
			}
			if got := a.who(); got != "alice" {
				t.Errorf("A: user %q, want alice", got)
			}
		})
	}
}

// "Log out everywhere" on device A racing a login on device C. A login
// whose new session record exists when the logout runs is logged out,
// even if the login's response is still on its way (the record is
// deleted, the cookie names nothing); a login whose record is created
// after the logout returned stays logged in, as any later login.
func TestLogoutEverywhereRacesLogin(t *testing.T) {
	tests := []struct {
		name     string
		pauseAt  string // the store call of C's login commit that waits for the logout
		wantC    string
		wantDone int // sessions the logout ended
	}{
		{"login creates its record after the logout", "create", "alice", 1},
		{"login created its record, not yet retired the old one", "update", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			a, c := e.device(firefoxUA, "192.0.2.1"), e.device(chromeUA, "198.51.100.7")
			a.login("alice", false)
			a.who()
			// C has an anonymous session, so its login renews it: create
			// the new record, then retire the old one.
			c.do(func(w http.ResponseWriter, r *http.Request) { _ = e.m.FromContext(r.Context()).Set("cart", 1) })

			reached, release := e.pauseAt(tt.pauseAt)
			var (
				wg       sync.WaitGroup
				loginErr error
				code     int
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := c.do(func(w http.ResponseWriter, r *http.Request) {
					loginErr = e.a.Login(r, e.db.get("alice"), false)
				})
				code = w.Code
			}()
			<-reached
			var (
				n   int
				err error
			)
			a.do(func(w http.ResponseWriter, r *http.Request) { n, err = e.a.LogoutEverywhere(r) })
			release()
			wg.Wait()
			e.hs.setHook(nil)
			if err != nil || n != tt.wantDone {
				t.Errorf("LogoutEverywhere: %d, %v; want %d", n, err, tt.wantDone)
			}
			if loginErr != nil || code != http.StatusOK {
				t.Errorf("C's login: %v, status %d", loginErr, code)
			}
			if got := a.who(); got != "" {
				t.Errorf("A after logging out everywhere: %q", got)
			}
			if got := c.who(); got != tt.wantC {
				t.Errorf("C after the race: user %q, want %q", got, tt.wantC)
			}
		})
	}
}
