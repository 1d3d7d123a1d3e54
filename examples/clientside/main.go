// Command clientside is a small server whose sessions live entirely in
// their cookie (sessions.NewClientSide): no store, nothing to sweep, and
// every instance that has the key can serve every user.
//
//	go run ./clientside                    # generates a key and prints it once
//	go run ./clientside -key BASE64KEY     # keeps sessions across restarts
//
// Then:
//
//	curl -c jar -b jar http://127.0.0.1:3000/              # counts views
//	curl -c jar -b jar -X POST 'http://127.0.0.1:3000/login?user=ann'
//	curl -c jar -b jar http://127.0.0.1:3000/
//	curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
//
// -key is repeatable for rotation: the first seals, every one opens, and a
// cookie sealed with an older key is sealed again with the first. What
// differs from server-side sessions: concurrent requests are
// last-writer-wins, a session holds about 3 KB, and a copied cookie stays
// valid until its own expiry even after /logout, unless Options.Revocation
// names a store.
//
// It serves plain HTTP, so it turns off the cookie's Secure attribute
// (sessions.Options.InsecureCookie); a production server behind TLS must not.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sessionkit/sessions"
)

var (
	views = sessions.Key[int]("views")
	user  = sessions.Key[string]("user")
)

// keyFlags collects -key values: base64 (standard or URL, padded or not)
// of at least 32 bytes.
type keyFlags [][]byte

func (k *keyFlags) String() string { return fmt.Sprintf("%d keys", len(*k)) }

func (k *keyFlags) Set(s string) error {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < sessions.MinKeyLen {
				return fmt.Errorf("key of %d bytes, want at least %d", len(b), sessions.MinKeyLen)
			}
			*k = append(*k, b)
			return nil
		}
	}
	return errors.New("not base64")
}

func main() {
	var keys keyFlags
	addr := flag.String("addr", "127.0.0.1:3000", "listen on `HOST:PORT`")
	flag.Var(&keys, "key", "base64 `KEY` of 32 bytes or more (repeatable; the first seals); default: a new key, printed once")
	flag.Parse()
	if err := run(*addr, keys, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "clientside:", err)
		os.Exit(1)
	}
}

func run(addr string, keys [][]byte, out io.Writer) error {
	if len(keys) == 0 {
		k := make([]byte, 32)
		rand.Read(k)
		fmt.Fprintf(out, "generated key (pass -key %s to keep sessions across restarts)\n", base64.RawURLEncoding.EncodeToString(k))
		keys = [][]byte{k}
	}
	h, err := newHandler(keys)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "clientside listening on http://%s/\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// newHandler returns the application with client-side sessions sealed
// under keys.
func newHandler(keys [][]byte) (http.Handler, error) {
	m, err := sessions.NewClientSide(&sessions.Options{
		Keys:           keys,
		Purpose:        "clientside example", // cookies of other apps with the same keys never open here
		InsecureCookie: true,                 // plain HTTP demo; never in production
		IdleTimeout:    30 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		n, err := views.Update(s, func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		who, _, _ := user.Get(s)
		if who == "" {
			who = "anonymous"
		}
		fmt.Fprintf(w, "%s: %d views\n", who, n)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimSpace(r.FormValue("user"))
		if name == "" {
			http.Error(w, "user required", http.StatusBadRequest)
			return
		}
		s := sessions.FromContext(r.Context())
		// A new session ID at every privilege change (no fixation); the
		// views counted before the login are kept.
		if err := s.RenewAfterLogin(name); err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		if err := user.Set(s, name); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "logged in as %s\n", name)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.FromContext(r.Context()).Destroy(); err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "logged out")
	})
	return m.Handler(mux), nil
}
