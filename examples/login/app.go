package main

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/auth"
)

// config is what newApp needs besides the stores.
type config struct {
	InsecureCookie bool // plain-HTTP development only
	Logger         *slog.Logger
}

// app is the web application: its pages and the middleware around them.
type app struct {
	m     *sessions.Manager
	a     *auth.Auth[*User]
	users *Users
	log   *slog.Logger
}

// newApp returns the application's handler: cross-origin protection
// outside, then the sessions middleware, then auth's.
func newApp(store sessions.Store, users *Users, key []byte, cfg config) (http.Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := sessions.New(store, &sessions.Options{
		InsecureCookie:       cfg.InsecureCookie,
		BrowserSessionCookie: true, // until the browser closes, unless "remember me"
		IdleTimeout:          time.Hour,
		Logger:               cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	a, err := auth.New(m, users, &auth.Options{Key: key, DeviceStore: store, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	x := &app{m: m, a: a, users: users, log: cfg.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /signup", x.signupPage)
	mux.HandleFunc("POST /signup", x.signup)
	mux.HandleFunc("GET /login", x.loginPage)
	mux.HandleFunc("POST /login", x.login)
	mux.HandleFunc("POST /logout", x.logout)
	private := func(h http.HandlerFunc) http.Handler { return a.RequireUser(h) }
	mux.Handle("GET /{$}", private(x.home))
	mux.Handle("GET /devices", private(x.devices))
	mux.Handle("POST /devices/revoke", private(x.revoke))
	mux.Handle("POST /devices/others", private(x.logoutOthers))
	mux.Handle("GET /password", private(x.passwordPage))
	mux.Handle("POST /password", private(x.changePassword))

	// Refuses state-changing requests from other origins (Sec-Fetch-Site,
	// Origin): no CSRF tokens needed.
	cop := http.NewCrossOriginProtection()
	return cop.Handler(m.Handler(a.Middleware(mux))), nil
}

// page is the data of every template.
type page struct {
	Title   string
	User    *User
	Flashes []string
	Error   string
	Next    string
	Email   string
	Devices []auth.Device
}

// render writes a page. The pages of signed-in users are marked no-store
// by auth.RequireUser; the others carry no private data.
func (x *app) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.User == nil {
		p.User, _, _ = x.a.User(r)
	}
	if p.Flashes == nil {
		p.Flashes, _ = sessions.Flashes[string](x.m.FromContext(r.Context()), "flash")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, p); err != nil {
		x.log.ErrorContext(r.Context(), "login: template", "page", name, "err", err)
	}
}

// fail answers an unexpected error.
func (x *app) fail(w http.ResponseWriter, r *http.Request, err error) {
	x.log.ErrorContext(r.Context(), "login: request failed", "path", r.URL.Path, "err", err)
	http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
}

func (x *app) flash(r *http.Request, msg string) {
	if err := sessions.AddFlash(x.m.FromContext(r.Context()), "flash", msg); err != nil {
		x.log.WarnContext(r.Context(), "login: flash not kept", "err", err)
	}
}

func (x *app) signupPage(w http.ResponseWriter, r *http.Request) {
	x.render(w, r, http.StatusOK, "signup", page{Title: "Sign up"})
}

func (x *app) signup(w http.ResponseWriter, r *http.Request) {
	u, err := x.users.SignUp(r.Context(), r.PostFormValue("email"), r.PostFormValue("name"), r.PostFormValue("password"))
	if err != nil {
		if fe := formError(""); errors.As(err, &fe) {
			x.render(w, r, http.StatusUnprocessableEntity, "signup", page{Title: "Sign up", Error: err.Error(), Email: r.PostFormValue("email")})
			return
		}
		x.fail(w, r, err)
		return
	}
	if err := x.a.Login(r, u, false); err != nil {
		x.fail(w, r, err)
		return
	}
	x.flash(r, "Welcome, "+u.Name+"!")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (x *app) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok, _ := x.a.User(r); ok {
		http.Redirect(w, r, auth.SafeNext(r.FormValue("next"), "/"), http.StatusSeeOther)
		return
	}
	x.render(w, r, http.StatusOK, "login", page{Title: "Log in", Next: auth.SafeNext(r.FormValue("next"), "/")})
}

func (x *app) login(w http.ResponseWriter, r *http.Request) {
	next := auth.SafeNext(r.PostFormValue("next"), "/")
	u, err := x.users.Authenticate(r.Context(), r.PostFormValue("email"), r.PostFormValue("password"))
	if err == errBadPassword {
		x.render(w, r, http.StatusUnauthorized, "login", page{Title: "Log in", Error: err.Error(), Next: next, Email: r.PostFormValue("email")})
		return
	}
	if err != nil {
		x.fail(w, r, err)
		return
	}
	if err := x.a.Login(r, u, r.PostFormValue("remember") == "on"); err != nil {
		x.fail(w, r, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (x *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := x.a.Logout(r); err != nil {
		x.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (x *app) home(w http.ResponseWriter, r *http.Request) {
	x.render(w, r, http.StatusOK, "home", page{Title: "Home"})
}

func (x *app) devices(w http.ResponseWriter, r *http.Request) {
	devs, err := x.a.Devices(r)
	if err != nil {
		x.fail(w, r, err) // ErrNotSupported: the store has no owner index
		return
	}
	x.render(w, r, http.StatusOK, "devices", page{Title: "Your devices", Devices: devs})
}

func (x *app) revoke(w http.ResponseWriter, r *http.Request) {
	switch err := x.a.RevokeDevice(r, r.PostFormValue("device")); {
	case errors.Is(err, auth.ErrUnknownDevice):
		x.flash(r, "That device was already logged out.")
	case err != nil:
		x.fail(w, r, err)
		return
	default:
		x.flash(r, "The device was logged out.")
	}
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
}

func (x *app) logoutOthers(w http.ResponseWriter, r *http.Request) {
	if _, err := x.a.LogoutOthers(r); err != nil {
		x.fail(w, r, err)
		return
	}
	x.flash(r, "Every other device was logged out.")
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
}

func (x *app) passwordPage(w http.ResponseWriter, r *http.Request) {
	x.render(w, r, http.StatusOK, "password", page{Title: "Change password"})
}

func (x *app) changePassword(w http.ResponseWriter, r *http.Request) {
	u, _, err := x.a.User(r)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	updated, err := x.users.ChangePassword(r.Context(), u, r.PostFormValue("current"), r.PostFormValue("new"))
	if fe := formError(""); errors.As(err, &fe) {
		x.render(w, r, http.StatusUnprocessableEntity, "password", page{Title: "Change password", Error: err.Error()})
		return
	}
	if err != nil {
		x.fail(w, r, err)
		return
	}
	// Keep this session logged in; every other session of the user ends.
	if err := x.a.UpdateSessionAuthHash(r, updated); err != nil {
		x.fail(w, r, err)
		return
	}
	x.flash(r, "Your password was changed. Your other devices were logged out.")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "unknown"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
}).Parse(`
{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} · sessionkit login example</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}
label{display:block;margin:.5em 0}input[type=text],input[type=email],input[type=password]{display:block;width:100%}
.flash{background:#e8f4e8;padding:.5em}.error{background:#fbe9e9;padding:.5em}nav form{display:inline}
li{margin:.5em 0}</style></head><body>
<nav>{{if .User}}<a href="/">Home</a> · <a href="/devices">Devices</a> · <a href="/password">Password</a> ·
<form method="post" action="/logout"><button id="logout">Log out</button></form>{{else}}<a href="/login">Log in</a> · <a href="/signup">Sign up</a>{{end}}</nav>
{{range .Flashes}}<p class="flash">{{.}}</p>{{end}}{{with .Error}}<p class="error" id="error">{{.}}</p>{{end}}
<h1>{{.Title}}</h1>{{end}}

{{define "bottom"}}</body></html>{{end}}

{{define "signup"}}{{template "top" .}}
<form method="post" action="/signup" id="signup-form">
<label>Name <input type="text" name="name" required autocomplete="name"></label>
<label>Email <input type="email" name="email" value="{{.Email}}" required autocomplete="email"></label>
<label>Password (8 characters or more) <input type="password" name="password" required minlength="8" autocomplete="new-password"></label>
<button>Sign up</button></form>
<p>Have an account? <a href="/login">Log in</a>.</p>
{{template "bottom"}}{{end}}

{{define "login"}}{{template "top" .}}
<form method="post" action="/login" id="login-form">
<input type="hidden" name="next" value="{{.Next}}">
<label>Email <input type="email" name="email" value="{{.Email}}" required autocomplete="username"></label>
<label>Password <input type="password" name="password" required autocomplete="current-password"></label>
<label><input type="checkbox" name="remember"> Remember me on this device</label>
<button>Log in</button></form>
<p>No account yet? <a href="/signup">Sign up</a>.</p>
{{template "bottom"}}{{end}}

{{define "home"}}{{template "top" .}}
<p id="greeting">Hello, {{.User.Name}}.</p>
<p>You are logged in as {{.User.Email}}. See <a href="/devices">where you are logged in</a>.</p>
{{template "bottom"}}{{end}}

{{define "devices"}}{{template "top" .}}
<ul id="devices">{{range .Devices}}
<li class="device{{if .Current}} current{{end}}">
{{if .Known}}<strong>{{.Client}}</strong>{{with .Network}} from {{.}}{{end}}, logged in {{ago .Created}}, last seen {{ago .LastSeen}}{{else}}<strong>A device</strong> (no request since it logged in){{end}}
{{if .Current}}<em>(this device)</em>{{else}}<form method="post" action="/devices/revoke" style="display:inline">
<input type="hidden" name="device" value="{{.Handle}}"><button class="revoke">Log out this device</button></form>{{end}}
</li>{{end}}</ul>
<form method="post" action="/devices/others"><button id="logout-others">Log out every other device</button></form>
{{template "bottom"}}{{end}}

{{define "password"}}{{template "top" .}}
<form method="post" action="/password" id="password-form">
<label>Current password <input type="password" name="current" required autocomplete="current-password"></label>
<label>New password (8 characters or more) <input type="password" name="new" required minlength="8" autocomplete="new-password"></label>
<button>Change password</button></form>
{{template "bottom"}}{{end}}
`))
