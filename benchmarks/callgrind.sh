#!/usr/bin/env bash
# Counts the instructions one benchmark iteration executes, independently of
# the machine's load: valgrind's callgrind runs the benchmark for N
# iterations and for 1, and the difference divided by N-1 is printed.
# GOGC=off keeps the collector out of the count (allocation is counted only
# on its allocation path), GOMAXPROCS=1 and asyncpreemptoff=1 keep the
# scheduler quiet; cpu.rdtscp=off because valgrind 3.19 cannot decode RDTSCP.
#
# Usage: ./callgrind.sh [-n N] BENCH-REGEXP...
#   ./callgrind.sh '^BenchmarkSessions$/^store=memory$/^work=incr$/^lib=(sessionkit|floor)$'
# Each regexp must select benchmarks that run once each (-test.count 1);
# every selected benchmark is measured on its own.
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK=off
n=2000
if [ "${1:-}" = -n ]; then n=$2; shift 2; fi
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=$tmp/bench.test
CGO_ENABLED=0 go test -c -o "$bin" .
count() { # count REGEXP ITERATIONS -> instructions of the whole run
	GOGC=off GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off GOMAXPROCS=1 valgrind --tool=callgrind \
		--callgrind-out-file="$tmp/cg.out" "$bin" -test.run '^$' -test.bench "$1" \
		-test.benchtime "${2}x" -test.count 1 >"$tmp/run.txt" 2>"$tmp/vg.txt"
	grep -q '^ok\|^PASS' "$tmp/run.txt" || { cat "$tmp/run.txt" "$tmp/vg.txt" >&2; exit 1; }
	sed -n 's/^==[0-9]*== Collected : //p' "$tmp/vg.txt"
}
for re in "$@"; do
	# List the benchmarks the regexp selects, then measure each alone.
	"$bin" -test.run '^$' -test.bench "$re" -test.benchtime 1x -test.count 1 |
		awk '/^Benchmark/ {print $1}' | sed 's/-[0-9]*$//' >"$tmp/names.txt"
	while read -r name; do
		exact=$(echo "$name" | awk -F/ '{for (i = 1; i <= NF; i++) { gsub(/[][().*+?^$|{}\\]/, "\\\\&", $i); printf "%s^%s$", (i > 1 ? "/" : ""), $i }}')
		one=$(count "$exact" 1)
		many=$(count "$exact" "$n")
		echo "$name $(((many - one) / (n - 1))) instructions/op (N=$n)"
	done <"$tmp/names.txt"
done
