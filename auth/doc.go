// Package auth is authentication on top of sessions: log in, log out, log
// out everywhere or on every other device, require a user, and list and
// revoke a user's devices. It is generic over the application's user
// type and checks no credentials itself: the application verifies the
// password (or anything else), then calls [Auth.Login].
//
// # Quick start
//
//	a, err := auth.New(m, users, &auth.Options{Key: key}) // key: 32+ random bytes
//	...
//	mux.Handle("GET /{$}", a.RequireUser(home))
//	handler := m.Handler(a.Middleware(mux))
//
// and in handlers:
//
//	err := a.Login(r, user, remember)        // after checking the password
//	user, ok, err := a.User(r)               // the current user, loaded once per request
//	err := a.UpdateSessionAuthHash(r, user)  // after the user changed their password
//	err := a.Logout(r)
//
// The application implements [Users]: loading a user by ID, the user's ID,
// and a secret that changes whenever the user's credentials change (the
// password hash is the usual choice).
//
// # Session auth hash
//
// As in Django, a login stores in the session an HMAC-SHA256 of the user's
// secret, under a key derived from [Options.Key]. Every request that asks
// for the user compares it (with [hmac.Equal]) with the HMAC of the
// user's current secret, and ends the session when they differ. So
// changing a password logs out every session of the user, with no extra
// store; [Auth.UpdateSessionAuthHash] re-hashes the current session so
// that it stays logged in (and, when the store has an owner index, ends
// the others at once).
//
// # Laziness
//
// Under [Auth.Middleware] or [Auth.RequireUser], the user is loaded at
// most once per request, and only by a request that asks for it
// ([Auth.User]); a request that never does makes no user load and, as
// with the sessions middleware itself, no store call.
//
// # Devices
//
// At login, a session records when it logged in, when it was last seen
// and a short description of its client: the browser and operating system
// ([ShortUserAgent]) and a prefix of its address (/24 for IPv4, /48 for
// IPv6, never the full address by default). "Last seen" is coarse: a
// request updates it at most once per [Options.LastSeenInterval], never
// on every request.
//
// [Auth.Devices] lists the user's live sessions through the store's owner
// index ([sessions.Manager.ListOwner]) and marks the current one. The
// public sessions API reads only the current request's session, so the
// metadata of the other sessions comes from a per-user device record that
// each session keeps up to date when it updates its "last seen" time. The
// record lives in [Options.DeviceStore] (normally the Manager's own
// store), written through the [sessions.Store] interface with a
// compare-and-set on its version, under an ID derived from the key and the
// user ID, with no owner, so it works with every store and is never listed
// as a session. A session's entry appears after the first request that
// follows its login, since the session's new ID is known only once the
// login response has been committed; until then it is listed with
// Known false.
//
// Devices are named by opaque handles, HMACs of their store IDs, so a
// handle reveals no token and no store ID; [Auth.RevokeDevice] compares
// handles with [hmac.Equal]. Listing, revoking, [Auth.LogoutOthers] and
// [Auth.LogoutEverywhere] need a store with an owner index
// ([sessions.OwnerIndex]); without one they return an error wrapping
// [sessions.ErrNotSupported].
//
// # Concurrency
//
// A password change racing a request of another device: the other
// device's request either completes with the session it loaded (it
// started before the change) or finds the session gone or its hash
// stale; its next request is logged out. [Auth.LogoutEverywhere] racing a
// login: a login whose session existed when the "log out everywhere" ran
// (even one still being renewed) is logged out; a login that completes
// afterwards stays logged in, as any later login would.
//
// # Requiring a user
//
// [Auth.RequireUser] redirects browsers without a user to
// [Options.LoginURL] (with the page they asked for in the "next"
// parameter; read it back with [SafeNext]) and answers other clients with
// 401. Browsers are told apart by [Options.IsBrowser]: by default a
// request with "Sec-Fetch-Mode: navigate" or an Accept header naming
// text/html. Its responses get "Cache-Control: no-store", so that the
// back button shows no private page after logout.
package auth
