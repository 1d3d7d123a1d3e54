package sessions_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

type slowStore struct{ sessions.Store }

func jitter() { time.Sleep(time.Duration(rand.N(3000)) * time.Microsecond) }

func (s slowStore) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	jitter()
	return s.Store.Load(ctx, id, now)
}
func (s slowStore) Create(ctx context.Context, id string, data []byte, expiry time.Time, owner string, now time.Time) (bool, error) {
	jitter()
	return s.Store.Create(ctx, id, data, expiry, owner, now)
}
func (s slowStore) Update(ctx context.Context, id string, version int64, data []byte, expiry time.Time, owner string, now time.Time) (bool, bool, error) {
	jitter()
	u, f, err := s.Store.Update(ctx, id, version, data, expiry, owner, now)
	jitter()
	return u, f, err
}
func (s slowStore) Touch(ctx context.Context, id string, expiry time.Time, now time.Time) (bool, error) {
	jitter()
	return s.Store.Touch(ctx, id, expiry, now)
}
func (s slowStore) Delete(ctx context.Context, id string) error {
	jitter()
	return s.Store.Delete(ctx, id)
}
func (s slowStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	return s.Store.(sessions.ExpiredDeleter).DeleteExpired(ctx, now)
}

func TestZZRepro(t *testing.T) {
	ms, _ := memstore.New(nil)
	var mu sync.Mutex
	errs := map[string]int{}
	m, err := sessions.New(slowStore{ms}, &sessions.Options{IdleTimeout: 2 * time.Second, InsecureCookie: true,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			mu.Lock()
			errs[r.URL.Path+" EH "+err.Error()]++
			mu.Unlock()
			http.Error(w, err.Error(), 409)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Sweep(ctx, 100*time.Millisecond)
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		mu.Lock()
		errs[r.URL.Path+" H "+err.Error()]++
		mu.Unlock()
		http.Error(w, err.Error(), 503)
	}
	mux.HandleFunc("/inc", func(w http.ResponseWriter, r *http.Request) {
		n, err := sessions.Update(sessions.FromContext(r.Context()), "n", func(n int) int { return n + 1 })
		if err != nil {
			fail(w, r, err)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		_, _, err := sessions.Get[int](sessions.FromContext(r.Context()), "n")
		if err != nil {
			fail(w, r, err)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Renew(); err != nil {
			fail(w, r, err)
		}
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
			fail(w, r, err)
		}
	})
	h := m.Handler(mux)
	var wg sync.WaitGroup
	var total, failed int
	for c := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cookie *http.Cookie
			end := time.Now().Add(20 * time.Second)
			for i := 0; time.Now().Before(end); i++ {
				action := "/inc"
				switch r := (i + c) % 20; {
				case r < 3:
					action = "/get"
				case r == 3:
					action = "/renew"
				case r == 4:
					action = "/logout"
				case r == 5:
					cookie = nil
				}
				req := httptest.NewRequest("GET", action, nil)
				if cookie != nil {
					req.AddCookie(cookie)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				mu.Lock()
				total++
				if w.Code != 200 {
					failed++
				}
				mu.Unlock()
				if w.Code == 200 {
					for _, sc := range w.Result().Cookies() {
						if sc.MaxAge < 0 || sc.Value == "" {
							cookie = nil
						} else {
							cookie = sc
						}
					}
					if action == "/logout" {
						cookie = nil
					}
				}
				time.Sleep(time.Duration(rand.N(20)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests, %d failed: %v", total, failed, errs)
	if failed > 0 {
		t.Fail()
	}
}
