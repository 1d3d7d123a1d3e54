package auth_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/auth"
	"github.com/sessionkit/sessions/memstore"
)

// Account is an application's user.
type Account struct {
	ID, Name     string
	PasswordHash string // bcrypt or argon2id in a real application
}

// Accounts is the application's user table; it implements auth.Users.
type Accounts map[string]*Account

func (a Accounts) LoadUser(_ context.Context, id string) (*Account, bool, error) {
	u, ok := a[id]
	return u, ok, nil
}
func (Accounts) UserID(u *Account) string        { return u.ID }
func (Accounts) SessionSecret(u *Account) []byte { return []byte(u.PasswordHash) }

// client returns a function that sends a request to srv with a cookie
// jar of its own, as a browser would, and prints the status and the body
// (or where a redirect goes).
func client(srv *httptest.Server) func(method, path string, form url.Values) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{
		Transport: srv.Client().Transport, // trusts srv's certificate
		Jar:       jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // print redirects, do not follow them
		},
	}
	return func(method, path string, form url.Values) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if loc := resp.Header.Get("Location"); loc != "" {
			fmt.Println(resp.StatusCode, "->", loc)
			return
		}
		fmt.Println(strings.TrimSpace(fmt.Sprint(resp.StatusCode, " ", strings.TrimSpace(string(body)))))
	}
}

// A login flow: a private page redirects to the login page, the login
// form's handler checks the password and calls Login, the private page
// greets the user, and Logout ends the session.
func Example() {
	users := Accounts{"42": {ID: "42", Name: "Alice", PasswordHash: "h1"}}
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, nil)
	a, err := auth.New(m, users, &auth.Options{
		Key:         []byte("an example key of 32 bytes or more, from crypto/rand"),
		DeviceStore: store,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		u := users[r.FormValue("id")]
		if u == nil || r.FormValue("password") != "secret" { // check the hash in a real application
			http.Error(w, "wrong user or password", http.StatusUnauthorized)
			return
		}
		if err := a.Login(r, u, r.FormValue("remember") == "on"); err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, auth.SafeNext(r.FormValue("next"), "/"), http.StatusSeeOther)
	})
	mux.Handle("GET /{$}", a.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _, _ := a.User(r) // RequireUser loaded it: no second load
		fmt.Fprintf(w, "Hello, %s.", u.Name)
	})))
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Logout(r); err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	srv := httptest.NewTLSServer(m.Handler(a.Middleware(mux)))
	defer srv.Close()
	do := client(srv)

	do("GET", "/", nil)
	do("POST", "/login", url.Values{"id": {"42"}, "password": {"wrong"}})
	do("POST", "/login", url.Values{"id": {"42"}, "password": {"secret"}, "next": {"/"}})
	do("GET", "/", nil)
	do("POST", "/logout", nil)
	do("GET", "/", nil)
	// Output:
	// 303 -> /login?next=%2F
	// 401 wrong user or password
	// 303 -> /
	// 200 Hello, Alice.
	// 303 -> /login
	// 303 -> /login?next=%2F
}

// After a user changes their own password, UpdateSessionAuthHash keeps the
// current session logged in; every other session of the user is logged
// out.
func ExampleAuth_UpdateSessionAuthHash() {
	users := Accounts{"42": {ID: "42", Name: "Alice", PasswordHash: "h1"}}
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, nil)
	a, _ := auth.New(m, users, &auth.Options{Key: []byte("an example key of 32 bytes or more, from crypto/rand")})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		_ = a.Login(r, users["42"], false)
	})
	mux.HandleFunc("POST /password", func(w http.ResponseWriter, r *http.Request) {
		u, ok, _ := a.User(r)
		if !ok {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		u.PasswordHash = "h2" // the new password's hash, saved
		if err := a.UpdateSessionAuthHash(r, u); err != nil {
			http.Error(w, "try again", http.StatusInternalServerError)
		}
	})
	mux.Handle("GET /{$}", a.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "private page")
	})))
	srv := httptest.NewTLSServer(m.Handler(a.Middleware(mux)))
	defer srv.Close()
	laptop, phone := client(srv), client(srv)
	laptop("POST", "/login", nil)
	phone("POST", "/login", nil)
	laptop("POST", "/password", nil)
	laptop("GET", "/", nil)
	phone("GET", "/", nil)
	// Output:
	// 200
	// 200
	// 200
	// 200 private page
	// 303 -> /login?next=%2F
}

func ExampleShortUserAgent() {
	fmt.Println(auth.ShortUserAgent("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"))
	fmt.Println(auth.ShortUserAgent("curl/8.5.0"))
	// Output:
	// Firefox 133 on Linux
	// curl/8.5.0
}

// SafeNext keeps a login link from sending the user to another site.
func ExampleSafeNext() {
	fmt.Println(auth.SafeNext("/devices?tab=2", "/"))
	fmt.Println(auth.SafeNext("//evil.example/", "/"))
	fmt.Println(auth.SafeNext("https://evil.example/", "/"))
	// Output:
	// /devices?tab=2
	// /
	// /
}
