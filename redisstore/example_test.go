package redisstore_test

import (
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/cachestore"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/redisstore"
)

// A complete program: a page-view counter with sessions in Redis.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // let contexts bound socket I/O
	})
	defer rdb.Close()

	store, err := redisstore.New(rdb, nil) // keys under "session:", 3 s timeout
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

// Redis Cluster: pass a ClusterClient (or any redis.UniversalClient).
func ExampleNew_cluster() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
		ContextTimeoutEnabled: true,
	})
	store, err := redisstore.New(rdb, &redisstore.Options{Prefix: "myapp:session:", Timeout: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	_ = store // pass to sessions.New
}

// Sentinel: a failover client follows the primary that Sentinel elects.
func ExampleNew_sentinel() {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "mymaster",
		SentinelAddrs:         []string{"127.0.0.1:26379"},
		ContextTimeoutEnabled: true,
	})
	store, err := redisstore.New(rdb, nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = store
}

// A process-local cache in front of Redis, with the Redis owner index kept
// visible to the Manager ("log out everywhere").
func ExampleNew_cached() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	back, err := redisstore.New(rdb, nil)
	if err != nil {
		log.Fatal(err)
	}
	cached, err := cachestore.New(new(memstore.Store), back, &cachestore.Options{MaxAge: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessions.New(cached, nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = m
}
