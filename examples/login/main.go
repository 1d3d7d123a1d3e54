// Command login is a small web application with accounts, built on
// sessionkit and its auth package: sign up, log in (with "remember me"),
// a home page, a devices page (list the sessions, log out one of them or
// every other one), change the password (which logs out the other
// devices), log out. Pages are html/template, without JavaScript.
// Passwords are hashed with bcrypt; cross-site requests are refused by
// http.CrossOriginProtection; private pages are sent with
// "Cache-Control: no-store".
//
// Run it from the repository root with one command:
//
//	go -C examples run ./login
//
// and open http://127.0.0.1:3001/. Accounts, the server key and sessions
// are kept in the SQLite file login.db. Flags:
//
//	-addr HOST:PORT   where to listen (default 127.0.0.1:3001)
//	-db FILE          the SQLite file with the accounts (default login.db)
//	-store KIND       where sessions live: sqlite (in -db, the default),
//	                  memory, postgres or redis
//	-dsn DSN          with -store postgres or redis: where the server is
//	                  (defaults: the local services)
//	-cert, -key FILE  serve HTTPS with this certificate; without them the
//	                  app serves plain HTTP and turns the cookie's Secure
//	                  attribute off (development only)
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
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

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/examples/internal/serve"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/pgxstore"
	"github.com/sessionkit/sessions/redisstore"
	"github.com/sessionkit/sessions/sqlitestore"
	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite" // driver "sqlite"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3001", "listen on `HOST:PORT`")
	dbPath := flag.String("db", "login.db", "the SQLite `FILE` with the accounts")
	store := flag.String("store", "sqlite", "where sessions live: sqlite, memory, postgres or redis")
	dsn := flag.String("dsn", "", "with -store postgres or redis: the server's `DSN`")
	cert := flag.String("cert", "", "TLS certificate `FILE` (with -key)")
	key := flag.String("key", "", "TLS key `FILE` (with -cert)")
	flag.Parse()
	if err := run(*addr, *dbPath, *store, *dsn, *cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "login:", err)
		os.Exit(1)
	}
}

func run(addr, dbPath, kind, dsn, certFile, keyFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if (certFile == "") != (keyFile == "") {
		return errors.New("-cert and -key go together")
	}
	db, err := openSQLite(dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	users, err := openUsers(ctx, db, bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	serverKey, err := users.serverKey(ctx)
	if err != nil {
		return err
	}
	store, closeStore, err := openStore(ctx, kind, dsn, db)
	if err != nil {
		return err
	}
	defer closeStore()
	h, err := newApp(store, users, serverKey, config{InsecureCookie: certFile == ""})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	if m, ok := store.(interface {
		sessions.Store
		sessions.ExpiredDeleter
	}); ok {
		go sweep(ctx, m)
	}
	fmt.Printf("login listening on %s://%s/ (accounts in %s, sessions: %s)\n", scheme, ln.Addr(), dbPath, kind)
	return serve.Run(ctx, srv, ln)
}

// sweep deletes expired sessions (and device records) once a minute.
func sweep(ctx context.Context, d sessions.ExpiredDeleter) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := d.DeleteExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
			slog.Error("login: sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openSQLite opens the SQLite file with the pragmas sqlitestore's README
// asks for.
func openSQLite(path string) (*sql.DB, error) {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+esc+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return db, nil
}

// openStore opens the session store of the kind; sqlite uses db, the
// accounts' database.
func openStore(ctx context.Context, kind, dsn string, db *sql.DB) (sessions.Store, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	switch kind {
	case "memory":
		s, err := memstore.New(nil)
		return s, func() {}, err
	case "sqlite":
		s, err := sqlitestore.New(db, nil)
		if err == nil {
			err = s.CreateTable(ctx)
		}
		return s, func() {}, err
	case "postgres":
		pool, err := pgxpool.New(ctx, cmp.Or(dsn, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"))
		if err != nil {
			return nil, nil, fmt.Errorf("postgres: %w", err)
		}
		s, err := pgxstore.New(pool, nil)
		if err == nil {
			err = s.CreateTable(ctx)
		}
		if err != nil {
			pool.Close()
			return nil, nil, fmt.Errorf("postgres: %w", err)
		}
		return s, pool.Close, nil
	case "redis":
		opts, err := redis.ParseURL(cmp.Or(dsn, "redis://127.0.0.1:6379/0"))
		if err != nil {
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		c := redis.NewClient(opts)
		s, err := redisstore.New(c, nil)
		if err == nil {
			err = c.Ping(ctx).Err()
		}
		if err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		return s, func() { c.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown -store %q: want sqlite, memory, postgres or redis", kind)
}
