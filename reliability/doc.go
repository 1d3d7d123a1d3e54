// Package reliability holds the repository's reliability suites: they are
// tests, not a library. It is not published.
//
// The linearizability checks (linearizability*_test.go) record histories of
// concurrent clients on a few shared sessions through the real middleware
// and real stores, and check them with porcupine against a sequential model
// of a session. The fault, soak and cleanup drills live in their own files.
package reliability
