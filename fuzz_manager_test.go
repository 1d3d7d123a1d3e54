package sessions_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// Fuzz targets that drive the Manager itself: the fuzzer writes a program,
// a sequence of requests (which cookie each carries, what its handler
// does), run against a Manager on memstore (FuzzManager) or a client-side
// one (FuzzManagerClientSide), and every response is checked:
//
//   - no panic, no 5xx: bad input is never a server error;
//   - a request whose handler does not touch its session gets no
//     Set-Cookie, and the store no record;
//   - an unknown, forged or tampered cookie creates no record and gets no
//     Set-Cookie on a read, and is never adopted: a write gets a fresh
//     token, never the one the client sent;
//   - a token the server ended (destroyed, renewed away) names no session
//     afterwards.

// fzAction is what a request's handler does with its session.
type fzAction uint8

const (
	fzUntouched fzAction = iota
	fzRead
	fzSet
	fzIncr
	fzRenew
	fzDestroy
	fzIdle
	fzDeadline
	fzLogin
	fzPop
	fzStatus
	fzActions
)

// writes reports whether the action can write the session.
func (a fzAction) writes() bool { return a != fzUntouched && a != fzRead && a != fzStatus }

// fzCookie is which cookie a request carries.
type fzCookie uint8

const (
	fzNone fzCookie = iota
	fzLatest
	fzEarlier   // an earlier token the server issued, maybe ended
	fzJunk      // bytes from the fuzzer
	fzUnknown   // well-formed, never issued
	fzTampered  // the latest, one character changed
	fzDuplicate // junk and the latest, both with the name
	fzCookies
)

func fzHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := strconv.Atoi(r.URL.Query().Get("a"))
		arg, _ := strconv.Atoi(r.URL.Query().Get("n"))
		action := fzAction(a)
		if action == fzUntouched {
			_, _ = w.Write([]byte("untouched"))
			return
		}
		s := sessions.FromContext(r.Context())
		st, err := s.Status()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		live := st&sessions.StatusNew == 0
		switch action {
		case fzRead:
			_, _, err = sessions.Get[string](s, "k")
		case fzSet:
			err = s.Set("k", strings.Repeat("v", arg%64))
		case fzIncr:
			_, err = sessions.Update(s, "n", func(n int) int { return n + 1 })
		case fzRenew:
			err = s.Renew()
		case fzDestroy:
			err = s.Destroy()
		case fzIdle:
			err = s.SetIdleTimeout(time.Duration(arg%7200) * time.Second)
		case fzDeadline:
			err = s.SetDeadline(time.Now().Add(time.Duration(arg%7200-60) * time.Second))
		case fzLogin:
			err = s.RenewAfterLogin("owner" + strconv.Itoa(arg%3))
		case fzPop:
			_, _, err = sessions.Pop[string](s, "k")
		case fzStatus:
			_, err = s.ID()
		}
		if err != nil {
			// Only a conflict with another request may fail here, and
			// these requests run one at a time.
			t.Errorf("action %d: %v", action, err)
		}
		if live {
			_, _ = w.Write([]byte("live"))
		} else {
			_, _ = w.Write([]byte("new"))
		}
	})
}

// fzRun runs the program on m (with store, nil for client-side sessions).
func fzRun(t *testing.T, m *sessions.Manager, store *memstore.Store, prog []byte, junk string) {
	h := m.Handler(fzHandler(t))
	name := m.CookieName()
	var issued []string        // every token the server handed out, in order
	ended := map[string]bool{} // the tokens the server ended
	records := func() int {
		if store == nil {
			return 0
		}
		return store.Len()
	}
	for i := 0; i+2 < len(prog) && i < 3*64; i += 3 {
		ck, action, arg := fzCookie(prog[i]%uint8(fzCookies)), fzAction(prog[i+1]%uint8(fzActions)), int(prog[i+2])
		var sent []string // the cookie values sent
		latest := ""
		if len(issued) > 0 {
			latest = issued[len(issued)-1]
		}
		unknown := false // the request carries no cookie the server issued
		switch ck {
		case fzLatest:
			sent = []string{latest}
		case fzEarlier:
			if len(issued) > 0 {
				sent = []string{issued[arg%len(issued)]}
			}
		case fzJunk:
			sent, unknown = []string{junk}, true
		case fzUnknown:
			b := bytes.Repeat([]byte{byte(arg), byte(i)}, 16)
			sent, unknown = []string{base64.RawURLEncoding.EncodeToString(b)}, true
		case fzTampered:
			if latest != "" {
				b := []byte(latest)
				b[arg%len(b)] ^= 1 + byte(arg>>4)%7
				if string(b) != latest && !slices.Contains(issued, string(b)) {
					sent, unknown = []string{string(b)}, true
				}
			}
		case fzDuplicate:
			sent = []string{junk, latest}
		}
		r := httptest.NewRequest(http.MethodGet, "/?a="+strconv.Itoa(int(action))+"&n="+strconv.Itoa(arg), nil)
		var hdr []string
		for _, v := range sent {
			if v != "" {
				hdr = append(hdr, name+"="+v)
			}
		}
		if len(hdr) > 0 {
			r.Header["Cookie"] = []string{strings.Join(hdr, "; ")}
		}
		before := records()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("step %d (cookie %d, action %d): status %d: %s", i/3, ck, action, res.StatusCode, w.Body)
		}
		var set []*http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == name {
				set = append(set, c)
			}
		}
		after := records()
		if action == fzUntouched {
			if len(set) > 0 || after != before {
				t.Fatalf("step %d: untouched request got %d Set-Cookie, records %d -> %d", i/3, len(set), before, after)
			}
			continue
		}
		if unknown && !action.writes() && (len(set) > 0 || after > before) {
			t.Fatalf("step %d: read with an unknown cookie got %d Set-Cookie, records %d -> %d", i/3, len(set), before, after)
		}
		if len(sent) == 1 && ended[sent[0]] && w.Body.String() != "new" {
			t.Fatalf("step %d: ended token named a session again", i/3)
		}
		for _, c := range set {
			if c.Value == "" || c.MaxAge < 0 {
				continue
			}
			if unknown && slices.Contains(sent, c.Value) {
				t.Fatalf("step %d: unknown cookie %q adopted", i/3, c.Value)
			}
			if !slices.Contains(issued, c.Value) {
				issued = append(issued, c.Value)
			}
		}
		// What the server ended: the token a destroy or renewal moved
		// away from, when the request named a live session.
		if len(sent) == 1 && w.Body.String() == "live" {
			switch action {
			case fzDestroy:
				ended[sent[0]] = true
			case fzRenew, fzLogin:
				for _, c := range set {
					if c.Value != "" && c.Value != sent[0] {
						ended[sent[0]] = true
					}
				}
			case fzDeadline:
				if len(set) > 0 && set[0].MaxAge < 0 {
					ended[sent[0]] = true
				}
			}
		}
	}
}

func fzSeeds(f *testing.F) {
	f.Add([]byte{0, byte(fzSet), 3, 1, byte(fzRead), 0, 1, byte(fzRenew), 0, 2, byte(fzRead), 0}, "x")
	f.Add([]byte{0, byte(fzLogin), 1, 1, byte(fzDestroy), 0, 2, byte(fzRead), 0, 2, byte(fzSet), 1}, "")
	f.Add([]byte{3, byte(fzRead), 0, 4, byte(fzSet), 5, 5, byte(fzIncr), 9, 6, byte(fzStatus), 0}, "\"; ;=")
	f.Add([]byte{0, byte(fzIncr), 0, 1, byte(fzIdle), 200, 1, byte(fzDeadline), 1, 1, byte(fzRead), 0}, strings.Repeat("A", 43))
	f.Add([]byte{0, byte(fzSet), 9, 6, byte(fzUntouched), 0, 1, byte(fzPop), 0, 5, byte(fzRenew), 0}, "junk")
}

// FuzzManager drives a Manager on memstore (with an idle timeout, so that
// reads touch) with the fuzzer's request sequences.
func FuzzManager(f *testing.F) {
	fzSeeds(f)
	f.Fuzz(func(t *testing.T, prog []byte, junk string) {
		st, err := memstore.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := sessions.New(st, &sessions.Options{
			CookieName: "sid", InsecureCookie: true, IdleTimeout: time.Hour, TouchInterval: time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		fzRun(t, m, st, prog, junk)
	})
}

// FuzzManagerClientSide drives a client-side Manager, with a revocation
// store so that ended cookies stay ended.
func FuzzManagerClientSide(f *testing.F) {
	fzSeeds(f)
	f.Fuzz(func(t *testing.T, prog []byte, junk string) {
		rev, err := memstore.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := sessions.NewClientSide(&sessions.Options{
			CookieName: "sid", InsecureCookie: true, IdleTimeout: time.Hour, TouchInterval: time.Millisecond,
			Keys: [][]byte{bytes.Repeat([]byte{3}, 32)}, Revocation: rev,
		})
		if err != nil {
			t.Fatal(err)
		}
		fzRun(t, m, nil, prog, junk)
	})
}
