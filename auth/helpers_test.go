package auth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/auth"
	"github.com/sessionkit/sessions/memstore"
)

// testKey is a server key for tests.
var testKey = bytes.Repeat([]byte("k"), 32)

// user is the application's user type in the tests.
type user struct {
	ID, Name string
	Hash     []byte // the "password hash"
}

// userDB implements auth.Users over a map and counts the loads.
type userDB struct {
	mu    sync.Mutex
	users map[string]user
	loads atomic.Int64
	err   error
	hook  func(id string) // called inside LoadUser, before the user is read
}

func newUserDB(users ...user) *userDB {
	db := &userDB{users: map[string]user{}}
	for _, u := range users {
		db.users[u.ID] = u
	}
	return db
}

func (db *userDB) LoadUser(_ context.Context, id string) (user, bool, error) {
	db.loads.Add(1)
	db.mu.Lock()
	hook := db.hook
	db.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	db.mu.Lock()
	u, ok := db.users[id]
	err := db.err
	db.mu.Unlock()
	if err != nil {
		return user{}, false, err
	}
	return u, ok, nil
}

func (db *userDB) UserID(u user) string        { return u.ID }
func (db *userDB) SessionSecret(u user) []byte { return u.Hash }

// setPassword changes a user's secret and returns the updated user.
func (db *userDB) setPassword(id, hash string) user {
	db.mu.Lock()
	defer db.mu.Unlock()
	u := db.users[id]
	u.Hash = []byte(hash)
	db.users[id] = u
	return u
}

func (db *userDB) get(id string) user {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.users[id]
}

func (db *userDB) remove(id string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	delete(db.users, id)
}

// hookStore wraps a store; before, if set, runs before every call with
// the operation's name and id.
type hookStore struct {
	sessions.Store
	idx     sessions.OwnerIndex
	mu      sync.Mutex
	before  func(op, id string) error // an error fails the call
	fail    error                     // returned by every call when set
	updates atomic.Int64
}

func (s *hookStore) hook(op, id string) error {
	s.mu.Lock()
	b, fail := s.before, s.fail
	s.mu.Unlock()
	if b != nil {
		if err := b(op, id); err != nil {
			return err
		}
	}
	return fail
}

func (s *hookStore) setHook(f func(op, id string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = f
}

func (s *hookStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *hookStore) Create(ctx context.Context, id string, data []byte, exp time.Time, owner string, now time.Time) (bool, error) {
	if err := s.hook("create", id); err != nil {
		return false, err
	}
	return s.Store.Create(ctx, id, data, exp, owner, now)
}

func (s *hookStore) Load(ctx context.Context, id string, now time.Time) ([]byte, int64, time.Time, bool, error) {
	if err := s.hook("load", id); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	return s.Store.Load(ctx, id, now)
}

func (s *hookStore) Update(ctx context.Context, id string, v int64, data []byte, exp time.Time, owner string, now time.Time) (bool, bool, error) {
	if err := s.hook("update", id); err != nil {
		return false, false, err
	}
	s.updates.Add(1)
	return s.Store.Update(ctx, id, v, data, exp, owner, now)
}

func (s *hookStore) Delete(ctx context.Context, id string) error {
	if err := s.hook("delete", id); err != nil {
		return err
	}
	return s.Store.Delete(ctx, id)
}

// ownerStore is a hookStore with an owner index.
type ownerStore struct{ *hookStore }

func (s ownerStore) ListOwner(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if err := s.hook("listowner", owner); err != nil {
		return nil, err
	}
	return s.idx.ListOwner(ctx, owner, now)
}

func (s ownerStore) DeleteOwner(ctx context.Context, owner string, now time.Time) (int, error) {
	if err := s.hook("deleteowner", owner); err != nil {
		return 0, err
	}
	return s.idx.DeleteOwner(ctx, owner, now)
}

// env is a Manager, an Auth and the users of one test.
type env struct {
	t     *testing.T
	hs    *hookStore
	store sessions.Store // hs, with or without the owner index
	m     *sessions.Manager
	a     *auth.Auth[user]
	db    *userDB
	logs  *bytes.Buffer
}

type envOptions struct {
	noOwnerIndex bool
	auth         auth.Options
	sessions     sessions.Options
}

func newEnv(t *testing.T, o *envOptions) *env {
	t.Helper()
	if o == nil {
		o = &envOptions{}
	}
	mem, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := &hookStore{Store: mem, idx: mem}
	var store sessions.Store = ownerStore{hs}
	if o.noOwnerIndex {
		store = hs
	}
	logs := new(bytes.Buffer)
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil))
	so := o.sessions
	so.InsecureCookie = true
	so.Logger = logger
	m, err := sessions.New(store, &so)
	if err != nil {
		t.Fatal(err)
	}
	db := newUserDB(
		user{ID: "alice", Name: "Alice", Hash: []byte("hash-a1")},
		user{ID: "bob", Name: "Bob", Hash: []byte("hash-b1")},
	)
	ao := o.auth
	if ao.Key == nil {
		ao.Key = testKey
	}
	if ao.DeviceStore == nil {
		ao.DeviceStore = store
	}
	ao.Logger = logger
	a, err := auth.New(m, db, &ao)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, hs: hs, store: store, m: m, a: a, db: db, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// device is one browser: a cookie, a user agent and an address.
type device struct {
	e      *env
	cookie *http.Cookie
	ua, ip string
}

func (e *env) device(ua, ip string) *device { return &device{e: e, ua: ua, ip: ip} }

// do runs fn as the handler of one request from d, through the Manager's
// and the Auth's middleware, and keeps the cookie the response sets.
func (d *device) do(fn http.HandlerFunc) *httptest.ResponseRecorder {
	return d.serve(d.e.m.Handler(d.e.a.Middleware(fn)), httptest.NewRequest(http.MethodGet, "/page?x=1", nil))
}

// serve sends r from d to h.
func (d *device) serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	r.RemoteAddr = d.ip + ":40000"
	r.Header.Set("User-Agent", d.ua)
	if d.cookie != nil {
		r.AddCookie(&http.Cookie{Name: d.cookie.Name, Value: d.cookie.Value})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.Name != d.e.m.CookieName() {
			continue
		}
		if c.MaxAge < 0 || c.Value == "" {
			d.cookie = nil
		} else {
			d.cookie = c
		}
	}
	return w
}

// login logs d in as id.
func (d *device) login(id string, remember bool) {
	d.e.t.Helper()
	var err error
	w := d.do(func(w http.ResponseWriter, r *http.Request) {
		err = d.e.a.Login(r, d.e.db.get(id), remember)
	})
	if err != nil || w.Code != http.StatusOK || d.cookie == nil {
		d.e.t.Fatalf("login %s: %v (status %d, cookie %v)", id, err, w.Code, d.cookie)
	}
}

// who returns the ID of d's user, "" for none; it fails the test on error.
func (d *device) who() string {
	d.e.t.Helper()
	var (
		u   user
		ok  bool
		err error
	)
	d.do(func(w http.ResponseWriter, r *http.Request) { u, ok, err = d.e.a.User(r) })
	if err != nil {
		d.e.t.Fatalf("User: %v", err)
	}
	if !ok {
		return ""
	}
	return u.ID
}

var errBoom = errors.New("boom")

const (
	firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	chromeUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// pauseAt makes the next store call op wait until release is called;
// reached is closed when it starts waiting. Other calls pass.
func (e *env) pauseAt(op string) (reached <-chan struct{}, release func()) {
	r, rel := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.hs.setHook(func(o, id string) error {
		if o != op {
			return nil
		}
		first := false
		once.Do(func() { first = true })
		if first {
			close(r)
			<-rel
		}
		return nil
	})
	return r, func() { close(rel) }
}
