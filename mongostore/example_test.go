package mongostore_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/mongostore"
)

// The store plugged into the middleware: a driver client, EnsureIndexes at
// start-up, and Sweep in its own goroutine to remove expired records.
func Example() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI"))) // e.g. mongodb://db:27017
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)

	store, err := mongostore.New(client.Database("app"), nil) // collection "sessions"
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureIndexes(ctx); err != nil { // idempotent
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

// A collection of its own name, a shorter grace period before the server's
// TTL monitor removes expired records, and the Store methods used
// directly, as the Manager uses them.
func ExampleNew() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)

	store, err := mongostore.New(client.Database("app"), &mongostore.Options{
		Collection: "web_sessions",
		TTLDelay:   10 * time.Minute, // more than the worst clock skew
		SweepBatch: 500,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureIndexes(ctx); err != nil {
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
