package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/sessionkit/sessions"
)

// The benchmarks serve requests in process through ServeHTTP with the memory
// store. Compare each against BenchmarkRequest/bare from the same run.
func BenchmarkRequest(b *testing.B) {
	m := mustNew(b, mem(), nil)
	counter := sessions.Key[int]("n")
	handlers := map[string]http.Handler{
		"untouched": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		}),
		"read": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _, err := counter.Get(sessions.FromContext(r.Context()))
			if err != nil || n == 0 {
				http.Error(w, "read failed", 500)
				return
			}
			w.Write([]byte("ok"))
		}),
		"write": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := counter.Update(sessions.FromContext(r.Context()), func(n int) int { return n + 1 }); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Write([]byte("ok"))
		}),
	}
	// A live session to send the cookie of.
	seed := httptest.NewRecorder()
	m.Handler(handlers["write"]).ServeHTTP(seed, httptest.NewRequest("GET", "/", nil))
	cookie := seed.Result().Cookies()[0]

	run := func(b *testing.B, h http.Handler, withCookie bool) {
		r := httptest.NewRequest("GET", "/", nil)
		if withCookie {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || w.Body.String() != "ok" {
			b.Fatalf("response %d %q", w.Code, w.Body)
		}
		b.ReportAllocs()
		for b.Loop() {
			w.Body.Reset()
			clear(w.Header())
			h.ServeHTTP(w, r)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, handlers["untouched"], false) })
	b.Run("untouched/no-cookie", func(b *testing.B) { run(b, m.Handler(handlers["untouched"]), false) })
	b.Run("untouched/cookie", func(b *testing.B) { run(b, m.Handler(handlers["untouched"]), true) })
	b.Run("read", func(b *testing.B) { run(b, m.Handler(handlers["read"]), true) })
	b.Run("write", func(b *testing.B) { run(b, m.Handler(handlers["write"]), true) })
	b.Run("create", func(b *testing.B) { run(b, m.Handler(handlers["write"]), false) })
	b.Run("parallel-write", func(b *testing.B) {
		h := m.Handler(handlers["write"])
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			// One session per goroutine.
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(w.Result().Cookies()[0])
			for i := 0; pb.Next(); i++ {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					panic("status " + strconv.Itoa(w.Code))
				}
			}
		})
	})
}
