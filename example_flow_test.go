package sessions_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// browse serves h over TLS and returns a function that GETs a path with a
// cookie jar and returns the body, as a browser would.
func browse(h http.Handler) (get func(path string) string, done func()) {
	srv := httptest.NewTLSServer(h)
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	return func(path string) string {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}, srv.Close
}

// Flash messages: a form handler adds one and redirects; the next page
// shows it once. AddFlash is saved with the response and never loses a
// message that a concurrent request adds.
func ExampleAddFlash() {
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/save", func(w http.ResponseWriter, r *http.Request) {
		sessions.AddFlash(sessions.FromContext(r.Context()), "flash", "Saved.")
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		msgs, _ := sessions.Flashes[string](sessions.FromContext(r.Context()), "flash")
		fmt.Fprintf(w, "messages: %q", msgs)
	})
	get, done := browse(m.Handler(mux))
	defer done()
	fmt.Println(get("/save"))
	fmt.Println(get("/"))
	// Output:
	// messages: ["Saved."]
	// messages: []
}

// Remember me: cookies last until the browser closes, unless the user
// ticks "remember me" at login; then the session gets a persistent cookie
// and Options.RememberLifetime.
func ExampleSession_Remember() {
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, &sessions.Options{BrowserSessionCookie: true})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		// ... after checking the user's credentials:
		if err := s.RenewAfterLogin("alice"); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		if r.FormValue("remember") == "on" {
			s.Remember(true)
		}
	}))
	for _, target := range []string{"/login", "/login?remember=on"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "https://app.example"+target, nil))
		c := w.Result().Cookies()[0]
		fmt.Printf("%s: Max-Age %d\n", target, c.MaxAge)
	}
	// Output:
	// /login: Max-Age 0
	// /login?remember=on: Max-Age 2592000
}

// Log out everywhere: DestroyOwner ends every session of the user, the
// current one included (its response removes the cookie).
func ExampleManager_DestroyOwner() {
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		sessions.FromContext(r.Context()).RenewAfterLogin("alice")
	})
	mux.HandleFunc("/logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.DestroyOwner(r.Context(), "alice")
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ended %d sessions", n)
	})
	phone, done1 := browse(m.Handler(mux))
	defer done1()
	laptop, done2 := browse(m.Handler(mux))
	defer done2()
	phone("/login")
	laptop("/login")
	fmt.Println(laptop("/logout-everywhere"))
	ids, _ := m.ListOwner(context.Background(), "alice")
	fmt.Println("left:", len(ids))
	// Output:
	// ended 2 sessions
	// left: 0
}

// Value reads without the (T, bool, error) boilerplate and hides no error:
// if the store failed, the response fails closed through
// Options.ErrorHandler unless the handler answers the failure itself,
// which Session.Err lets it check once.
func ExampleValue() {
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		sessions.FromContext(r.Context()).Set("theme", "dark")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		theme := sessions.Value[string](s, "theme")
		if err := s.Err(); err != nil {
			http.Error(w, "sessions are down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "theme %q", theme)
	})
	get, done := browse(m.Handler(mux))
	defer done()
	fmt.Println(get("/"))
	get("/set")
	fmt.Println(get("/"))
	// Output:
	// theme ""
	// theme "dark"
}

// Client-side sessions: the session lives in a sealed cookie, no store.
// Handlers are the same as with a server-side store.
func ExampleNewClientSide() {
	key := make([]byte, 32) // in production: 32 bytes from crypto/rand, kept secret
	m, err := sessions.NewClientSide(&sessions.Options{
		Keys:    [][]byte{key}, // a new key goes first; old ones stay until their cookies expire
		Purpose: "shop",        // a cookie sealed for another application never opens here
	})
	if err != nil {
		log.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "visits", func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d", n)
	}))
	get, done := browse(h)
	defer done()
	fmt.Println(get("/"))
	fmt.Println(get("/"))
	// Output:
	// visit 1
	// visit 2
}

// Signed tokens: with Options.Keys on a server-side store, a forged or
// random cookie is rejected before any store call.
func ExampleOptions_keys() {
	store, _ := memstore.New(nil)
	m, err := sessions.New(store, &sessions.Options{Keys: [][]byte{make([]byte, 32)}})
	if err != nil {
		log.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok, _ := sessions.Get[string](sessions.FromContext(r.Context()), "user")
		fmt.Fprintf(w, "session found: %v", ok)
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: m.CookieName(), Value: strings.Repeat("A", 43) + "." + strings.Repeat("A", 27)})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Body.String(), "records:", store.Len())
	// Output: session found: false records: 0
}
