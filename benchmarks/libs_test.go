package benchmarks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	redigo "github.com/gomodule/redigo/redis"
	gorilla "github.com/gorilla/sessions"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
	"github.com/sessionkit/sessions/mysqlstore"
	"github.com/sessionkit/sessions/pgxstore"
	"github.com/sessionkit/sessions/redisstore"
)

// A lib is one session library wired to one store. Every library serves
// the same three handlers (see handlers.go): untouched, read and incr.
type lib interface {
	// middleware wraps the application handler; libraries without
	// middleware return h.
	middleware(h http.Handler) http.Handler
	// read returns the counter "n" of the request's session, ok false
	// when the request has no session or the session has no counter.
	read(w http.ResponseWriter, r *http.Request) (n int, ok bool, err error)
	// incr adds one to the counter, creating the session if there is none,
	// and returns the new value. When pause is positive, incr holds the
	// session that long between reading the counter and writing it back,
	// so that concurrent requests overlap (the lost-update probe).
	incr(w http.ResponseWriter, r *http.Request, pause time.Duration) (int, error)
	// cookieName is the name of the session cookie.
	cookieName() string
	// serverSide reports whether the counter lives on the server, so that
	// a request carrying an old cookie still sees the latest value.
	serverSide() bool
	// close releases the lib's connections and removes its data.
	close() error
}

// A contestant is a library on a store, as the benchmarks and the probe
// name it.
type contestant struct {
	store   string // "none", "memory", "redis", "postgres", "mysql", "cookie", "filesystem"
	lib     string // "baseline", "sessionkit", "scs", "gorilla", "floor"
	service string // the service that must answer, "" for none
	// open returns a fresh instance; purpose makes its keys or table
	// unique within the run.
	open func(purpose string) (lib, error)
}

// contestants lists every library on every store, in the order the
// benchmarks run them.
var contestants = []contestant{
	{store: "none", lib: "baseline", open: func(string) (lib, error) { return baselineLib{}, nil }},

	{store: "memory", lib: "sessionkit", open: openSessionkitMemory},
	{store: "memory", lib: "scs", open: openSCSMemory},
	{store: "memory", lib: "floor", open: func(string) (lib, error) { return newFloor(newMemRaw()), nil }},

	{store: "redis", lib: "sessionkit", service: "redis", open: openSessionkitRedis},
	{store: "redis", lib: "scs", service: "redis", open: openSCSRedis},
	{store: "redis", lib: "floor", service: "redis", open: openFloorRedis},

	{store: "postgres", lib: "sessionkit", service: "postgres", open: openSessionkitPostgres},
	{store: "postgres", lib: "scs", service: "postgres", open: openSCSPostgres},
	{store: "postgres", lib: "floor", service: "postgres", open: openFloorPostgres},

	{store: "mysql", lib: "sessionkit", service: "mysql", open: openSessionkitMySQL},
	{store: "mysql", lib: "floor", service: "mysql", open: openFloorMySQL},

	{store: "cookie", lib: "gorilla", open: openGorillaCookie},
	{store: "filesystem", lib: "gorilla", open: openGorillaFilesystem},
}

// ---- baseline: no session library ----

// baselineLib has no sessions at all: its handlers never touch one.
type baselineLib struct{}

func (baselineLib) middleware(h http.Handler) http.Handler { return h }
func (baselineLib) read(http.ResponseWriter, *http.Request) (int, bool, error) {
	return 0, false, errors.New("baseline: no sessions")
}
func (baselineLib) incr(http.ResponseWriter, *http.Request, time.Duration) (int, error) {
	return 0, errors.New("baseline: no sessions")
}
func (baselineLib) cookieName() string { return "session" }
func (baselineLib) serverSide() bool   { return true }
func (baselineLib) close() error       { return nil }

// ---- sessionkit ----

// counter is sessionkit's typed key for the counter.
var counter = sessions.Key[int]("n")

type sessionkitLib struct {
	m       *sessions.Manager
	cleanup func() error
}

func newSessionkit(store sessions.Store, cleanup func() error) (lib, error) {
	m, err := sessions.New(store, nil) // the secure defaults
	if err != nil {
		return nil, err
	}
	return &sessionkitLib{m: m, cleanup: cleanup}, nil
}

func (l *sessionkitLib) middleware(h http.Handler) http.Handler { return l.m.Handler(h) }

func (l *sessionkitLib) read(_ http.ResponseWriter, r *http.Request) (int, bool, error) {
	return counter.Get(sessions.FromContext(r.Context()))
}

func (l *sessionkitLib) incr(_ http.ResponseWriter, r *http.Request, pause time.Duration) (int, error) {
	s := sessions.FromContext(r.Context())
	if pause > 0 {
		// Load the session now, so that the save below starts from a
		// version that other requests have moved on from meanwhile.
		if _, _, err := counter.Get(s); err != nil {
			return 0, err
		}
		time.Sleep(pause)
	}
	return counter.Update(s, func(n int) int { return n + 1 })
}

func (l *sessionkitLib) cookieName() string { return l.m.CookieName() }
func (l *sessionkitLib) serverSide() bool   { return true }
func (l *sessionkitLib) close() error {
	if l.cleanup == nil {
		return nil
	}
	return l.cleanup()
}

func openSessionkitMemory(string) (lib, error) {
	st, err := memstore.New(nil)
	if err != nil {
		return nil, err
	}
	return newSessionkit(st, nil)
}

func openSessionkitRedis(purpose string) (lib, error) {
	c, err := newRedisClient()
	if err != nil {
		return nil, err
	}
	prefix := "skbench:" + runID + ":" + purpose + ":"
	st, err := redisstore.New(c, &redisstore.Options{Prefix: prefix})
	if err != nil {
		c.Close()
		return nil, err
	}
	return newSessionkit(st, func() error {
		defer c.Close()
		return deleteRedisPrefix(c, prefix)
	})
}

func openSessionkitPostgres(purpose string) (lib, error) {
	pool, err := newPgxPool()
	if err != nil {
		return nil, err
	}
	table := tableName(purpose)
	st, err := pgxstore.New(pool, &pgxstore.Options{Table: table})
	if err == nil {
		err = st.CreateTable(context.Background())
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return newSessionkit(st, func() error {
		defer pool.Close()
		_, err := pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`)
		return err
	})
}

func openSessionkitMySQL(purpose string) (lib, error) {
	db, err := newSQLDB("mysql", mysqlDSN())
	if err != nil {
		return nil, err
	}
	table := tableName(purpose)
	st, err := mysqlstore.New(db, &mysqlstore.Options{Table: table})
	if err == nil {
		err = st.CreateTable(context.Background())
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return newSessionkit(st, func() error {
		defer db.Close()
		cerr := st.Close()
		_, err := db.Exec("DROP TABLE IF EXISTS `" + table + "`")
		return errors.Join(cerr, err)
	})
}

// ---- scs ----

type scsLib struct {
	sm      *scs.SessionManager
	cleanup func() error
}

// newSCS returns scs with its defaults (gob codec, 24-hour lifetime, no
// idle timeout) on store, or on its default memory store if store is nil.
//
// scs.New always starts the default memory store's cleanup goroutine, and
// stopping it races with its start (the store writes its stop channel from
// that goroutine without synchronisation, scs issues #207, #228-#231), so
// the goroutine is left running: it wakes once a minute.
func newSCS(store scs.Store, cleanup func() error) *scsLib {
	sm := scs.New()
	if store != nil {
		sm.Store = store
	}
	return &scsLib{sm: sm, cleanup: cleanup}
}

func (l *scsLib) middleware(h http.Handler) http.Handler { return l.sm.LoadAndSave(h) }

func (l *scsLib) read(_ http.ResponseWriter, r *http.Request) (int, bool, error) {
	n, ok := l.sm.Get(r.Context(), "n").(int)
	return n, ok, nil
}

func (l *scsLib) incr(_ http.ResponseWriter, r *http.Request, pause time.Duration) (int, error) {
	ctx := r.Context()
	n := l.sm.GetInt(ctx, "n")
	if pause > 0 {
		time.Sleep(pause)
	}
	l.sm.Put(ctx, "n", n+1)
	return n + 1, nil
}

func (l *scsLib) cookieName() string { return l.sm.Cookie.Name }
func (l *scsLib) serverSide() bool   { return true }
func (l *scsLib) close() error {
	if l.cleanup == nil {
		return nil
	}
	return l.cleanup()
}

func openSCSMemory(string) (lib, error) {
	return newSCS(nil, nil), nil // scs's default store: its memstore
}

func openSCSRedis(purpose string) (lib, error) {
	pool := &redigo.Pool{
		MaxIdle:     8,
		IdleTimeout: time.Minute,
		Dial:        func() (redigo.Conn, error) { return redigo.DialURL(redisURL()) },
	}
	c, err := newRedisClient() // for the cleanup only
	if err != nil {
		return nil, err
	}
	prefix := "skbench:" + runID + ":" + purpose + ":"
	return newSCS(scsredis.NewWithPrefix(pool, prefix), func() error {
		defer c.Close()
		return errors.Join(pool.Close(), deleteRedisPrefix(c, prefix))
	}), nil
}

func openSCSPostgres(purpose string) (lib, error) {
	db, err := newSQLDB("pgx", postgresDSN())
	if err != nil {
		return nil, err
	}
	table := tableName(purpose)
	// The table and index of scs's postgresstore README.
	_, err = db.Exec(`CREATE TABLE ` + table + ` (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL);
CREATE INDEX ` + table + `_expiry_idx ON ` + table + ` (expiry)`)
	if err != nil {
		db.Close()
		return nil, err
	}
	st := postgresstore.NewWithConfig(db, postgresstore.Config{TableName: table, CleanUpInterval: 0})
	return newSCS(st, func() error {
		defer db.Close()
		_, err := db.Exec(`DROP TABLE IF EXISTS ` + table)
		return err
	}), nil
}

// ---- gorilla/sessions ----

type gorillaLib struct {
	store   gorilla.Store
	client  bool // the values travel in the cookie
	cleanup func() error
}

// gorillaKeys are the authentication and encryption keys of the gorilla
// stores: HMAC-SHA256 and AES-256, as its documentation recommends.
var gorillaKeys = [][]byte{
	[]byte("0123456789abcdef0123456789abcdef"),
	[]byte("fedcba9876543210fedcba9876543210"),
}

const gorillaCookie = "session"

func (l *gorillaLib) middleware(h http.Handler) http.Handler { return h }

func (l *gorillaLib) read(_ http.ResponseWriter, r *http.Request) (int, bool, error) {
	s, err := l.store.Get(r, gorillaCookie)
	if err != nil {
		return 0, false, err
	}
	n, ok := s.Values["n"].(int)
	return n, ok, nil
}

func (l *gorillaLib) incr(w http.ResponseWriter, r *http.Request, pause time.Duration) (int, error) {
	s, err := l.store.Get(r, gorillaCookie)
	if err != nil {
		return 0, err
	}
	n, _ := s.Values["n"].(int)
	if pause > 0 {
		time.Sleep(pause)
	}
	s.Values["n"] = n + 1
	if err := s.Save(r, w); err != nil {
		return 0, err
	}
	return n + 1, nil
}

func (l *gorillaLib) cookieName() string { return gorillaCookie }
func (l *gorillaLib) serverSide() bool   { return !l.client }
func (l *gorillaLib) close() error {
	if l.cleanup == nil {
		return nil
	}
	return l.cleanup()
}

func openGorillaCookie(string) (lib, error) {
	return &gorillaLib{store: gorilla.NewCookieStore(gorillaKeys...), client: true}, nil
}

func openGorillaFilesystem(purpose string) (lib, error) {
	dir, err := os.MkdirTemp("", "skbench-"+purpose+"-")
	if err != nil {
		return nil, err
	}
	return &gorillaLib{
		store:   gorilla.NewFilesystemStore(dir, gorillaKeys...),
		cleanup: func() error { return os.RemoveAll(dir) },
	}, nil
}

// ---- floor: the hand-written minimum ----

// A rawStore is the least a session needs from a store: one round trip to
// read a token's data and one to write it, with an expiry.
type rawStore interface {
	get(ctx context.Context, token string, now time.Time) (data []byte, found bool, err error)
	// put writes data under token; create tells a new token (insert) from
	// an existing one (update).
	put(ctx context.Context, token string, data []byte, expiry time.Time, create bool) error
	close() error
}

// floorLib is a session in its simplest form: a random token in a cookie,
// the counter as decimal digits under it, one store round trip per read
// and per write, no codec, no versions.
type floorLib struct{ st rawStore }

const (
	floorCookie   = "sid"
	floorLifetime = 24 * time.Hour
)

func newFloor(st rawStore) *floorLib { return &floorLib{st: st} }

func (l *floorLib) middleware(h http.Handler) http.Handler { return h }

func (l *floorLib) load(r *http.Request) (token string, n int, found bool, err error) {
	c, err := r.Cookie(floorCookie)
	if err != nil {
		return "", 0, false, nil
	}
	data, found, err := l.st.get(r.Context(), c.Value, time.Now())
	if err != nil || !found {
		return "", 0, false, err
	}
	n, err = parseDigits(data)
	return c.Value, n, err == nil, err
}

func (l *floorLib) read(_ http.ResponseWriter, r *http.Request) (int, bool, error) {
	_, n, found, err := l.load(r)
	return n, found, err
}

func (l *floorLib) incr(w http.ResponseWriter, r *http.Request, pause time.Duration) (int, error) {
	token, n, found, err := l.load(r)
	if err != nil {
		return 0, err
	}
	if pause > 0 {
		time.Sleep(pause)
	}
	n++
	exp := time.Now().Add(floorLifetime)
	if !found {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		token = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if err := l.st.put(r.Context(), token, strconv.AppendInt(nil, int64(n), 10), exp, !found); err != nil {
		return 0, err
	}
	if !found {
		http.SetCookie(w, &http.Cookie{
			Name: floorCookie, Value: token, Path: "/", MaxAge: int(floorLifetime / time.Second),
			HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
		})
	}
	return n, nil
}

func (l *floorLib) cookieName() string { return floorCookie }
func (l *floorLib) serverSide() bool   { return true }
func (l *floorLib) close() error       { return l.st.close() }

// parseDigits parses a non-negative decimal number without allocating.
func parseDigits(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, fmt.Errorf("floor: bad counter %q", b)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("floor: bad counter %q", b)
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// openRaw opens a floor on the raw store that open returns.
func openRaw(open func(purpose string) (rawStore, error)) func(string) (lib, error) {
	return func(purpose string) (lib, error) {
		st, err := open(purpose)
		if err != nil {
			return nil, err
		}
		return newFloor(st), nil
	}
}

var (
	openFloorRedis    = openRaw(func(p string) (rawStore, error) { return newRedisRaw(p) })
	openFloorPostgres = openRaw(func(p string) (rawStore, error) { return newPostgresRaw(p) })
	openFloorMySQL    = openRaw(func(p string) (rawStore, error) { return newMySQLRaw(p) })
)
