package sessions_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sessionkit/sessions"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts sessions.Options
	}{
		{"invalid name", sessions.Options{CookieName: "a b"}},
		{"name with semicolon", sessions.Options{CookieName: "a;b"}},
		{"__Host- without Secure", sessions.Options{CookieName: "__Host-s", InsecureCookie: true}},
		{"__host- lower case without Secure", sessions.Options{CookieName: "__host-s", InsecureCookie: true}},
		{"__Host- with Domain", sessions.Options{CookieName: "__Host-s", Domain: "example.com"}},
		{"__Host- with Path", sessions.Options{CookieName: "__Host-s", Path: "/app"}},
		{"__Secure- without Secure", sessions.Options{CookieName: "__Secure-s", InsecureCookie: true}},
		{"SameSite=None without Secure", sessions.Options{CookieName: "s", SameSite: http.SameSiteNoneMode, InsecureCookie: true}},
		{"Partitioned without Secure", sessions.Options{CookieName: "s", Partitioned: true, InsecureCookie: true}},
		{"unknown SameSite", sessions.Options{SameSite: 9}},
		{"relative path", sessions.Options{CookieName: "s", Path: "app"}},
		{"negative lifetime", sessions.Options{Lifetime: -time.Second}},
		{"lifetime too long", sessions.Options{Lifetime: 31 * 24 * time.Hour}},
		{"tiny lifetime", sessions.Options{Lifetime: time.Millisecond}},
		{"negative idle", sessions.Options{IdleTimeout: -1}},
		{"tiny idle", sessions.Options{IdleTimeout: time.Millisecond}},
		{"negative touch interval", sessions.Options{TouchInterval: -1}},
		{"negative store timeout", sessions.Options{StoreTimeout: -1}},
		{"negative max size", sessions.Options{MaxDataSize: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := sessions.New(mem(), &tt.opts)
			if !errors.Is(err, sessions.ErrInvalidOptions) || m != nil {
				t.Errorf("New(%+v) = %v, %v; want ErrInvalidOptions", tt.opts, m, err)
			}
		})
	}
	if _, err := sessions.New(nil, nil); !errors.Is(err, sessions.ErrInvalidOptions) {
		t.Errorf("New(nil store) = %v", err)
	}
}

func TestDefaultCookieName(t *testing.T) {
	tests := []struct {
		opts sessions.Options
		want string
	}{
		{sessions.Options{}, "__Host-session"},
		{sessions.Options{Path: "/app"}, "__Secure-session"},
		{sessions.Options{Domain: "example.com"}, "__Secure-session"},
		{sessions.Options{InsecureCookie: true}, "session"},
		{sessions.Options{CookieName: "mine", InsecureCookie: true}, "mine"},
	}
	for _, tt := range tests {
		m, err := sessions.New(mem(), &tt.opts)
		if err != nil {
			t.Fatalf("New(%+v): %v", tt.opts, err)
		}
		if got := m.CookieName(); got != tt.want {
			t.Errorf("New(%+v).CookieName() = %q, want %q", tt.opts, got, tt.want)
		}
	}
}

func TestOptionsCopied(t *testing.T) {
	opts := &sessions.Options{CookieName: "first"}
	m, err := sessions.New(mem(), opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.CookieName = "second"
	if m.CookieName() != "first" {
		t.Error("changing Options after New changed the Manager")
	}
}
