package gorillamigrate_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	gorilla "github.com/gorilla/sessions"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/gorillamigrate"
	"github.com/sessionkit/sessions/memstore"
)

// A user arrives with the cookie the old gorilla CookieStore set; the
// first request copies its values into a sessionkit session and removes
// the old cookie, so the user stays logged in across the switch.
func Example() {
	hashKey := []byte("the-old-cookie-store-hash-key-32")

	// The cookie as the old application set it.
	old := gorilla.NewCookieStore(hashKey)
	r0 := httptest.NewRequest("GET", "/", nil)
	w0 := httptest.NewRecorder()
	gs, _ := old.Get(r0, "app")
	gs.Values["user"] = "alice"
	gs.Save(r0, w0)
	gorillaCookie := w0.Result().Cookies()[0]

	// The new application: sessionkit, with the migration inside the Manager.
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, nil)
	mig, err := gorillamigrate.New(m, &gorillamigrate.Options{CookieName: "app", KeyPairs: [][]byte{hashKey}})
	if err != nil {
		log.Fatal(err)
	}
	h := m.Handler(mig.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := sessions.Value[string](sessions.FromContext(r.Context()), "user")
		fmt.Fprintf(w, "hello %s", user)
	})))

	r := httptest.NewRequest("GET", "https://app.example/", nil)
	r.AddCookie(gorillaCookie)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Body.String())
	for _, c := range w.Result().Cookies() {
		fmt.Printf("%s removed: %v\n", c.Name, c.MaxAge < 0)
	}
	// Output:
	// hello alice
	// app removed: true
	// __Host-session removed: false
}
