package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/sessionkit/sessions"
)

// maxDelay bounds the delay parameter.
const maxDelay = 60 * time.Second

// app serves the conformance routes.
type app struct {
	m *sessions.Manager
}

func newApp(m *sessions.Manager) *app { return &app{m: m} }

// route is a handler of a route that touches the session; delay is the
// request's validated delay parameter.
type route func(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration)

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { text(w, http.StatusOK, "ok") })
	mux.Handle("/set", session(set))
	mux.Handle("/get", session(get))
	mux.Handle("/delete", session(del))
	mux.Handle("/incr", session(incr))
	mux.Handle("/keys", session(keys))
	mux.Handle("/clear", session(then((*sessions.Session).Clear)))
	mux.Handle("/destroy", session(then((*sessions.Session).Destroy)))
	mux.Handle("/renew", session(then((*sessions.Session).Renew)))
	mux.Handle("/status", session(status))
	mux.Handle("/expiry", session(expiry))
	mux.Handle("/login", session(login))
	mux.HandleFunc("/logout-all", a.logoutAll)
	return getOrPost(a.m.Handler(mux))
}

// getOrPost answers 405 to every method but GET and POST.
func getOrPost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			text(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// session parses the delay parameter and hands the request's session to f.
func session(f route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var delay time.Duration
		if v := r.FormValue("delay"); v != "" {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxDelay {
				text(w, http.StatusBadRequest, "delay: want milliseconds from 0 to 60000")
				return
			}
			delay = time.Duration(ms) * time.Millisecond
		}
		f(w, r, sessions.FromContext(r.Context()), delay)
	})
}

// sleep waits for d, or until the client goes away.
func sleep(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if bodyAllowed(code) {
		_, _ = w.Write([]byte(body))
	}
}

func jsonBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified && code >= 200
}

// tooLargeStatus answers a change too large for the session (the cookie
// kind sets 500, as its contract says).
var tooLargeStatus = http.StatusRequestEntityTooLarge

// fail answers a request whose session operation failed. A store failure
// is never taken for "no session"; the Manager sends no cookie with a 5xx.
func fail(w http.ResponseWriter, err error) {
	var tooLarge *sessions.TooLargeError
	switch {
	case errors.Is(err, sessions.ErrSessionGone):
		text(w, http.StatusConflict, "session ended by another request")
	case errors.As(err, &tooLarge):
		text(w, tooLargeStatus, err.Error())
	case errors.Is(err, sessions.ErrStore), errors.Is(err, sessions.ErrConflict):
		text(w, http.StatusServiceUnavailable, "session store unavailable")
	default:
		text(w, http.StatusInternalServerError, "session error")
	}
}

// jsonValue returns the "value" parameter if it is one JSON document.
func jsonValue(r *http.Request) (json.RawMessage, bool) {
	v := r.FormValue("value")
	if !json.Valid([]byte(v)) {
		return nil, false
	}
	return json.RawMessage(v), true
}

func set(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
	v, ok := jsonValue(r)
	if !ok {
		text(w, http.StatusBadRequest, "value: not a JSON document")
		return
	}
	if err := s.Set(r.FormValue("key"), v); err != nil {
		fail(w, err)
		return
	}
	sleep(r, delay)
	text(w, http.StatusOK, "ok")
}

func get(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
	v, ok, err := sessions.Get[json.RawMessage](s, r.FormValue("key"))
	if err != nil {
		fail(w, err)
		return
	}
	sleep(r, delay)
	if !ok {
		text(w, http.StatusNotFound, "not found")
		return
	}
	jsonBody(w, v)
}

func del(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
	if err := s.Delete(r.FormValue("key")); err != nil {
		fail(w, err)
		return
	}
	sleep(r, delay)
	text(w, http.StatusOK, "ok")
}

func incr(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
	key := r.FormValue("key")
	// Read first, sleep, then write: concurrent requests overlap between
	// their load and their save, and Update re-applies the increment on
	// the fresh value when another request saved first.
	raw, ok, err := sessions.Get[json.RawMessage](s, key)
	if err != nil {
		fail(w, err)
		return
	}
	if ok && !isCounter(raw) {
		text(w, http.StatusBadRequest, "the value is not an integer below 2^63-1")
		return
	}
	sleep(r, delay)
	notInt := false
	n, err := sessions.Update(s, key, func(raw json.RawMessage) json.RawMessage {
		var n int64
		if raw != nil {
			if !isCounter(raw) {
				notInt = true
				return raw
			}
			_ = json.Unmarshal(raw, &n)
		}
		notInt = false
		return json.RawMessage(strconv.FormatInt(n+1, 10))
	})
	if err != nil {
		fail(w, err)
		return
	}
	if notInt {
		text(w, http.StatusBadRequest, "the value is not an integer below 2^63-1")
		return
	}
	text(w, http.StatusOK, string(n))
}

// isCounter reports whether raw holds an integer that /incr can increment
// (null counts as 0).
func isCounter(raw json.RawMessage) bool {
	var n int64
	return json.Unmarshal(raw, &n) == nil && n != math.MaxInt64
}

func keys(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
	ks, err := s.Keys()
	if err != nil {
		fail(w, err)
		return
	}
	sleep(r, delay)
	body, err := json.Marshal(ks)
	if err != nil {
		fail(w, err)
		return
	}
	jsonBody(w, body)
}

// then returns a route that applies op to the session, sleeps the
// request's delay, and answers "ok".
func then(op func(*sessions.Session) error) func(http.ResponseWriter, *http.Request, *sessions.Session, time.Duration) {
	return func(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
		if err := op(s); err != nil {
			fail(w, err)
			return
		}
		sleep(r, delay)
		text(w, http.StatusOK, "ok")
	}
}

func status(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
	code, err := strconv.Atoi(r.FormValue("code"))
	if err != nil || code < 200 || code > 599 {
		text(w, http.StatusBadRequest, "code: want a status from 200 to 599")
		return
	}
	if r.FormValue("key") != "" || r.FormValue("value") != "" {
		v, ok := jsonValue(r)
		if !ok {
			text(w, http.StatusBadRequest, "value: not a JSON document")
			return
		}
		if err := s.Set(r.FormValue("key"), v); err != nil {
			fail(w, err)
			return
		}
		sleep(r, delay)
	}
	text(w, code, fmt.Sprintf("status %d", code))
}

func expiry(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
	_ = r.FormValue("") // parses the form
	var given []string
	for _, p := range []string{"idle", "at", "browser"} {
		if r.Form.Has(p) {
			given = append(given, p)
		}
	}
	if len(given) != 1 {
		text(w, http.StatusBadRequest, "want exactly one of idle, at and browser")
		return
	}
	v := r.Form.Get(given[0])
	var err error
	switch given[0] {
	case "idle":
		secs, perr := strconv.ParseFloat(v, 64)
		if perr != nil || math.IsNaN(secs) || secs < 0 || secs > 100*365*24*3600 {
			text(w, http.StatusBadRequest, "idle: want a number of seconds")
			return
		}
		err = s.SetIdleTimeout(time.Duration(secs * float64(time.Second)))
	case "at":
		unix, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || unix < -1<<40 || unix > 1<<40 {
			text(w, http.StatusBadRequest, "at: want Unix seconds")
			return
		}
		err = s.SetDeadline(time.Unix(unix, 0))
	case "browser":
		if v != "0" && v != "1" {
			text(w, http.StatusBadRequest, "browser: want 1 or 0")
			return
		}
		err = s.SetBrowserSession(v == "1")
	}
	if err != nil {
		fail(w, err)
		return
	}
	sleep(r, delay)
	text(w, http.StatusOK, "ok")
}

func login(w http.ResponseWriter, r *http.Request, s *sessions.Session, delay time.Duration) {
	if err := s.RenewAfterLogin(r.FormValue("user")); err != nil {
		fail(w, err)
		return
	}
	sleep(r, delay)
	text(w, http.StatusOK, "ok")
}

func (a *app) logoutAll(w http.ResponseWriter, r *http.Request) {
	n, err := a.m.DestroyOwner(r.Context(), r.FormValue("user"))
	switch {
	case errors.Is(err, sessions.ErrNotSupported):
		text(w, http.StatusNotImplemented, "the store has no owner index")
	case err != nil:
		fail(w, err)
	default:
		text(w, http.StatusOK, strconv.Itoa(n))
	}
}
