package sessions_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// The whole life of a session: a handler counts visits, and a browser-like
// client with a cookie jar calls it three times.
func Example() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.New(store, nil) // the zero Options are the secure defaults
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		n, err := sessions.Update(s, "visits", func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "visit %d", n)
	})
	srv := httptest.NewTLSServer(m.Handler(mux)) // the cookie is Secure: serve TLS
	defer srv.Close()

	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		var body string
		fmt.Fscan(resp.Body, &body, &body)
		resp.Body.Close()
		fmt.Println("visit", body)
	}
	// Output:
	// visit 1
	// visit 2
	// visit 3
}

// A typed key declares a session value's type once.
func ExampleKey() {
	type Cart struct{ Items []string }
	cart := sessions.Key[Cart]("cart")

	handler := func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		c, _, err := cart.Get(s)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		c.Items = append(c.Items, r.FormValue("item"))
		if err := cart.Set(s, c); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, len(c.Items), "items")
	}
	_ = handler
}

// Flash messages are read once with Pop.
func ExamplePop() {
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, nil)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		if r.URL.Path == "/save" {
			s.Set("flash", "Saved.")
			return
		}
		msg, ok, _ := sessions.Pop[string](s, "flash")
		fmt.Println(msg, ok)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/save", nil))
	cookie := w.Result().Cookies()[0]
	for range 2 {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(cookie)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// Saved. true
	//  false
}

// At login, renew the session ID (defeating session fixation), tag the
// session with its user, and start a fresh absolute lifetime. "Log out
// everywhere" then ends every session of that user.
func ExampleSession_RenewAfterLogin() {
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, nil)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		// ... after checking the user's credentials:
		if err := s.RenewAfterLogin("user-42"); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		s.Set("user", "user-42")
	}))
	for range 2 { // two devices log in
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil))
	}
	ids, _ := m.ListOwner(context.Background(), "user-42")
	fmt.Println(len(ids), "sessions")
	n, _ := m.DestroyOwner(context.Background(), "user-42")
	fmt.Println(n, "ended")
	// Output:
	// 2 sessions
	// 2 ended
}
