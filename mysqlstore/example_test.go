package mysqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers the "mysql" driver

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/mysqlstore"
)

// The store plugged into the middleware: a *sql.DB from any MySQL driver
// (the store needs no particular DSN parameter), CreateTable at start-up,
// and Sweep in its own goroutine to remove expired rows.
func Example() {
	db, err := sql.Open("mysql", "app:secret@tcp(127.0.0.1:3306)/app")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	store, err := mysqlstore.New(db, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // releases the prepared statements
	ctx := context.Background()
	if err := store.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}

	m, err := sessions.New(store, nil)
	if err != nil {
		log.Fatal(err)
	}
	go m.Sweep(ctx, 10*time.Minute)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "views", func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%d views\n", n)
	})
	log.Fatal(http.ListenAndServe("localhost:8080", m.Handler(mux)))
}

// A table of its own name, swept in smaller batches, and the Store methods
// used directly, as the Manager uses them.
func ExampleNew() {
	db, err := sql.Open("mysql", "app:secret@tcp(127.0.0.1:3306)/app")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	store, err := mysqlstore.New(db, &mysqlstore.Options{Table: "web_sessions", SweepBatch: 500})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}

	// Ids are the hexadecimal SHA-256 of a session token.
	const id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	now := time.Now()
	created, err := store.Create(ctx, id, []byte(`{"user":"42"}`), now.Add(time.Hour), "user-42", now)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created)

	data, version, expiry, found, err := store.Load(ctx, id, now)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found, string(data), version, expiry.After(now))

	// "Log out everywhere" for user-42.
	n, err := store.DeleteOwner(ctx, "user-42", now)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ended", n, "sessions")
}
