// Package gorillamigrate moves users from gorilla/sessions' CookieStore to
// sessionkit without logging them out.
//
// Install its middleware inside the sessionkit middleware, with the
// application's old CookieStore key pairs and session (cookie) name:
//
//	m, _ := sessions.New(store, nil) // or sessions.NewClientSide
//	mig, err := gorillamigrate.New(m, &gorillamigrate.Options{
//		CookieName: "session-name",          // the name given to store.Get
//		KeyPairs:   [][]byte{hashKey, blockKey}, // as given to NewCookieStore
//	})
//	http.ListenAndServe(addr, m.Handler(mig.Handler(app)))
//
// On a request that carries a valid gorilla cookie, and whose sessionkit
// session was not migrated yet, the middleware copies the cookie's values
// into the session, saves it, and removes the old cookie with a removal
// Set-Cookie (same Name, Path and Domain). The handler then sees the
// values through the usual [sessions.Session] API, as JSON: a value stored
// as an int in gorilla reads back with sessions.Get[int].
//
// Only basic values are copied: strings, booleans, integers, finite
// floats, []byte, and slices, arrays and string-keyed maps of those
// (nested to any depth). Anything else (a gob-registered struct, a
// time.Time, a named type, a key that is not a string) is reported as an
// [*UnsupportedError] through [Options.Report], never guessed, unless
// [Options.Convert] converts it. The session is marked as migrated (under
// [Options.MarkerKey]), so a gorilla cookie that comes back (another tab,
// a lost removal) is removed again without copying twice; keys the
// session already holds are never overwritten.
//
// Decoding uses gorilla/securecookie itself, so any cookie the old
// application accepted is accepted here: the same MAC, encryption, key
// rotation and max-age checks. A cookie that fails them is left alone.
package gorillamigrate

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/sessionkit/sessions"
)

// DefaultMarkerKey is the session key that records the migration, when
// Options.MarkerKey is empty. Its value is the migration's Unix time.
const DefaultMarkerKey = "gorillamigrate.migrated"

// defaultMaxAge is gorilla's CookieStore default: 30 days.
const defaultMaxAge = 86400 * 30

// Options configures a [Migrator]. CookieName and either KeyPairs or Codecs
// are required; zero values elsewhere mean gorilla's CookieStore defaults.
type Options struct {
	// CookieName is the gorilla session name (the name passed to
	// store.Get), which is the cookie's name. It must differ from the
	// sessionkit Manager's cookie name.
	CookieName string

	// KeyPairs are the keys the application passed to
	// sessions.NewCookieStore, in the same order: hash key, block key
	// (nil for none), then older pairs for rotation.
	KeyPairs [][]byte

	// Codecs, if set, replaces KeyPairs and MaxAge: the CookieStore's own
	// Codecs, for an application that changed them (another serializer,
	// hash function or max age).
	Codecs []securecookie.Codec

	// MaxAge is the CookieStore's Options.MaxAge, in seconds: a cookie
	// older than that is refused, as gorilla refused it. Zero means
	// gorilla's default, 30 days; a negative value means no limit.
	MaxAge int

	// Path and Domain are the old cookie's attributes (gorilla's
	// Options.Path and Options.Domain), used for its removal. An empty
	// Path means "/", gorilla's default.
	Path   string
	Domain string

	// Secure and SameSite are set on the removal cookie, as gorilla set
	// them on the old one (gorilla's defaults are Secure and SameSite
	// None, which browsers accept only together).
	Secure   bool
	SameSite http.SameSite

	// MarkerKey is the session key that records the migration. Empty
	// means [DefaultMarkerKey].
	MarkerKey string

	// Convert, if set, is offered every value that is not a basic one
	// (see the package doc), with its key: it returns a value that
	// encoding/json encodes, or an error to report. Nil means: report
	// every such value as an [*UnsupportedError].
	Convert func(key string, value any) (any, error)

	// ShouldSave mirrors the Manager's Options.ShouldSave: the old cookie
	// is removed only from responses whose status it accepts, so that a
	// response that saves nothing keeps it. Nil means: below 500.
	ShouldSave func(status int) bool

	// Report receives every value that was not copied and every cookie
	// that was valid but could not be decoded or copied. Nil means: log
	// it with Logger at level Warn. The request goes on either way.
	Report func(r *http.Request, err error)

	// Logger is used when Report is nil. Nil means slog.Default().
	Logger *slog.Logger
}

// UnsupportedError reports a value of a gorilla session that was not
// copied: its key is not a string, or its value is not a basic one.
type UnsupportedError struct {
	Key    any    // the gorilla key
	Type   string // the offending type, e.g. "main.User" or "int"
	Reason string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("gorillamigrate: key %#v not copied: %s (%s)", e.Key, e.Reason, e.Type)
}

// ErrUndecodable is reported (wrapped) for a cookie whose MAC verified but
// whose content could not be decoded, for example a gob type the program
// no longer registers. The cookie is left in place, so that a fixed
// program can still migrate it.
var ErrUndecodable = errors.New("gorillamigrate: valid gorilla cookie could not be decoded")

// Migrator is the migration middleware. Create one with [New]; it is
// immutable and safe for concurrent use.
type Migrator struct {
	m      *sessions.Manager
	opts   Options
	codecs []securecookie.Codec
}

// New returns a Migrator for sessions of m. It copies *opts and reports
// invalid options with an error.
func New(m *sessions.Manager, opts *Options) (*Migrator, error) {
	if m == nil || opts == nil {
		return nil, errors.New("gorillamigrate: New needs a Manager and Options")
	}
	o := *opts
	switch {
	case o.CookieName == "":
		return nil, errors.New("gorillamigrate: Options.CookieName is required")
	case o.CookieName == m.CookieName():
		return nil, fmt.Errorf("gorillamigrate: the Manager uses the cookie name %q too: give sessionkit another name, or the removal of the old cookie would remove the new one", o.CookieName)
	case len(o.Codecs) == 0 && len(o.KeyPairs) == 0:
		return nil, errors.New("gorillamigrate: Options.KeyPairs (or Codecs) is required")
	}
	codecs := o.Codecs
	if len(codecs) == 0 {
		for i := 0; i < len(o.KeyPairs); i += 2 {
			if len(o.KeyPairs[i]) == 0 {
				return nil, fmt.Errorf("gorillamigrate: KeyPairs[%d] is an empty hash key", i)
			}
		}
		codecs = securecookie.CodecsFromPairs(o.KeyPairs...)
		age := o.MaxAge
		switch {
		case age == 0:
			age = defaultMaxAge
		case age < 0:
			age = 0 // securecookie: no limit
		}
		for _, c := range codecs {
			if sc, ok := c.(*securecookie.SecureCookie); ok {
				sc.MaxAge(age)
			}
		}
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if o.MarkerKey == "" {
		o.MarkerKey = DefaultMarkerKey
	}
	if o.ShouldSave == nil {
		o.ShouldSave = func(status int) bool { return status < 500 }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Report == nil {
		logger := o.Logger
		o.Report = func(r *http.Request, err error) {
			logger.WarnContext(r.Context(), "gorillamigrate: not migrated", "err", err)
		}
	}
	return &Migrator{m: m, opts: o, codecs: codecs}, nil
}

// Handler returns the middleware wrapping next. It must run inside the
// Manager's middleware (m.Handler(mig.Handler(next))). A request without
// a gorilla cookie costs one scan of its Cookie headers.
func (g *Migrator) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values, ok := g.decode(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		s := g.m.FromContext(r.Context())
		if s == nil {
			g.opts.Report(r, errors.New("gorillamigrate: no sessionkit session on the request: install the middleware inside Manager.Handler"))
			next.ServeHTTP(w, r)
			return
		}
		if err := g.copy(r, s, values); err != nil {
			g.opts.Report(r, err)
			next.ServeHTTP(w, r) // the old cookie stays: the next request tries again
			return
		}
		rw := &removeWriter{ResponseWriter: w, g: g}
		next.ServeHTTP(rw, r)
		if !rw.done {
			rw.WriteHeader(http.StatusOK) // what the Manager would commit
		}
	})
}

// decode returns the values of the first cookie named CookieName that
// gorilla would have accepted.
func (g *Migrator) decode(r *http.Request) (map[any]any, bool) {
	for _, c := range r.CookiesNamed(g.opts.CookieName) {
		values := map[any]any{}
		err := securecookie.DecodeMulti(g.opts.CookieName, c.Value, &values, g.codecs...)
		if err == nil {
			return values, true
		}
		if deserializeFailed(err) {
			g.opts.Report(r, fmt.Errorf("%w: %w", ErrUndecodable, err))
		}
	}
	return nil, false
}

// deserializeFailed reports whether err says that a cookie passed its MAC
// and age checks but its content did not decode: securecookie wraps the
// serializer's own error (itself a securecookie.Error) only then.
func deserializeFailed(err error) bool {
	var multi securecookie.MultiError
	if errors.As(err, &multi) {
		for _, e := range multi {
			if deserializeFailed(e) {
				return true
			}
		}
		return false
	}
	var se securecookie.Error
	if !errors.As(err, &se) || !se.IsDecode() {
		return false
	}
	_, fromSerializer := se.Cause().(securecookie.Error)
	return fromSerializer
}

// copy copies values into s, unless s was migrated already, and saves s.
func (g *Migrator) copy(r *http.Request, s *sessions.Session, values map[any]any) error {
	if len(values) == 0 {
		return nil // an empty gorilla session: nothing to copy, no session to start
	}
	if _, done, err := sessions.Get[int64](s, g.opts.MarkerKey); err != nil {
		return fmt.Errorf("gorillamigrate: reading the session: %w", err)
	} else if done {
		return nil // migrated before: only remove the cookie again
	}
	existing, err := s.Keys()
	if err != nil {
		return fmt.Errorf("gorillamigrate: reading the session: %w", err)
	}
	for k, v := range values {
		key, ok := k.(string)
		if !ok {
			g.opts.Report(r, &UnsupportedError{Key: k, Type: fmt.Sprintf("%T", k), Reason: "the key is not a string"})
			continue
		}
		if key == g.opts.MarkerKey || contains(existing, key) {
			continue // the session's own value wins
		}
		cv, err := basic(reflect.ValueOf(v))
		if err != nil && g.opts.Convert != nil {
			cv, err = g.opts.Convert(key, v)
		}
		if err != nil {
			var ue *UnsupportedError
			if errors.As(err, &ue) {
				ue.Key = k
			}
			g.opts.Report(r, err)
			continue
		}
		if err := s.Set(key, cv); err != nil {
			g.opts.Report(r, fmt.Errorf("gorillamigrate: key %q not copied: %w", key, err))
		}
	}
	// Update saves the session (the copied values with the marker) before
	// it returns, so the old cookie is removed only once they are stored.
	now := time.Now().Unix()
	if _, err := sessions.Update(s, g.opts.MarkerKey, func(int64) int64 { return now }); err != nil {
		return fmt.Errorf("gorillamigrate: saving the session: %w", err)
	}
	return nil
}

func contains(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// basic returns v as a value encoding/json encodes faithfully, or an
// *UnsupportedError if v is not a basic value: a predeclared string,
// boolean or number type, or a slice, array or string-keyed map of basic
// values. Named types (even of a basic kind) are not basic: their methods
// may matter, and the program decides with Options.Convert.
func basic(v reflect.Value) (any, error) {
	if !v.IsValid() {
		return nil, &UnsupportedError{Type: "nil", Reason: "a nil value"}
	}
	t := v.Type()
	if t.PkgPath() != "" {
		return nil, &UnsupportedError{Type: t.String(), Reason: "not a basic type"}
	}
	switch t.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint(), nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, &UnsupportedError{Type: t.String(), Reason: "not a finite number"}
		}
		return f, nil
	case reflect.Interface:
		if v.IsNil() {
			return nil, nil // a nil element of a []any or map[string]any
		}
		return basic(v.Elem())
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Elem().PkgPath() == "" {
			return v.Bytes(), nil // []byte: JSON base64, read back as []byte
		}
		if t.Kind() == reflect.Slice && v.IsNil() {
			return []any{}, nil
		}
		out := make([]any, v.Len())
		for i := range out {
			e, err := basic(v.Index(i))
			if err != nil {
				return nil, wrapPath(err, t)
			}
			out[i] = e
		}
		return out, nil
	case reflect.Map:
		out := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			if k.Kind() == reflect.Interface {
				k = k.Elem()
			}
			if !k.IsValid() || k.Kind() != reflect.String || k.Type().PkgPath() != "" {
				return nil, &UnsupportedError{Type: t.String(), Reason: "a map key that is not a string"}
			}
			e, err := basic(iter.Value())
			if err != nil {
				return nil, wrapPath(err, t)
			}
			out[k.String()] = e
		}
		return out, nil
	}
	return nil, &UnsupportedError{Type: t.String(), Reason: "not a basic type"}
}

// wrapPath notes the container in an element's error.
func wrapPath(err error, container reflect.Type) error {
	var ue *UnsupportedError
	if errors.As(err, &ue) && !strings.HasSuffix(ue.Reason, ")") {
		ue.Reason += " (inside " + container.String() + ")"
	}
	return err
}

// removeWriter adds the old cookie's removal to a response whose status
// the Manager saves.
type removeWriter struct {
	http.ResponseWriter
	g    *Migrator
	done bool
}

func (w *removeWriter) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		if w.g.opts.ShouldSave(code) {
			http.SetCookie(w.ResponseWriter, &http.Cookie{
				Name:     w.g.opts.CookieName,
				Value:    "",
				Path:     w.g.opts.Path,
				Domain:   w.g.opts.Domain,
				MaxAge:   -1,
				Expires:  time.Unix(1, 0),
				Secure:   w.g.opts.Secure,
				HttpOnly: true,
				SameSite: w.g.opts.SameSite,
			})
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *removeWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *removeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
