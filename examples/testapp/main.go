// Command testapp is the sessionkit conformance app: a small HTTP server
// whose routes expose every session operation, so that black-box tests can
// drive the library over real HTTP with any store.
//
// Build it from the examples module and start it:
//
//	cd examples && go build ./testapp
//	./testapp -addr 127.0.0.1:0 -store memory
//
// It prints "listening on http://HOST:PORT" on standard output once it
// accepts connections (with port 0, the port the system chose). On SIGINT or
// SIGTERM it finishes in-flight requests and exits with status 0. Invalid
// flags exit with status 2; a store it cannot reach (or cannot prepare)
// exits with status 1, its reason on standard error, without printing
// "listening on".
//
// # Flags
//
//	-addr HOST:PORT       where to listen (default 127.0.0.1:8080)
//	-store KIND           memory, sqlite, postgres, mysql, redis, bolt,
//	                      dynamodb, cache or cookie (default memory)
//	-back KIND            with -store cache: the store behind the in-memory
//	                      front: sqlite, postgres, mysql, redis, bolt or
//	                      dynamodb (default redis)
//	-cache-age DURATION   with -store cache: the longest the front answers for
//	                      a session without consulting the back (default 1s);
//	                      with -store postgres-near: the near cache's hard
//	                      bound (pgxstore.NearCacheOptions.MaxAge)
//	-dsn DSN              where the store (with cache, the back store) lives
//	-idle DURATION        idle timeout (0: none)
//	-lifetime DURATION    absolute lifetime (0: the library's default, 24h)
//	-cookie-name NAME     cookie name (default: the library's, "__Host-session";
//	                      "session", without the prefix, when -insecure,
//	                      -domain or -path break the prefix's rules)
//	-insecure             leave the Secure attribute off
//	-browser-session      cookies with neither Max-Age nor Expires
//	-domain D             the cookie's Domain attribute (default host-only)
//	-path P               the cookie's Path attribute (default /)
//	-same-site MODE       lax, strict or none (default lax); none with
//	                      -insecure is refused
//	-key SECRET           key for client-side sessions, at least 32 bytes;
//	                      repeatable, the first seals, all open; with a
//	                      server-side kind, signs the session token
//	-revocation KIND      with -store cookie: a server-side kind (at -dsn)
//	                      that records destroyed and renewed sessions, so
//	                      that their copied cookies stop working
//
// Default DSNs, the local services' usual addresses:
//
//	sqlite    sessions.db (a file path, relative to the working directory;
//	          opened with busy_timeout 5 s and WAL)
//	postgres  postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	          (any DSN pgx accepts; the table lands in the first schema of
//	          the search_path, which the DSN may set)
//	mysql     root@tcp(127.0.0.1:3306)/test (a go-sql-driver DSN; the app
//	          adds parseTime and connection timeouts)
//	redis     redis://127.0.0.1:6379/0 (redis://[user:pass@]host:port/N; a Redis
//	          Cluster: redis://host:port?addr=host2:port2&addr=host3:port3)
//
// The app creates the table it needs (named "sessions") idempotently at
// start-up, in the database or Redis DB number the DSN names, and runs the
// Manager's sweeper once a minute for stores that keep expired records.
//
// # Routes
//
// Every route answers GET and POST and reads its parameters as
// Request.FormValue does. delay=MS (0 to 60000) on a route that touches the
// session sleeps MS milliseconds after the session's first read (after the
// operation for writes) and before the session is saved.
//
//	/                          200 "ok"; never touches the session
//	/set?key=K&value=V         stores the JSON document V under K: 200 "ok";
//	                           400 if V is not JSON (nothing changes)
//	/get?key=K                 200 and the value as compact JSON; 404 if absent
//	/delete?key=K              200 "ok"
//	/incr?key=K                adds 1 to the integer under K (conflict-safe):
//	                           200 and the new value
//	/keys                      200 and a JSON array of the keys, sorted
//	/clear                     removes every key, keeps the session: 200 "ok"
//	/destroy                   ends the session: 200 "ok"
//	/renew                     new ID, same data and deadline: 200 "ok"
//	/status?code=N&key=K&value=V
//	                           stores V under K (if given), answers status N
//	                           (200-599, else 400)
//	/expiry?idle=S | at=UNIX | browser=1
//	                           exactly one: the session's own idle timeout in
//	                           seconds (0 removes it), its own absolute end in
//	                           Unix seconds (a past one ends it now), or a
//	                           browser-session cookie (browser=0 turns it off)
//	/login?user=U              renews the ID, sets the owner to U and starts a
//	                           fresh absolute lifetime: 200 "ok"
//	/logout-all?user=U         deletes every live session owned by U: 200 and
//	                           the number deleted; 501 if the store has no
//	                           owner index (and with -store cookie)
//
// When the store fails, a route that needs the session answers 503 (409 if
// another request ended the session meanwhile, 413 if the session would grow
// too large; with -store cookie, 500 if its cookie would exceed 4096 bytes)
// and sends no cookie.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sessionkit/sessions"
)

// config holds the parsed command line.
type config struct {
	addr           string
	store          string
	back           string
	cacheAge       time.Duration
	dsn            string
	idle           time.Duration
	lifetime       time.Duration
	cookieName     string
	insecure       bool
	browserSession bool
	domain         string
	path           string
	sameSite       string
	keys           []string
	revocation     string
}

// usageError is an invalid command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "testapp:", err)
		return 2
	}
	if err := serve(cfg, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "testapp:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("testapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen on `HOST:PORT` (port 0: any free port)")
	fs.StringVar(&cfg.store, "store", "memory", "store `KIND`: memory, sqlite, postgres, postgres-near, mysql, redis, mongo, bolt, dynamodb, cache or cookie")
	fs.StringVar(&cfg.back, "back", "redis", "with -store cache, the back store `KIND`: sqlite, postgres, mysql, redis, mongo, bolt or dynamodb")
	fs.DurationVar(&cfg.cacheAge, "cache-age", time.Second, "with -store cache, the longest the front answers without consulting the back; with -store postgres-near or rueidis, the near cache's hard bound")
	fs.StringVar(&cfg.dsn, "dsn", "", "where the store (with cache, the back store) lives; the default depends on the store:\n"+
		"sqlite: sessions.db (a file path, relative to the working directory)\n"+
		"postgres: postgres://postgres@127.0.0.1:5432/test?sslmode=disable (any DSN pgx accepts)\n"+
		"mysql: root@tcp(127.0.0.1:3306)/test (a go-sql-driver DSN; parseTime is added)\n"+
		"redis: redis://127.0.0.1:6379/0 (redis://[user:pass@]host:port/N; cluster: redis://host:port?addr=host2:port2&addr=...)")
	fs.DurationVar(&cfg.idle, "idle", 0, "idle timeout (0: none)")
	fs.DurationVar(&cfg.lifetime, "lifetime", 0, "absolute lifetime (0: the library's default)")
	fs.StringVar(&cfg.cookieName, "cookie-name", "", "session cookie `NAME` (default: the library's)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "leave the cookie's Secure attribute off")
	fs.BoolVar(&cfg.browserSession, "browser-session", false, "send cookies with neither Max-Age nor Expires")
	fs.StringVar(&cfg.domain, "domain", "", "the cookie's Domain attribute (default: host-only)")
	fs.StringVar(&cfg.path, "path", "", "the cookie's Path attribute (default /)")
	fs.StringVar(&cfg.sameSite, "same-site", "", "the cookie's SameSite `MODE`: lax, strict or none (default lax)")
	fs.StringVar(&cfg.revocation, "revocation", "", "with -store cookie, a server-side store `KIND` (at -dsn) recording ended sessions")
	fs.Func("key", "`SECRET` for client-side sessions, at least 32 bytes (repeatable; the first seals); with a server-side store, signs the token", func(s string) error {
		if len(s) < 32 {
			return fmt.Errorf("key of %d bytes: at least 32 are required", len(s))
		}
		cfg.keys = append(cfg.keys, s)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: testapp [flags]\n\nThe sessionkit conformance app; see `go doc ./testapp` for its routes.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.cacheAge <= 0 {
		return cfg, fmt.Errorf("-cache-age %v: must be positive", cfg.cacheAge)
	}
	return cfg, nil
}

// managerOptions maps the flags onto sessions.Options.
func managerOptions(cfg config, logger *slog.Logger) (*sessions.Options, error) {
	name := cfg.cookieName
	if name == "" && (cfg.insecure || cfg.domain != "" || (cfg.path != "" && cfg.path != "/")) {
		// The contract: when another flag breaks the default's prefix
		// rules, the app uses the default name without the prefix.
		name = strings.TrimPrefix(sessions.DefaultCookieName, "__Host-")
	}
	opts := &sessions.Options{
		CookieName:           name,
		Path:                 cfg.path,
		Domain:               cfg.domain,
		InsecureCookie:       cfg.insecure,
		BrowserSessionCookie: cfg.browserSession,
		Lifetime:             cfg.lifetime,
		IdleTimeout:          cfg.idle,
		Keys:                 keyBytes(cfg.keys),
		Logger:               logger,
	}
	switch strings.ToLower(cfg.sameSite) {
	case "", "lax":
		opts.SameSite = http.SameSiteLaxMode
	case "strict":
		opts.SameSite = http.SameSiteStrictMode
	case "none":
		opts.SameSite = http.SameSiteNoneMode
	default:
		return nil, fmt.Errorf("-same-site %q: want lax, strict or none", cfg.sameSite)
	}
	return opts, nil
}

func serve(cfg config, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	opts, err := managerOptions(cfg, logger)
	if err != nil {
		return usageError{err}
	}
	// Validate the cookie options before connecting to anything.
	if err := checkOptions(cfg, opts); err != nil {
		return usageError{err}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, closeStore, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeStore()

	m, err := newManager(cfg, store, opts)
	if err != nil {
		return usageError{err}
	}

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	if _, ok := store.(sessions.ExpiredDeleter); ok {
		go func() { _ = m.Sweep(sweepCtx, time.Minute) }()
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newApp(m).handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the default way
	// Finish in-flight requests (the longest delay a test uses is well
	// below this), then give up on the stragglers.
	shutdown, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		logger.Warn("shutdown: closing connections with requests in flight", "err", err)
		_ = srv.Close()
	}
	<-errc
	stopSweep()
	return nil
}

// nopStore lets serve validate the Manager options before opening the real
// store; it is never called.
type nopStore struct{}

func (nopStore) Create(context.Context, string, []byte, time.Time, string, time.Time) (bool, error) {
	return false, errors.ErrUnsupported
}

func (nopStore) Load(context.Context, string, time.Time) ([]byte, int64, time.Time, bool, error) {
	return nil, 0, time.Time{}, false, errors.ErrUnsupported
}

func (nopStore) Update(context.Context, string, int64, []byte, time.Time, string, time.Time) (bool, bool, error) {
	return false, false, errors.ErrUnsupported
}

func (nopStore) Touch(context.Context, string, time.Time, time.Time) (bool, error) {
	return false, errors.ErrUnsupported
}

func (nopStore) Delete(context.Context, string) error { return errors.ErrUnsupported }
