// Command chi shows sessions with the chi router: login, a per-user
// counter, a route group only for logged-in users, and logout.
//
//	go run ./chi
//
// Then:
//
//	curl -c jar -b jar -d name=alice http://127.0.0.1:3000/login
//	curl -c jar -b jar http://127.0.0.1:3000/
//	curl -c jar -b jar http://127.0.0.1:3000/account/
//	curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
//
// No adapter is needed: chi middlewares are func(http.Handler)
// http.Handler, which is what Manager.Handler is. It serves plain HTTP, so
// it turns off the cookie's Secure attribute
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

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
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
	srv := &http.Server{Addr: *addr, Handler: router(m), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("chi example listening on http://%s/\n", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// router returns the application. The sessions middleware comes after
// Recoverer, so that a panicking handler saves nothing: Recoverer's 500
// goes out around the middleware, not through its commit.
func router(m *sessions.Manager) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, m.Handler)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		n, err := views.Update(s, func(n int) int { return n + 1 }) // saved at once, conflict-safe
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintf(w, "%s: %d views\n", currentUser(r), n)
	})
	r.Post("/login", func(w http.ResponseWriter, r *http.Request) {
		name := r.PostFormValue("name") // a real application checks a password here
		if name == "" {
			http.Error(w, "name required", http.StatusBadRequest)
			return
		}
		s := sessions.FromContext(r.Context())
		// A new ID at every privilege change; the owner enables "log out
		// everywhere" (Manager.DestroyOwner).
		if err := s.RenewAfterLogin(name); err != nil {
			fail(w, err)
			return
		}
		if err := user.Set(s, name); err != nil {
			fail(w, err)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	r.Post("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
			fail(w, err)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	r.Route("/account", func(r chi.Router) {
		r.Use(requireLogin)
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "account of %s\n", currentUser(r))
		})
	})
	return r
}

// requireLogin answers 401 to visitors who have not logged in.
func requireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok, err := user.Get(sessions.FromContext(r.Context()))
		switch {
		case err != nil:
			fail(w, err)
		case !ok:
			http.Error(w, "log in first", http.StatusUnauthorized)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// currentUser returns the logged-in user's name, or "anonymous".
func currentUser(r *http.Request) string {
	if name, ok, _ := user.Get(sessions.FromContext(r.Context())); ok {
		return name
	}
	return "anonymous"
}

func fail(w http.ResponseWriter, err error) {
	log.Printf("session: %v", err)
	http.Error(w, "session unavailable", http.StatusServiceUnavailable)
}
