package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/sessionkit/sessions/sqlitestore"
	"golang.org/x/crypto/bcrypt"
)

// The browser tests drive Debian's Chromium (/usr/bin/chromium, or
// $CHROMIUM) headless through chromedp. They skip when it is missing,
// and fail instead under SESSIONS_REQUIRE_SERVICES=1 (CI installs it
// with .ci/chromium.sh). Every browser action is bounded by
// actionTimeout, and each test by suiteTimeout.
const (
	actionTimeout = 15 * time.Second
	suiteTimeout  = 90 * time.Second
)

// chromiumPath returns the browser to drive, or skips (fails under
// SESSIONS_REQUIRE_SERVICES=1) when there is none.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("SESSIONS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Chromium not found at %s (install it with .ci/chromium.sh): %v", path, err)
		}
		t.Skipf("Chromium not found at %s (install it with .ci/chromium.sh, or set CHROMIUM): %v", path, err)
	}
	return path
}

// testApp is the application served by httptest, over TLS or plain HTTP.
type testApp struct {
	srv   *httptest.Server
	users *Users
}

func startApp(t *testing.T, useTLS bool) *testApp {
	t.Helper()
	db, err := openSQLite(filepath.Join(t.TempDir(), "login.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	users, err := openUsers(ctx, db, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	key, err := users.serverKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlitestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	h, err := newApp(store, users, key, config{InsecureCookie: !useTLS, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	app := &testApp{users: users}
	if useTLS {
		app.srv = httptest.NewTLSServer(h)
	} else {
		app.srv = httptest.NewServer(h)
	}
	t.Cleanup(app.srv.Close)
	return app
}

// browser is one Chromium process; each device is a browser context of
// its own (its own cookies and cache), as separate devices are.
type browser struct {
	t     *testing.T
	ctx   context.Context
	mu    sync.Mutex
	shots map[string][]byte // the last screenshot of each main page
}

func newBrowser(t *testing.T, app *testApp) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		// Without these, Chromium keeps calling home, which this closed
		// network refuses.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1000, 800),
	}
	if app.srv.TLS != nil {
		// Trust the test server's certificate, and only it.
		cert := app.srv.Certificate()
		spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	}
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	// The first run starts the browser; it lives as long as bctx (and
	// suiteTimeout bounds it).
	if _, err := chromedp.Run(bctx, chromedp.Title()); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b := &browser{t: t, ctx: bctx, shots: map[string][]byte{}}
	t.Cleanup(b.saveShots)
	return b
}

// device is one browser context of b.
type device struct {
	b    *browser
	name string
	ctx  context.Context
	base string
}

func (b *browser) device(name, base string) *device {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	// The first run opens the tab, on the context itself (a timeout on
	// it would close the tab); the suite's timeout bounds it.
	if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
		b.t.Fatalf("%s: open a browser context: %v", name, err)
	}
	return &device{b: b, name: name, ctx: ctx, base: base}
}

// run runs actions on d within actionTimeout, failing the test on error.
func (d *device) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	d.b.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		d.shot("failed-" + what)
		d.b.t.Fatalf("%s: %s: %v", d.name, what, err)
	}
}

// get runs the action on d within actionTimeout and returns its value,
// failing the test on error.
func get[T any](d *device, what string, action chromedp.Action[T]) T {
	d.b.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		d.shot("failed-" + what)
		d.b.t.Fatalf("%s: %s: %v", d.name, what, err)
	}
	return v
}

// shot keeps a screenshot of d's page under name, to save if the test
// fails.
func (d *device) shot(name string) {
	ctx, cancel := context.WithTimeout(d.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		d.b.t.Logf("%s: screenshot %s: %v", d.name, name, err)
		return
	}
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.shots[d.name+"-"+name] = png
}

// saveShots writes the screenshots to the test's output folder if the
// test failed.
func (b *browser) saveShots() {
	if !b.t.Failed() {
		return
	}
	var dir string
	if ad, ok := any(b.t).(interface{ ArtifactDir() string }); ok {
		dir = ad.ArtifactDir() // Go 1.26: kept with -artifacts
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "login-browser-"); err != nil {
			b.t.Logf("screenshots not saved: %v", err)
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, png := range b.shots {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.t.Logf("screenshot %s: %v", name, err)
		}
	}
	b.t.Logf("screenshots of what the user saw: %s (go test -artifacts keeps them)", dir)
}

// open navigates to path and returns where the browser ended up, after
// redirects, as a path.
func (d *device) open(path string) string {
	d.b.t.Helper()
	d.run("open "+path, chromedp.Navigate(d.base+path))
	return d.where()
}

// where returns the path of the current page.
func (d *device) where() string {
	d.b.t.Helper()
	return strings.TrimPrefix(get(d, "location", chromedp.Location()), d.base)
}

// has reports whether the current page has an element matching sel.
func (d *device) has(sel string) bool {
	d.b.t.Helper()
	return d.count(sel) > 0
}

// count returns the number of elements matching sel on the current page.
func (d *device) count(sel string) int {
	d.b.t.Helper()
	return get(d, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

// text returns the text of the first element matching sel.
func (d *device) text(sel string) string {
	d.b.t.Helper()
	return strings.TrimSpace(get(d, "text of "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)))
}

// submit fills the form's fields and submits it, then waits for the page
// that answers to show want.
func (d *device) submit(form string, fields map[string]string, check []string, want string) {
	d.b.t.Helper()
	var actions []chromedp.Action[chromedp.Void]
	for name, v := range fields {
		sel := chromedp.CSS(fmt.Sprintf(`%s [name=%q]`, form, name))
		actions = append(actions, chromedp.Clear(sel), chromedp.SendKeys(sel, v))
	}
	for _, name := range check {
		actions = append(actions, chromedp.Click(chromedp.CSS(fmt.Sprintf(`%s [name=%q]`, form, name))))
	}
	actions = append(actions, chromedp.Click(chromedp.CSS(form+" button")), chromedp.WaitVisible(chromedp.CSS(want)))
	d.run("submit "+form, actions...)
}

func (d *device) login(email, password string, remember bool) {
	d.b.t.Helper()
	if loc := d.open("/login"); !strings.HasPrefix(loc, "/login") {
		d.b.t.Fatalf("%s: /login led to %s", d.name, loc)
	}
	var check []string
	if remember {
		check = []string{"remember"}
	}
	d.submit("#login-form", map[string]string{"email": email, "password": password}, check, "#greeting")
}

// back presses the back button and waits until another page is shown
// and loaded, whether the browser fetched it again or restored it from a
// cache (which fires no load event that chromedp.NavigateBack would wait
// for).
func (d *device) back() {
	d.b.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, actionTimeout)
	defer cancel()
	state := `location.pathname + location.search + " " + document.readyState`
	before, err := chromedp.Run(ctx, chromedp.Evaluate[string](state))
	if err != nil {
		d.b.t.Fatalf("%s: back: %v", d.name, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`history.back()`)); err != nil {
		d.b.t.Fatalf("%s: back: %v", d.name, err)
	}
	for {
		// Evaluating fails while the page is being replaced: try again.
		now, err := chromedp.Run(ctx, chromedp.Evaluate[string](state))
		if err == nil && now != before && strings.HasSuffix(now, " complete") {
			return
		}
		select {
		case <-ctx.Done():
			d.shot("failed-back")
			d.b.t.Fatalf("%s: back: still at %q: %v", d.name, now, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sessionCookie returns the session cookie as Chromium stores it.
func (d *device) sessionCookie() *network.Cookie {
	d.b.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, actionTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{d.base + "/"}})
	if err != nil {
		d.b.t.Fatalf("%s: read cookies: %v", d.name, err)
	}
	for _, c := range res.Cookies {
		if strings.HasSuffix(c.Name, "session") {
			return c
		}
	}
	return nil
}

// The main flow, over HTTPS (httptest's TLS server, whose certificate
// the browser is told to trust): two devices of one user.
func TestBrowserFlow(t *testing.T) {
	app := startApp(t, true)
	b := newBrowser(t, app)
	laptop, phone := b.device("laptop", app.srv.URL), b.device("phone", app.srv.URL)

	// A private page sends the browser to the login page.
	if loc := laptop.open("/devices"); loc != "/login?next=%2Fdevices" {
		t.Fatalf("laptop: /devices without login led to %s", loc)
	}
	// Sign up on the laptop (which logs in), log in on the phone with
	// "remember me".
	laptop.open("/signup")
	laptop.shot("signup")
	laptop.submit("#signup-form", map[string]string{"name": "Ann", "email": "ann@example.com", "password": "first password"}, nil, "#greeting")
	if got := laptop.text("#greeting"); got != "Hello, Ann." {
		t.Fatalf("laptop home: %q", got)
	}
	laptop.shot("home")
	phone.login("ann@example.com", "first password", true)
	phone.shot("home")

	// The session cookie as Chromium stores it.
	for _, d := range []*device{laptop, phone} {
		c := d.sessionCookie()
		if c == nil {
			t.Fatalf("%s: no session cookie", d.name)
		}
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Name != "__Host-session" || c.Path != "/" {
			t.Errorf("%s: cookie %s HttpOnly=%v Secure=%v SameSite=%q Path=%q; want __Host-session, HttpOnly, Secure, Lax, /", d.name, c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Path)
		}
		remembered := !c.Session && c.Expires > float64(time.Now().Add(29*24*time.Hour).Unix())
		if remembered != (d == phone) {
			t.Errorf("%s: cookie session=%v expires=%v; want persistent (about 30 days) only with remember me", d.name, c.Session, time.Unix(int64(c.Expires), 0))
		}
	}

	// The devices page lists both devices and marks the current one.
	laptop.open("/devices")
	laptop.shot("devices")
	items, current := laptop.count("#devices li"), laptop.count("#devices li.current")
	if items != 2 || current != 1 {
		t.Fatalf("devices page: %d devices, %d current; want 2 and 1", items, current)
	}
	if got := laptop.text("#devices li.current"); !strings.Contains(got, "(this device)") || !strings.Contains(got, "Headless Chrome") || !strings.Contains(got, "127.0.0.0/24") {
		t.Errorf("current device: %q", got)
	}

	// Revoke the phone: its next page load lands on the login page.
	laptop.run("revoke the phone", chromedp.Click(chromedp.CSS(`#devices li:not(.current) button.revoke`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	laptop.shot("devices-after-revoke")
	if items := laptop.text("#devices"); strings.Count(items, "(this device)") != 1 || laptop.has("#devices li:not(.current)") {
		t.Errorf("devices after revoking the phone: %q", items)
	}
	if loc := phone.open("/"); !strings.HasPrefix(loc, "/login") || !phone.has("#login-form") {
		t.Fatalf("phone after being revoked: at %s", loc)
	}
	phone.shot("login-after-revoke")

	// Change the password on the laptop: the phone is logged out, the
	// laptop stays in.
	phone.login("ann@example.com", "first password", false)
	laptop.open("/password")
	laptop.shot("password")
	laptop.submit("#password-form", map[string]string{"current": "first password", "new": "second password"}, nil, "#greeting")
	if loc := laptop.open("/"); loc != "/" || !laptop.has("#greeting") {
		t.Fatalf("laptop after changing the password: at %s", loc)
	}
	if loc := phone.open("/"); !strings.HasPrefix(loc, "/login") {
		t.Fatalf("phone after the password change: at %s, want the login page", loc)
	}
	phone.login("ann@example.com", "second password", false)

	// Log out everywhere else from the laptop.
	laptop.open("/devices")
	laptop.run("log out other devices", chromedp.Click(chromedp.CSS(`#logout-others`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if loc := phone.open("/devices"); !strings.HasPrefix(loc, "/login") {
		t.Fatalf("phone after 'log out every other device': at %s", loc)
	}

	// Log out; then neither the back button nor a reload shows a
	// private page.
	laptop.open("/")
	laptop.run("log out", chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#login-form`)))
	laptop.back()
	laptop.shot("after-logout-back")
	if loc := laptop.where(); laptop.has("#greeting") || !laptop.has("#login-form") {
		t.Errorf("back after logout shows %s with a private page", loc)
	}
	laptop.run("reload", chromedp.Reload(), chromedp.WaitReady(chromedp.CSS("body")))
	if loc := laptop.where(); laptop.has("#greeting") || !laptop.has("#login-form") {
		t.Errorf("reload after logout shows %s with a private page", loc)
	}
}

// Over plain HTTP (development mode, Secure off): the cookie is still
// HttpOnly and SameSite=Lax, and a login form posted from another origin
// is refused.
func TestBrowserPlainHTTPAndCrossOrigin(t *testing.T) {
	app := startApp(t, false)
	if _, err := app.users.SignUp(context.Background(), "bo@example.com", "Bo", "bo's password"); err != nil {
		t.Fatal(err)
	}
	// Another origin (another port) with a login form that posts to the
	// app, with the right password.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>elsewhere</title>
<form method="post" action="%s/login" id="evil-form">
<input name="email" value="bo@example.com"><input name="password" value="bo's password">
<button>Win a prize</button></form>`, app.srv.URL)
	}))
	defer evil.Close()
	b := newBrowser(t, app)
	d := b.device("laptop", app.srv.URL)

	d.run("cross-origin login", chromedp.Navigate(evil.URL), chromedp.Click(chromedp.CSS("#evil-form button")),
		chromedp.WaitNotPresent(chromedp.CSS("#evil-form")), chromedp.WaitReady(chromedp.CSS("body")))
	d.shot("cross-origin-post")
	status := get(d, "status", chromedp.Evaluate[int](`performance.getEntriesByType("navigation")[0].responseStatus`))
	if status != http.StatusForbidden {
		t.Errorf("cross-origin login POST answered %d, want 403", status)
	}
	if loc := d.open("/"); !strings.HasPrefix(loc, "/login") {
		t.Fatalf("after a cross-origin login POST, / is at %s: it logged in", loc)
	}
	if c := d.sessionCookie(); c != nil && c.Value != "" {
		t.Errorf("the cross-origin POST left a session cookie: %s", c.Name)
	}

	d.login("bo@example.com", "bo's password", false)
	c := d.sessionCookie()
	if c == nil {
		t.Fatal("no session cookie")
	}
	if !c.HTTPOnly || c.Secure || c.SameSite != network.CookieSameSiteLax || c.Name != "session" || !c.Session {
		t.Errorf("cookie %s HttpOnly=%v Secure=%v SameSite=%q Session=%v; want session, HttpOnly, not Secure over plain HTTP, Lax, browser-session", c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Session)
	}
	js := get(d, "document.cookie", chromedp.Evaluate[string](`document.cookie`))
	if strings.Contains(js, c.Value) {
		t.Errorf("the session cookie is readable from JavaScript: %q", js)
	}
}
