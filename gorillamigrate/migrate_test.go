package gorillamigrate_test

import (
	"encoding/gob"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/securecookie"
	gorilla "github.com/gorilla/sessions"
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/gorillamigrate"
	"github.com/sessionkit/sessions/memstore"
)

var (
	hashKey  = []byte("gorilla hash key, 32 bytes long!")
	blockKey = []byte("gorilla block key 32 bytes long!")
	oldHash  = []byte("an older gorilla hash key, rotated out")
)

// User is a gob-registered struct, as gorilla applications store them.
type User struct{ Name string }

// Role is a named type of a basic kind: not copied without Convert.
type Role string

// Gob needs the concrete types stored in interface values registered, as
// the gorilla application registered them.
func init() {
	gob.Register(User{})
	gob.Register(Role(""))
	gob.Register(map[string]int{})
	gob.Register(map[string][]User{})
	gob.Register(time.Time{})
}

// gorillaCookie returns the cookie that the real gorilla/sessions
// CookieStore with keyPairs sets after set(values).
func gorillaCookie(t *testing.T, name string, set func(map[any]any), keyPairs ...[]byte) *http.Cookie {
	t.Helper()
	store := gorilla.NewCookieStore(keyPairs...)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	s, err := store.Get(r, name)
	if err != nil {
		t.Fatal(err)
	}
	set(s.Values)
	if err := s.Save(r, w); err != nil {
		t.Fatal(err)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != name {
		t.Fatalf("gorilla set %v", cs)
	}
	return cs[0]
}

// fixture is a Manager with the migration middleware in front of a handler
// that answers the session's values as JSON.
type fixture struct {
	m       *sessions.Manager
	h       http.Handler
	mu      sync.Mutex
	reports []error
}

func newFixture(t *testing.T, clientSide bool, opts gorillamigrate.Options) *fixture {
	t.Helper()
	f := &fixture{}
	var err error
	mo := &sessions.Options{CookieName: "sk", InsecureCookie: true}
	if clientSide {
		mo.Keys = [][]byte{[]byte("sessionkit key of 32 bytes......")}
		f.m, err = sessions.NewClientSide(mo)
	} else {
		store, serr := memstore.New(nil)
		if serr != nil {
			t.Fatal(serr)
		}
		f.m, err = sessions.New(store, mo)
	}
	if err != nil {
		t.Fatal(err)
	}
	if opts.CookieName == "" {
		opts.CookieName = "gsession"
	}
	opts.Report = func(_ *http.Request, err error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reports = append(f.reports, err)
	}
	mig, err := gorillamigrate.New(f.m, &opts)
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.m.Handler(mig.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessions.FromContext(r.Context())
		keys, err := s.Keys()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out := map[string]json.RawMessage{}
		for _, k := range keys {
			v, _, _ := sessions.Get[json.RawMessage](s, k)
			out[k] = v
		}
		if r.URL.Query().Get("fail") != "" {
			http.Error(w, "failing", 500)
			return
		}
		if r.URL.Query().Get("set") != "" {
			_ = s.Set("touched", true)
		}
		_ = json.NewEncoder(w).Encode(out)
	})))
	return f
}

// do sends a request with cookies and returns the response.
func (f *fixture) do(t *testing.T, path string, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("status %d: %v", res.StatusCode, err)
	}
	return out
}

func named(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// wantRemoved checks the removal cookie of the gorilla cookie.
func wantRemoved(t *testing.T, res *http.Response, path, domain string) {
	t.Helper()
	c := named(res, "gsession")
	if c == nil || c.Value != "" || c.MaxAge >= 0 || c.Path != path || c.Domain != domain {
		t.Fatalf("want a removal cookie for gsession with Path %q and Domain %q; Set-Cookie %q", path, domain, res.Header.Values("Set-Cookie"))
	}
}

func wantNotRemoved(t *testing.T, res *http.Response) {
	t.Helper()
	if c := named(res, "gsession"); c != nil {
		t.Fatalf("the gorilla cookie was removed: %q", res.Header.Values("Set-Cookie"))
	}
}

func basicValues(v map[any]any) {
	v["user"] = "alice"
	v["id"] = 42
	v["admin"] = true
	v["ratio"] = 0.5
	v["big"] = uint64(1 << 60)
	v["roles"] = []string{"a", "b"}
	v["prefs"] = map[string]int{"x": 1}
	v["blob"] = []byte{0, 1, 2}
}

func TestMigrate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		keys       [][]byte // the application's key pairs (current first)
		issue      [][]byte // the key pairs the cookie was issued with
		clientSide bool
	}{
		{"signed only", [][]byte{hashKey}, [][]byte{hashKey}, false},
		{"signed and encrypted", [][]byte{hashKey, blockKey}, [][]byte{hashKey, blockKey}, false},
		{"encrypted, client-side sessionkit", [][]byte{hashKey, blockKey}, [][]byte{hashKey, blockKey}, true},
		{"issued with a rotated-out pair", [][]byte{hashKey, blockKey, oldHash, nil}, [][]byte{oldHash}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.clientSide, gorillamigrate.Options{KeyPairs: tc.keys, Path: "/", Domain: "example.com"})
			old := gorillaCookie(t, "gsession", basicValues, tc.issue...)
			res := f.do(t, "/", old)
			got := body(t, res)
			want := map[string]any{"user": "alice", "id": 42.0, "admin": true, "ratio": 0.5, "big": float64(1 << 60),
				"roles": []any{"a", "b"}, "prefs": map[string]any{"x": 1.0}, "blob": "AAEC"}
			for k, v := range want {
				if g, _ := json.Marshal(got[k]); string(g) != mustJSON(v) {
					t.Errorf("%s: got %s, want %s", k, g, mustJSON(v))
				}
			}
			if _, ok := got[gorillamigrate.DefaultMarkerKey]; !ok {
				t.Errorf("no marker in %v", got)
			}
			wantRemoved(t, res, "/", "example.com")
			sk := named(res, "sk")
			if sk == nil || sk.Value == "" {
				t.Fatalf("no sessionkit cookie: %q", res.Header.Values("Set-Cookie"))
			}
			if len(f.reports) != 0 {
				t.Fatalf("reports: %v", f.reports)
			}
			// The next request has only the new cookie: typed reads work.
			res = f.do(t, "/", sk)
			if got := body(t, res); got["user"] != "alice" {
				t.Fatalf("after the migration: %v", got)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestAlreadyMigrated: a gorilla cookie that comes back with a migrated
// session is removed again, and its values are not copied again over the
// session's newer ones.
func TestAlreadyMigrated(t *testing.T) {
	f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey}})
	old := gorillaCookie(t, "gsession", func(v map[any]any) { v["user"] = "alice" }, hashKey)
	res := f.do(t, "/", old)
	sk := named(res, "sk")
	wantRemoved(t, res, "/", "")
	// The application changes the value; then the old cookie comes back.
	newer := gorillaCookie(t, "gsession", func(v map[any]any) { v["user"] = "mallory"; v["extra"] = 1 }, hashKey)
	res = f.do(t, "/", sk, newer)
	got := body(t, res)
	if got["user"] != "alice" || got["extra"] != nil {
		t.Fatalf("a second gorilla cookie was copied into a migrated session: %v", got)
	}
	wantRemoved(t, res, "/", "")
}

// TestExistingKeysWin: keys the sessionkit session already holds are not
// overwritten.
func TestExistingKeysWin(t *testing.T) {
	f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey}})
	res := f.do(t, "/?set=1")
	sk := named(res, "sk")
	old := gorillaCookie(t, "gsession", func(v map[any]any) { v["touched"] = "old"; v["user"] = "alice" }, hashKey)
	got := body(t, f.do(t, "/", sk, old))
	if got["touched"] != true || got["user"] != "alice" {
		t.Fatalf("got %v", got)
	}
}

// TestMaxAge: a gorilla cookie older than the CookieStore's MaxAge is
// refused, as gorilla refused it, and left alone.
func TestMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey}, MaxAge: 3600})
		old := gorillaCookie(t, "gsession", func(v map[any]any) { v["user"] = "alice" }, hashKey)
		time.Sleep(30 * time.Minute)
		res := f.do(t, "/", old)
		if got := body(t, res); got["user"] != "alice" {
			t.Fatalf("a 30-minute-old cookie with MaxAge 1h: %v", got)
		}
		time.Sleep(31 * time.Minute)
		res = f.do(t, "/", old)
		if got := body(t, res); len(got) != 0 {
			t.Fatalf("a 61-minute-old cookie with MaxAge 1h was migrated: %v", got)
		}
		wantNotRemoved(t, res)
		if named(res, "sk") != nil {
			t.Fatal("an expired gorilla cookie started a session")
		}
	})
}

// TestDefaultMaxAge: with MaxAge zero, gorilla's 30 days apply.
func TestDefaultMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey}})
		old := gorillaCookie(t, "gsession", func(v map[any]any) { v["user"] = "alice" }, hashKey)
		time.Sleep(31 * 24 * time.Hour)
		if got := body(t, f.do(t, "/", old)); len(got) != 0 {
			t.Fatalf("a 31-day-old cookie was migrated: %v", got)
		}
	})
}

// TestRefused: tampered cookies, cookies under other keys or another name
// are no gorilla session: nothing copied, nothing removed, nothing reported.
func TestRefused(t *testing.T) {
	f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey, blockKey}})
	good := gorillaCookie(t, "gsession", func(v map[any]any) { v["user"] = "alice" }, hashKey, blockKey)
	flip := func(i int) *http.Cookie {
		b := []byte(good.Value)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return &http.Cookie{Name: "gsession", Value: string(b)}
	}
	otherName := gorillaCookie(t, "other", func(v map[any]any) { v["user"] = "alice" }, hashKey, blockKey)
	for name, c := range map[string]*http.Cookie{
		"tampered start":  flip(3),
		"tampered middle": flip(len(good.Value) / 2),
		"tampered end":    flip(len(good.Value) - 3),
		"truncated":       {Name: "gsession", Value: good.Value[:len(good.Value)-4]},
		"other key":       gorillaCookie(t, "gsession", func(v map[any]any) { v["user"] = "alice" }, oldHash),
		"other name":      {Name: "gsession", Value: otherName.Value},
		"not base64":      {Name: "gsession", Value: "!!!"},
	} {
		t.Run(name, func(t *testing.T) {
			res := f.do(t, "/", c)
			if got := body(t, res); len(got) != 0 {
				t.Fatalf("migrated: %v", got)
			}
			wantNotRemoved(t, res)
		})
	}
	if len(f.reports) != 0 {
		t.Fatalf("reports for invalid cookies: %v", f.reports)
	}
}

// TestUnsupported: values that are not basic, and keys that are not
// strings, are reported and not copied; the rest is copied, and the
// cookie removed.
func TestUnsupported(t *testing.T) {
	f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey}})
	old := gorillaCookie(t, "gsession", func(v map[any]any) {
		v["user"] = User{Name: "alice"}
		v["when"] = time.Unix(0, 0).UTC()
		v[7] = "int key"
		v["nested"] = map[string][]User{"u": {{Name: "bob"}}}
		v["role"] = Role("admin")
		v["ok"] = "copied"
	}, hashKey)
	res := f.do(t, "/", old)
	got := body(t, res)
	if got["ok"] != "copied" || got["user"] != nil || got["when"] != nil || got["nested"] != nil || got["role"] != nil {
		t.Fatalf("got %v", got)
	}
	wantRemoved(t, res, "/", "")
	keys := map[any]bool{}
	for _, err := range f.reports {
		var ue *gorillamigrate.UnsupportedError
		if !errors.As(err, &ue) {
			t.Fatalf("report %v is not an *UnsupportedError", err)
		}
		keys[ue.Key] = true
	}
	for _, k := range []any{"user", "when", 7, "nested", "role"} {
		if !keys[k] {
			t.Errorf("key %#v not reported; reports %v", k, f.reports)
		}
	}
}

// TestConvert: Options.Convert decides for values that are not basic.
func TestConvert(t *testing.T) {
	f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey},
		Convert: func(key string, v any) (any, error) {
			if u, ok := v.(User); ok {
				return map[string]string{"name": u.Name}, nil
			}
			return nil, errors.New("no")
		}})
	old := gorillaCookie(t, "gsession", func(v map[any]any) { v["user"] = User{Name: "alice"} }, hashKey)
	got := body(t, f.do(t, "/", old))
	if u, _ := got["user"].(map[string]any); u["name"] != "alice" {
		t.Fatalf("got %v", got)
	}
}

// TestUndecodable: a cookie whose MAC verifies but whose content does not
// decode (here JSON where the store expects gob, as after a serializer
// change) is reported and left in place.
func TestUndecodable(t *testing.T) {
	f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey}})
	sc := securecookie.New(hashKey, nil).SetSerializer(securecookie.JSONEncoder{})
	v, err := sc.Encode("gsession", map[string]any{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	res := f.do(t, "/", &http.Cookie{Name: "gsession", Value: v})
	if got := body(t, res); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
	wantNotRemoved(t, res)
	if len(f.reports) != 1 || !errors.Is(f.reports[0], gorillamigrate.ErrUndecodable) {
		t.Fatalf("reports %v, want one ErrUndecodable", f.reports)
	}
}

// TestFailedResponse: a response that saves nothing (5xx) keeps the old
// cookie, so that the next request migrates it; with client-side sessions
// nothing else would keep the values.
func TestFailedResponse(t *testing.T) {
	for _, clientSide := range []bool{false, true} {
		f := newFixture(t, clientSide, gorillamigrate.Options{KeyPairs: [][]byte{hashKey}})
		old := gorillaCookie(t, "gsession", func(v map[any]any) { v["user"] = "alice" }, hashKey)
		res := f.do(t, "/?fail=1", old)
		if res.StatusCode != 500 {
			t.Fatalf("status %d", res.StatusCode)
		}
		wantNotRemoved(t, res)
		res = f.do(t, "/", old)
		if got := body(t, res); got["user"] != "alice" {
			t.Fatalf("clientSide=%v: %v", clientSide, got)
		}
		wantRemoved(t, res, "/", "")
	}
}

// TestEmptyGorillaSession: an empty gorilla session is removed without
// starting a sessionkit session.
func TestEmptyGorillaSession(t *testing.T) {
	f := newFixture(t, false, gorillamigrate.Options{KeyPairs: [][]byte{hashKey}})
	old := gorillaCookie(t, "gsession", func(map[any]any) {}, hashKey)
	res := f.do(t, "/", old)
	wantRemoved(t, res, "/", "")
	if named(res, "sk") != nil {
		t.Fatal("an empty gorilla session started a sessionkit session")
	}
}

func TestNewValidates(t *testing.T) {
	store, _ := memstore.New(nil)
	m, _ := sessions.New(store, &sessions.Options{CookieName: "sk"})
	for name, o := range map[string]*gorillamigrate.Options{
		"nil":        nil,
		"no name":    {KeyPairs: [][]byte{hashKey}},
		"same name":  {CookieName: "sk", KeyPairs: [][]byte{hashKey}},
		"no keys":    {CookieName: "g"},
		"empty hash": {CookieName: "g", KeyPairs: [][]byte{nil, blockKey}},
	} {
		if _, err := gorillamigrate.New(m, o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := gorillamigrate.New(m, &gorillamigrate.Options{CookieName: "g", KeyPairs: [][]byte{hashKey}}); err != nil {
		t.Fatal(err)
	}
}
