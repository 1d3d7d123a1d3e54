package benchmarks

import (
	"github.com/sessionkit/sessions"
	"github.com/sessionkit/sessions/memstore"
)

// Client-side sessions beside gorilla's CookieStore (store=cookie), and
// signed tokens on the memory store (lib=sessionkit-signed beside
// lib=sessionkit: the cost of Options.Keys per request).
func init() {
	contestants = append(contestants,
		contestant{store: "cookie", lib: "sessionkit", open: openSessionkitCookie},
		contestant{store: "memory", lib: "sessionkit-signed", open: openSessionkitSigned},
	)
}

// benchKey is the key of the client-side and signed-token Managers.
var benchKey = []byte("sessionkit benchmark key, 32 bytes+")

// clientSideLib is sessionkit with NewClientSide: the counter travels in
// the cookie, so a request with an old cookie sees the old value.
type clientSideLib struct{ *sessionkitLib }

func (clientSideLib) serverSide() bool { return false }

func openSessionkitCookie(string) (lib, error) {
	m, err := sessions.NewClientSide(&sessions.Options{Keys: [][]byte{benchKey}})
	if err != nil {
		return nil, err
	}
	return clientSideLib{&sessionkitLib{m: m}}, nil
}

func openSessionkitSigned(string) (lib, error) {
	st, err := memstore.New(nil)
	if err != nil {
		return nil, err
	}
	m, err := sessions.New(st, &sessions.Options{Keys: [][]byte{benchKey}})
	if err != nil {
		return nil, err
	}
	return &sessionkitLib{m: m}, nil
}
