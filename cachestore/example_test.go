package cachestore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/cachestore"
	"github.com/sessionkit/sessions/memstore"
)

// A cache in front of a shared store. In production the back would be
// Redis or SQL; here both tiers are in memory.
func Example() {
	back := new(memstore.Store)
	cached, err := cachestore.New(new(memstore.Store), back, &cachestore.Options{MaxAge: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	// The cache has exactly the back's capabilities (here: the owner
	// index and sweeping).
	store := cached
	m, err := sessions.New(store, nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = m // m.Handler(mux)

	_, owners := store.(sessions.OwnerIndex)
	_, sweeps := store.(sessions.ExpiredDeleter)
	fmt.Println("owner index:", owners, "sweep:", sweeps)
	// Output: owner index: true sweep: true
}

// A delete through another process's Store is seen here within MaxAge.
func Example_staleness() {
	ctx := context.Background()
	back := new(memstore.Store)
	a, _ := cachestore.New(new(memstore.Store), back, &cachestore.Options{MaxAge: 2 * time.Second})
	b, _ := cachestore.New(new(memstore.Store), back, &cachestore.Options{MaxAge: 2 * time.Second})

	id := "4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b"
	now := time.Now()
	a.Create(ctx, id, []byte("alice"), now.Add(time.Hour), "", now)
	b.Load(ctx, id, now) // b caches the record
	a.Delete(ctx, id)    // logout through a

	for _, d := range []time.Duration{0, time.Second, 2 * time.Second} {
		_, _, _, found, _ := b.Load(ctx, id, now.Add(d))
		fmt.Printf("b at +%v: found=%v\n", d, found)
	}
	// Output:
	// b at +0s: found=true
	// b at +1s: found=true
	// b at +2s: found=false
}
