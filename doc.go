// Package sessions provides server-side HTTP sessions for net/http: a
// middleware that finds each request's session through a cookie, typed
// accessors for handlers, and a [Store] contract that memory, SQL, Redis,
// cache and third-party stores implement.
//
// # Quick start
//
// Create a [Manager] with a store and wrap your handler:
//
//	store, err := memstore.New(nil)
//	if err != nil {
//		log.Fatal(err)
//	}
//	m, err := sessions.New(store, nil) // nil Options: the secure defaults
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux := http.NewServeMux()
//	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
//		s := sessions.FromContext(r.Context())
//		n, err := sessions.Update(s, "views", func(n int) int { return n + 1 })
//		if err != nil {
//			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
//			return
//		}
//		fmt.Fprintf(w, "%d views\n", n)
//	})
//	log.Fatal(http.ListenAndServe(":8080", m.Handler(mux)))
//
// Values are stored as JSON, one document per key, and decoded only when
// read: [Get], [Pop], [Session.Set], [Session.Delete], [Session.Keys],
// [Session.Clear], or a typed [Key]. [Update] is the conflict-safe
// read-modify-write. At login call [Session.RenewAfterLogin]; at logout,
// [Session.Destroy].
//
// # Lifecycle
//
// Sessions are lazy: a request whose handler never touches its session
// costs no store call, no decoding and no Set-Cookie. The first accessor
// loads the session (one store read); a request that only reads sends
// nothing back, except, with an idle timeout, an expiry-only Touch at most
// once per [Options.TouchInterval] and a cookie with the new Max-Age.
// Changes are saved once, just before the response headers are written (or
// when the handler returns without writing), so a store failure can still
// become an error response ([Options.ErrorHandler]) instead of a lost write.
// A change made after the headers were written returns [ErrCommitted]. A
// response with status 500 or more saves nothing ([Options.ShouldSave]),
// but a [Session.Destroy] holds whatever the status.
//
// Concurrent requests on one session never lose each other's writes: a save
// is a compare-and-set on the record's version, and when another request
// saved first, this request's recorded changes (sets, deletes, clears,
// [Update] functions) are re-applied on the fresh data. A session that
// another request destroyed or renewed meanwhile is never recreated: the
// save fails with [ErrSessionGone].
//
// # Expiry
//
// Every session has an absolute deadline ([Options.Lifetime], 24 hours by
// default, at most 30 days) and optionally an idle timeout
// ([Options.IdleTimeout]); both are enforced by the server, whatever the
// cookie says. A session can carry its own idle timeout, deadline and
// browser-session mode ([Session.SetIdleTimeout], [Session.SetDeadline],
// [Session.SetBrowserSession]); these are stored with it and the earlier
// deadline always wins. The cookie's Max-Age mirrors the server-side
// expiry.
//
// # Choosing a store
//
//   - memstore: in-process, for development, tests and single-instance apps.
//   - sqlitestore: one file, persistent, no server.
//   - pgxstore, mysqlstore: durable, shared by many instances.
//   - redisstore: shared and fast; Redis Cluster for scale.
//   - cachestore: an in-process cache in front of any of them, trusting
//     its entries for a bounded time. Pass its WithBackCapabilities() to
//     New so that the back store's owner index and sweeping stay usable.
//
// Stores that keep expired records implement [ExpiredDeleter]: run
// [Manager.Sweep] in a goroutine. Stores that implement [OwnerIndex]
// support [Manager.ListOwner] and [Manager.DestroyOwner] ("log out
// everywhere").
//
// # Security model
//
//   - Session tokens are 256 bits from crypto/rand, sent as 43 characters of
//     base64url. Stores see only the SHA-256 of a token, so a leaked store
//     dump holds no usable session.
//   - A client-chosen token is never adopted: a malformed one counts as no
//     cookie before any store call, an unknown or expired one as no session,
//     and a new session always gets a fresh token. Every cookie with the
//     session's name, in every Cookie header, is considered, and the first
//     that names a live session is used; at most 16 well-formed tokens per
//     request are looked up, which bounds the store calls one request can
//     cause.
//   - Cookies are HttpOnly always, Secure unless [Options.InsecureCookie],
//     SameSite=Lax, Path=/, host-only, named with the __Host- prefix by
//     default. [New] rejects combinations that browsers would ignore.
//   - Use [Session.RenewAfterLogin] at every privilege change, so an ID
//     planted before login is worthless after it.
//   - A store failure is never taken for "no session": accessors return it,
//     the save path answers through [Options.ErrorHandler], and no cookie is
//     sent, so users are neither logged out nor handed a new session.
//   - Session data are limited to [Options.MaxDataSize], decoded with
//     encoding/json only, and a corrupt record counts as no session.
//
// # Writing a Store
//
// Implement [Store] (and optionally [ExpiredDeleter] and [OwnerIndex]) and
// run the conformance suite from package
// github.com/sessionkit/sessions/sessiontest in your tests:
//
//	func TestStore(t *testing.T) {
//		sessiontest.TestStore(t, func(t *testing.T) sessions.Store {
//			return newMyStore(t)
//		}, nil)
//	}
//
// The record format is versioned by its first byte; stores treat records
// as opaque bytes.
package sessions
