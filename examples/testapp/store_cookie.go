package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/sessionkit/sessions"
)

// The cookie kind: -store cookie keeps each session sealed in its cookie
// (sessions.NewClientSide) under the -key secrets, which it requires: the
// first seals, every one opens, and a cookie opened with a later key is
// sealed again with the first on its next response. There is no store, so
// -dsn is ignored, /logout-all answers 501, and a destroyed or renewed
// cookie stays valid until its own expiry, unless -revocation names a
// server-side kind (memory, sqlite, postgres, mysql, redis, bolt, ...):
// then the IDs of destroyed and renewed sessions are recorded in that
// store (at -dsn, or the kind's default) and every request that uses its
// session checks them. A write whose cookie would exceed 4096 bytes
// answers 500 with no Set-Cookie, so the previous cookie stays valid.
//
// -key with a server-side kind signs the session token in the cookie
// (Options.Keys with sessions.New): forged cookies cost no store call.

// keyBytes returns the -key secrets as keys: their UTF-8 bytes.
func keyBytes(keys []string) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

// checkOptions validates the flags' options before anything is opened.
func checkOptions(cfg config, opts *sessions.Options) error {
	if cfg.store != "cookie" {
		if cfg.revocation != "" {
			return fmt.Errorf("-revocation applies to -store cookie only")
		}
		_, err := sessions.New(nopStore{}, opts)
		return err
	}
	if len(opts.Keys) == 0 {
		return fmt.Errorf("-store cookie needs at least one -key (32 bytes or more)")
	}
	if cfg.revocation != "" {
		if b, ok := backends[cfg.revocation]; !ok || b.open == nil {
			return fmt.Errorf("-revocation %q: want a server-side kind (memory, sqlite, postgres, mysql, redis, ...)", cfg.revocation)
		}
	}
	_, err := sessions.NewClientSide(opts)
	return err
}

// openRevocation opens the -revocation store of the cookie kind, or none.
func openRevocation(ctx context.Context, cfg config, logger *slog.Logger) (sessions.Store, func(), error) {
	if cfg.revocation == "" {
		return nil, func() {}, nil
	}
	b := backends[cfg.revocation]
	return b.open(ctx, dsnOr(cfg.dsn, b.defaultDSN), logger)
}

// newManager returns the Manager of the flags' kind over store (for the
// cookie kind, the revocation store or nil).
func newManager(cfg config, store sessions.Store, opts *sessions.Options) (*sessions.Manager, error) {
	if cfg.store != "cookie" {
		return sessions.New(store, opts)
	}
	o := *opts
	if store != nil {
		o.Revocation = store
	}
	// The contract: a write too large for the cookie answers 500.
	tooLargeStatus = http.StatusInternalServerError
	return sessions.NewClientSide(&o)
}
