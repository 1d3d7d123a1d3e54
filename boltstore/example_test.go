package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/boltstore"
)

// The store plugged into the middleware: one file, opened at start-up and
// closed at exit, and Sweep in its own goroutine to remove expired records.
func Example() {
	store, err := boltstore.Open("sessions.bolt", nil) // one process at a time
	if err != nil {
		log.Fatal(err) // e.g. the file is locked: another instance is running
	}
	defer store.Close()

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

// The Store methods used directly, as the Manager uses them, and what a
// second Open of the same file gets.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "boltstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sessions.bolt")

	store, err := boltstore.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	ctx := context.Background()
	// Ids are the hexadecimal SHA-256 of a session token.
	const id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	now := time.Now()
	created, err := store.Create(ctx, id, []byte(`{"user":"42"}`), now.Add(time.Hour), "user-42", now)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created)

	data, version, _, found, err := store.Load(ctx, id, now)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found, string(data), version)

	// The file has one owner at a time.
	_, err = boltstore.Open(path, &boltstore.Options{OpenTimeout: 100 * time.Millisecond})
	fmt.Println("second open locked out:", errors.Is(err, boltstore.ErrLocked))

	// "Log out everywhere" for user-42.
	n, err := store.DeleteOwner(ctx, "user-42", now)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ended", n, "sessions")
	// Output:
	// created: true
	// true {"user":"42"} 1
	// second open locked out: true
	// ended 1 sessions
}

// New puts the store in a file the application opened itself, next to its
// own buckets, with bbolt options of its choice.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "boltstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := bbolt.Open(filepath.Join(dir, "app.db"), 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	store, err := boltstore.New(db, &boltstore.Options{Bucket: "web-sessions", SweepBatch: 500})
	if err != nil {
		log.Fatal(err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		fmt.Println("bucket created:", tx.Bucket([]byte("web-sessions")) != nil)
		return nil
	})
	n, err := store.DeleteExpired(context.Background(), time.Now())
	fmt.Println("swept:", n, err)
	// Output:
	// bucket created: true
	// swept: 0 <nil>
}
