// Package benchmarks measures sessionkit against its Go peers
// (github.com/alexedwards/scs/v2 and github.com/gorilla/sessions), a bare
// handler without sessions (the baseline) and a hand-written minimum per
// store (the floor), with the same handlers and workloads.
//
// Everything lives in the package's tests: the benchmarks in
// BenchmarkSessions and the lost-update probe in TestLostUpdates. The
// script run.sh runs them interleaved and writes a summary; see README.md.
// This module is the only place where the peer libraries are imported.
package benchmarks
