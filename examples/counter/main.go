// Command counter is a small server that counts a visitor's page views in
// a session.
//
//	go run ./counter                      # sessions in memory
//	go run ./counter -sqlite counter.db   # sessions survive restarts
//
// Then open http://127.0.0.1:3000 in a browser and reload, or:
//
//	curl -c jar -b jar http://127.0.0.1:3000/
//
// It serves plain HTTP, so it turns off the cookie's Secure attribute
// (sessions.Options.InsecureCookie); a production server behind TLS must not.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/examples/internal/serve"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/sqlitestore"
	_ "modernc.org/sqlite"
)

var views = sessions.Key[int]("views")

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen on `HOST:PORT`")
	dbPath := flag.String("sqlite", "", "keep sessions in this SQLite `FILE` (default: in memory)")
	flag.Parse()
	if err := run(*addr, *dbPath); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

func run(addr, dbPath string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := openStore(ctx, dbPath)
	if err != nil {
		return err
	}
	m, err := sessions.New(store, &sessions.Options{
		InsecureCookie: true, // plain HTTP demo; never in production
		IdleTimeout:    30 * time.Minute,
	})
	if err != nil {
		return err
	}
	go func() {
		if err := m.Sweep(ctx, time.Minute); err != nil {
			slog.Error("sweeper stopped", "err", err)
		}
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		n, err := views.Update(s, func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		if acceptsHTML(r) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>counter</title><p>You have viewed this page %d times.</p>`+
				`<form method=post action=/reset><button>Reset</button></form>`, n)
			return
		}
		fmt.Fprintf(w, "You have viewed this page %d times.\n", n)
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: m.Handler(mux), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("counter listening on http://%s/ (%s)\n", ln.Addr(), storeName(dbPath))
	return serve.Run(ctx, srv, ln)
}

func openStore(ctx context.Context, dbPath string) (sessions.Store, error) {
	if dbPath == "" {
		return memstore.New(nil)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	store, err := sqlitestore.New(db, nil)
	if err != nil {
		return nil, err
	}
	if err := store.CreateTable(ctx); err != nil {
		return nil, err
	}
	return store, nil
}

func storeName(dbPath string) string {
	if dbPath == "" {
		return "sessions in memory"
	}
	return "sessions in " + dbPath
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
