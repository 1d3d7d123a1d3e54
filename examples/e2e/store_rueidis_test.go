//go:build unix

package e2e

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The rueidis kind runs the app with -store rueidis (rueidisstore: Redis
// with a near-cache kept coherent by invalidations) on a Redis DB of the
// test's own. There is no cluster kind: the cluster kinds share one key
// space (no DB numbers, and the app has no prefix flag), so two of them
// would see each other's owner indexes; rueidisstore runs the conformance
// suite on the cluster itself. It counts as a cache kind: CacheInstances runs
// two instances on one store with -cache-age, which is the near-cache's
// hard bound here, and the outage cases wait past it before they expect
// failures. The outage cases reach Redis through the suite's proxy.
func init() {
	storeKinds = append(storeKinds,
		&storeKind{name: "rueidis", persistent: true, cache: true,
			setup: func(t *testing.T) ([]string, func(*testing.T) int) { return asRueidis(setupRedis(t)) },
			unreachable: func(_ *testing.T, addr string) []string {
				return []string{"-store", "rueidis", "-dsn", "redis://" + addr + "/0"}
			},
			serviceAddr: redisAddr, dsnVia: redisVia},
	)
}

// asRueidis turns the flags of a redis kind into the rueidis kind's.
func asRueidis(flags []string, count func(*testing.T) int) ([]string, func(*testing.T) int) {
	out := append([]string(nil), flags...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "-store" {
			out[i+1] = "rueidis"
		}
	}
	return out, count
}

func redisAddr() string {
	u, err := url.Parse(redisBaseURL())
	if err != nil {
		return ""
	}
	return u.Host
}

// redisVia returns dsn with its host and port replaced by addr.
func redisVia(dsn, addr string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Host = addr
	return u.String()
}

// TestRueidisCoherent: with a hard bound of an hour, two instances see each
// other's writes, renewals, destroys and logouts-everywhere within a second
// (in practice within the next request): the near-cache is kept coherent
// by Redis's invalidations, not by its age bound.
func TestRueidisCoherent(t *testing.T) {
	t.Parallel()
	var kind *storeKind
	for _, k := range storeKinds {
		if k.name == "rueidis" {
			kind = k
		}
	}
	flags, _ := kind.setup(t)
	a := startApp(t, append(flags, "-cache-age", "1h")...)
	b := startApp(t, append(flags, "-cache-age", "1h")...)
	const within = time.Second
	sees := func(x *app, path, tok string, code int, body string) func() (bool, string) {
		return func() (bool, string) {
			r := x.get(t, path, tok)
			return r.code == code && r.body == body, r.body
		}
	}
	tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	want(t, b.get(t, "/get?key=a", tok), http.StatusOK, "1") // b caches it
	want(t, a.get(t, "/set?key=a&value=2", tok), http.StatusOK, "ok")
	eventually(t, within, "B seeing A's write", sees(b, "/get?key=a", tok, http.StatusOK, "2"))

	r := a.get(t, "/renew", tok)
	want(t, r, http.StatusOK, "ok")
	renewed := newSession(t, a, r)
	eventually(t, within, "B dropping the renewed ID", sees(b, "/get?key=a", tok, http.StatusNotFound, "not found"))
	want(t, b.get(t, "/get?key=a", renewed), http.StatusOK, "2")

	want(t, a.get(t, "/get?key=a", renewed), http.StatusOK, "2") // a caches it
	want(t, b.get(t, "/destroy", renewed), http.StatusOK, "ok")
	eventually(t, within, "A seeing B's destroy", sees(a, "/get?key=a", renewed, http.StatusNotFound, "not found"))

	c := newClient(b)
	want(t, c.get(t, "/login?user=zoe"), http.StatusOK, "ok")
	want(t, c.get(t, "/set?key=a&value=1"), http.StatusOK, "ok")
	want(t, b.get(t, "/get?key=a", c.token()), http.StatusOK, "1") // b caches it
	want(t, a.get(t, "/logout-all?user=zoe", ""), http.StatusOK, "1")
	eventually(t, within, "B seeing A's logout-all", sees(b, "/get?key=a", c.token(), http.StatusNotFound, "not found"))
}

// TestRueidisSharesRedisstore: an app on -store redis (go-redis) and one on
// -store rueidis with the same DSN serve the same sessions, and the
// rueidis one drops its cached copy when the redis one writes.
func TestRueidisSharesRedisstore(t *testing.T) {
	t.Parallel()
	flags, _ := setupRedis(t)
	a := startApp(t, flags...)
	rflags, _ := asRueidis(flags, nil)
	b := startApp(t, append(rflags, "-cache-age", "1h")...)
	tok := newSession(t, a, a.get(t, "/set?key=a&value=1", ""))
	want(t, b.get(t, "/get?key=a", tok), http.StatusOK, "1") // b caches it
	want(t, a.get(t, "/set?key=a&value=2", tok), http.StatusOK, "ok")
	eventually(t, time.Second, "the rueidis app seeing the redis app's write", func() (bool, string) {
		r := b.get(t, "/get?key=a", tok)
		return r.code == http.StatusOK && r.body == "2", r.body
	})
	want(t, b.get(t, "/set?key=b&value=3", tok), http.StatusOK, "ok")
	want(t, a.get(t, "/get?key=b", tok), http.StatusOK, "3")
	want(t, a.get(t, "/destroy", tok), http.StatusOK, "ok")
	eventually(t, time.Second, "the rueidis app seeing the destroy", func() (bool, string) {
		r := b.get(t, "/get?key=a", tok)
		return r.code == http.StatusNotFound, r.body
	})
}
