package rueidisstore_test

import (
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/rueidisstore"
)

// A complete program: a page-view counter with sessions in Redis, read
// from the near-cache until Redis invalidates them.
func Example() {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{"127.0.0.1:6379"}, // several seeds: a Cluster
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	store, err := rueidisstore.New(c, &rueidisstore.Options{
		MaxCacheAge: 10 * time.Second, // the hard bound (the default)
	})
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.New(store, &sessions.Options{
		InsecureCookie: true, // plain http:// on localhost only; remove behind TLS
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "views", func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%d views\n", n)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", m.Handler(mux)))
}
