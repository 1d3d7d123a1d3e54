package dynamostore_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/dynamostore"
)

// The store plugged into the middleware: a DynamoDB client, CreateTable at
// start-up, and Sweep in its own goroutine to remove expired records with
// their owner entries. Against AWS, build the client from
// config.LoadDefaultConfig (github.com/aws/aws-sdk-go-v2/config) instead.
func Example() {
	ctx := context.Background()
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:4567"), // a local emulator (dynalite)
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})

	store, err := dynamostore.New(client, &dynamostore.Options{Table: "web_sessions"})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil { // idempotent
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

// The Store methods used directly, as the Manager uses them, and "log out
// everywhere" for one user.
func ExampleStore_DeleteOwner() {
	ctx := context.Background()
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:4567"),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	store, err := dynamostore.New(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}

	// Ids are the hexadecimal SHA-256 of a session token.
	const id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	now := time.Now()
	if _, err := store.Create(ctx, id, []byte(`{"user":"42"}`), now.Add(time.Hour), "user-42", now); err != nil {
		log.Fatal(err)
	}
	// The owner entries are read strongly consistently: the session just
	// created is found and deleted.
	n, err := store.DeleteOwner(ctx, "user-42", now)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ended", n, "sessions")
}
