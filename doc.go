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
// read: [Get], [Value], [Pop], [Session.Set], [Session.Delete],
// [Session.Keys], [Session.Clear], or a typed [Key]. [Update] is the
// conflict-safe read-modify-write, saved at once; [Modify] is the same,
// saved with the response, and carries the flash helpers [AddFlash] and
// [Flashes]. At login call [Session.RenewAfterLogin] (and
// [Session.Remember] for "remember me"); at logout, [Session.Destroy]; to
// log a user out everywhere, [Manager.DestroyOwner]. Numbers read into an
// any come back as float64, as encoding/json decodes them; read them with
// their own type (Get[int64]) to keep every bit.
//
// # Errors
//
// Accessors return errors, and none is lost if a handler ignores it: when
// loading or saving the session failed ([ErrStore], [ErrSessionGone],
// [ErrConflict]) and the handler still answers with a status that
// [Options.ShouldSave] accepts (below 500 by default), the Manager answers
// through [Options.ErrorHandler] instead. [Session.Err] reports the
// failure, for a handler that prefers to answer it itself with an error
// status. A change refused for its own sake (a [TooLargeError]) leaves the
// session as it was and is the handler's to handle.
//
// # Client-side sessions
//
// [NewClientSide] keeps each session in its cookie, sealed under
// [Options.Keys], with the same [Session] API and the same expiry rules,
// cookie attributes and error handling as server-side sessions (one code
// path). Concurrent writes are last-writer-wins in this mode, and a copied
// cookie stays valid until its expiry unless [Options.Revocation] is set.
// With a server-side store, [Options.Keys] signs the session token instead.
//
// # Frameworks, observability and tests
//
// [Manager.Handler] is plain net/http middleware (chi takes it as is).
// [Manager.Start] is the building block of the gin and echo adapters
// (modules ginsessions and echosessions). [Options.Observer] sees every
// store call; module otelsessions turns it into OpenTelemetry spans and
// metrics. Package sessiontest prepares sessions for handler tests.
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
// save fails with [ErrSessionGone], later changes in that request return
// it too, and a [Session.Destroy] still removes the cookie.
//
// A renewal ([Session.Renew], [Session.RenewAfterLogin]) keeps both
// promises: at commit it creates the new record, then retires the old one
// with a compare-and-set on the version it was loaded with (an [Store]
// Update to an expiry long past). The new ID is handed out only if that
// succeeds. If another request wrote meanwhile, the renewal starts over
// from the fresh data, so the write is carried over; if another request
// destroyed or renewed the session, or a [Manager.DestroyOwner] ended it,
// the new record is deleted and the result is [ErrSessionGone]. This holds
// for every store, including a cachestore whose front is stale, since the
// retirement is checked against the back store. [Manager.DestroyOwner]
// lists the owner's sessions again after deleting them, until none is
// left, so a renewal racing it cannot leave a live successor either.
//
// Operations that end a session ([Session.Destroy], the retirement in a
// renewal, [Manager.DestroyOwner], [Manager.DestroyID]) are not cancelled
// when the client goes away; each store call is bounded by
// [Options.StoreTimeout]. Saving, on the other hand, is skipped when the
// request's context has ended before the commit (the client went away, or
// an [http.TimeoutHandler] outside the middleware gave up): that response
// can no longer deliver a cookie.
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
// Every load checks the session against the options in force now, not only
// against the expiry stored with its last write: lowering
// [Options.Lifetime] or [Options.IdleTimeout] (for example during an
// incident) ends at once the sessions the new limits no longer allow. For
// the idle timeout, the last activity counted is the later of the last
// write and the last expiry-only touch, so a session that was only read
// since its last touch may end up to one [Options.TouchInterval] early. A
// record written by a release before this one (record format 1) gets this
// check after its next write, which its next request makes.
//
// # Choosing a store
//
//   - memstore: in-process, for development, tests and single-instance apps.
//   - sqlitestore: one file, persistent, no server.
//   - pgxstore, mysqlstore: durable, shared by many instances.
//   - redisstore: shared and fast; Redis Cluster for scale.
//   - cachestore: an in-process cache in front of any of them, trusting
//     its entries for a bounded time for reads; it has exactly the back
//     store's owner index and sweeping.
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
//     encoding/json only, and a corrupt record counts as no session. A
//     change that does not make a session larger never fails for size, so a
//     session written under a larger limit can still shrink, and
//     [Session.RenewAfterLogin] clears such a session rather than refuse
//     the login.
//   - A response that carries a session cookie (or its removal) is never
//     cacheable by shared caches: the middleware adds "private" to its
//     Cache-Control and drops "public" and "s-maxage", keeping the
//     application's other directives; without any, it sets
//     `private, no-cache="Set-Cookie"`. Every response that used the session
//     gets "Vary: Cookie".
//   - Several Managers (nested middleware) commit independently: if the
//     outer one fails, the inner one's session is already saved, and its
//     cookie stays on the error response so that browser and store agree.
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
