package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionkit/sessions/pgxstore"
)

// The postgres-near store: sessionkit on pgxstore.NearCache (a cache in the
// process, invalidated by the table's LISTEN/NOTIFY trigger). It runs in
// BenchmarkSessions beside the other stores, and in BenchmarkHTTP.
func init() {
	stores = append(stores, "postgres-near")
	contestants = append(contestants, contestant{store: "postgres-near", lib: "sessionkit", service: "postgres", open: openSessionkitPostgresNear})
}

func openSessionkitPostgresNear(purpose string) (lib, error) {
	pool, err := newPgxPool()
	if err != nil {
		return nil, err
	}
	table := tableName(purpose)
	ctx := context.Background()
	st, err := pgxstore.New(pool, &pgxstore.Options{Table: table})
	if err == nil {
		err = st.CreateTable(ctx)
	}
	if err == nil {
		err = st.CreateNotifyTrigger(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	connCfg := pool.Config().ConnConfig
	near, err := pgxstore.NewNearCache(st, func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.ConnectConfig(ctx, connCfg.Copy())
	}, nil)
	// Wait until the cache listens: before that it reads through.
	for deadline := time.Now().Add(10 * time.Second); err == nil && !near.Listening(); {
		if time.Now().After(deadline) {
			err = fmt.Errorf("postgres-near: the near cache is not listening after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		if near != nil {
			near.Close()
		}
		pool.Close()
		return nil, err
	}
	return newSessionkit(near, func() error {
		near.Close()
		defer pool.Close()
		_, err := pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`)
		if err == nil {
			_, err = pool.Exec(context.Background(), `DROP FUNCTION IF EXISTS "`+table+`_notify"()`)
		}
		return err
	})
}

// httpWorks are the workloads of BenchmarkHTTP, all with the cookie of a
// live session (n = 1): the untouched handler, a read, an increment.
var httpWorks = []string{"untouched-cookie", "read", "incr"}

// BenchmarkHTTP serves the workloads over a real connection:
//
//	BenchmarkHTTP/store=S/work=W/lib=L
//
// The handler (with the library's middleware) runs in a net/http server
// on 127.0.0.1 (httptest.NewServer), and one client sends the requests
// one after another over a keep-alive connection, reading every body to
// the end. An iteration is one full request as a user's client sees it:
// client, loopback TCP, the server's parsing and writing, the middleware,
// the store. The baseline (a bare handler) runs with every store and
// workload, in the same process. The first response is checked (status,
// body, cookie), every timed one for status 200, and after an incr run the
// counter must hold every increment.
func BenchmarkHTTP(b *testing.B) {
	wls := make([]workload, len(httpWorks))
	for i, name := range httpWorks {
		wls[i] = workloadNamed(name)
	}
	eachLeaf(b, wls, benchHTTP)
}

func workloadNamed(name string) workload {
	for _, wl := range workloads {
		if wl.name == name {
			return wl
		}
	}
	panic("no workload " + name)
}

// benchHTTP runs one leaf of BenchmarkHTTP.
func benchHTTP(parent *testing.B, c contestant, wl workload) {
	runLeaf(parent, c, c.lib+"_http_"+wl.name, func(b *testing.B, l lib) {
		st, err := newStage(c, l, wl)
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(st.h)
		defer srv.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, ck := range st.req.Cookies() {
			req.AddCookie(ck)
		}

		// The first response, checked in full.
		res, body, err := roundTrip(client, req, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || string(body) != st.wantBody {
			b.Fatalf("first response %d %q, want 200 %q", res.StatusCode, body, st.wantBody)
		}
		if st.wantCookie != anyCookie {
			if got := sessionCookie(res, l.cookieName()) != nil; got != (st.wantCookie == setsCookie) {
				b.Fatalf("first response sets the session cookie: %v", got)
			}
		}

		buf := make([]byte, 0, 512)
		n, bad := 0, 0
		b.ReportAllocs()
		for b.Loop() {
			res, body, err := roundTrip(client, req, buf)
			if err != nil {
				b.Fatal(err)
			}
			if res.StatusCode != http.StatusOK {
				bad++
			}
			buf = body[:0]
			n++
		}
		b.StopTimer()
		if bad > 0 {
			b.Fatalf("%d of %d responses were not 200", bad, n)
		}
		if st.after != nil {
			if err := st.after(n); err != nil {
				b.Fatalf("after %d requests: %v", n, err)
			}
		}
	})
}

// roundTrip sends req and reads the whole body into buf, so that the
// connection goes back to the pool for the next request.
func roundTrip(client *http.Client, req *http.Request, buf []byte) (*http.Response, []byte, error) {
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	w := bytes.NewBuffer(buf)
	if _, err := io.Copy(w, res.Body); err != nil {
		return nil, nil, err
	}
	return res, w.Bytes(), nil
}
