package benchmarks

import (
	"slices"

	"github.com/redis/rueidis"

	"github.com/sessionkit/sessions/rueidisstore"
)

// The redis-near store: sessionkit on rueidisstore, whose near-cache serves
// reads from memory until Redis invalidates them (issue 13), against the
// same Redis floor as the redis store (GET and SET through go-redis).
func init() {
	if i := slices.Index(stores, "redis"); i >= 0 && !slices.Contains(stores, "redis-near") {
		stores = slices.Insert(stores, i+1, "redis-near")
	}
	contestants = append(contestants,
		contestant{store: "redis-near", lib: "sessionkit", service: "redis", open: openSessionkitRueidis},
		contestant{store: "redis-near", lib: "floor", service: "redis", open: openFloorRedis},
	)
}

func openSessionkitRueidis(purpose string) (lib, error) {
	opts, err := rueidis.ParseURL(redisURL())
	if err != nil {
		return nil, err
	}
	c, err := rueidis.NewClient(opts)
	if err != nil {
		return nil, err
	}
	prefix := "skbench:" + runID + ":" + purpose + ":"
	st, err := rueidisstore.New(c, &rueidisstore.Options{Prefix: prefix})
	if err != nil {
		c.Close()
		return nil, err
	}
	return newSessionkit(st, func() error {
		defer c.Close()
		gc, err := newRedisClient()
		if err != nil {
			return err
		}
		defer gc.Close()
		return deleteRedisPrefix(gc, prefix)
	})
}
