// Command nethttp shows sessions with nothing but the standard library:
// login, a per-user counter and logout on an http.ServeMux.
//
//	go run ./nethttp
//
// Then:
//
//	curl -c jar -b jar -d name=alice http://127.0.0.1:3000/login
//	curl -c jar -b jar http://127.0.0.1:3000/
//	curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
//
// No adapter is needed: Manager.Handler wraps the mux. It serves plain
// HTTP, so it turns off the cookie's Secure attribute
// (sessions.Options.InsecureCookie); a production server behind TLS must
// not.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

var (
	user  = sessions.Key[string]("user")
	views = sessions.Key[int]("views")
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen on `HOST:PORT`")
	flag.Parse()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.New(store, &sessions.Options{
		InsecureCookie: true, // plain HTTP demo; never in production
		IdleTimeout:    30 * time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: handler(m), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("nethttp example listening on http://%s/\n", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// handler returns the application: the routes, wrapped in the sessions
// middleware.
func handler(m *sessions.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", counter)
	mux.HandleFunc("POST /login", login)
	mux.HandleFunc("POST /logout", logout)
	return m.Handler(mux)
}

// counter counts the views of the session's visitor.
func counter(w http.ResponseWriter, r *http.Request) {
	s := sessions.FromContext(r.Context())
	name, _, err := user.Get(s)
	if err != nil {
		unavailable(w, err)
		return
	}
	n, err := views.Update(s, func(n int) int { return n + 1 }) // saved at once, conflict-safe
	if err != nil {
		unavailable(w, err)
		return
	}
	if name == "" {
		name = "anonymous"
	}
	fmt.Fprintf(w, "%s: %d views\n", name, n)
}

// login starts a logged-in session. A real application checks a password
// first.
func login(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	if name == "" {
		http.Error(w, "name required", http.StatusBadRequest)
		return
	}
	s := sessions.FromContext(r.Context())
	// A new ID at every privilege change, so that an ID planted before
	// login is worthless; the owner enables "log out everywhere".
	if err := s.RenewAfterLogin(name); err != nil {
		unavailable(w, err)
		return
	}
	if err := user.Set(s, name); err != nil {
		unavailable(w, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session: its record is deleted and the cookie removed.
func logout(w http.ResponseWriter, r *http.Request) {
	if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
		unavailable(w, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func unavailable(w http.ResponseWriter, err error) {
	log.Printf("session: %v", err)
	http.Error(w, "session unavailable", http.StatusServiceUnavailable)
}
