package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/sqlitestore"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// The store plugged into the middleware. A file database with a busy
// timeout and WAL, as the package documentation recommends; CreateTable at
// start-up; Sweep in its own goroutine to remove expired rows.
func Example() {
	db, err := sql.Open("sqlite", "file:sessions.db?"+
		"_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	store, err := sqlitestore.New(db, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(context.Background()); err != nil {
		log.Fatal(err)
	}

	m, err := sessions.New(store, nil)
	if err != nil {
		log.Fatal(err)
	}
	go m.Sweep(context.Background(), 10*time.Minute)

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

// The Store methods used directly, as the Manager uses them.
func ExampleStore() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "sessions.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	store, err := sqlitestore.New(db, &sqlitestore.Options{Table: "web_sessions"})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}

	// Ids are the hexadecimal SHA-256 of a session token.
	const id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	created, _ := store.Create(ctx, id, []byte(`{"user":"alice"}`), now.Add(time.Hour), "alice", now)
	again, _ := store.Create(ctx, id, []byte(`{}`), now.Add(time.Hour), "", now)
	fmt.Println("created:", created, "created again:", again)

	updated, found, _ := store.Update(ctx, id, 1, []byte(`{"user":"alice","cart":3}`), now.Add(time.Hour), "alice", now)
	fmt.Println("updated:", updated, found)
	updated, found, _ = store.Update(ctx, id, 1, []byte(`{}`), now.Add(time.Hour), "alice", now)
	fmt.Println("stale update:", updated, found)

	data, version, expiry, found, _ := store.Load(ctx, id, now)
	fmt.Printf("load: %s version %d expires %s found %v\n", data, version, expiry.UTC().Format(time.Kitchen), found)

	ids, _ := store.ListOwner(ctx, "alice", now)
	fmt.Println("alice's sessions:", len(ids))

	_, _, _, found, _ = store.Load(ctx, id, now.Add(time.Hour))
	fmt.Println("found after expiry:", found)
	n, _ := store.DeleteExpired(ctx, now.Add(time.Hour))
	fmt.Println("swept:", n)
	// Output:
	// created: true created again: false
	// updated: true true
	// stale update: false true
	// load: {"user":"alice","cart":3} version 2 expires 1:00PM found true
	// alice's sessions: 1
	// found after expiry: false
	// swept: 1
}
