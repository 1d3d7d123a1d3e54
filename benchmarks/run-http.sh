#!/usr/bin/env bash
# Runs the end-to-end HTTP benchmarks (BenchmarkHTTP) and, for the same
# workloads, the in-process ones (BenchmarkSessions), interleaved: ROUNDS
# rounds, each running every store once in its own process (with the
# baseline), the libraries' order reversed every other round. Writes into
# OUT: bench.txt (raw output), summary.md and chart.svg (cmd/httpchart),
# env.txt.
#
# Knobs (environment): ROUNDS (default 6), BENCHTIME (200ms), OUT
# (results/http), STORES (memory postgres-near redis postgres cookie
# filesystem).
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK=off

ROUNDS=${ROUNDS:-6}
BENCHTIME=${BENCHTIME:-200ms}
OUT=${OUT:-results/http}
read -r -a STORES <<<"${STORES:-memory postgres-near redis postgres cookie filesystem}"

mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=$tmp/bench.test
go test -c -o "$bin" .

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: $(uname -srm), $(nproc) CPUs"
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "go: $(go version | cut -d' ' -f3-)"
	echo "rounds: $ROUNDS x benchtime $BENCHTIME"
	echo "sessionkit: $(git -C .. rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >"$OUT/env.txt"

: >"$OUT/bench.txt"
start=$SECONDS
for ((round = 0; round < ROUNDS; round++)); do
	reverse=$([ $((round % 2)) = 1 ] && echo true || echo false)
	for store in "${STORES[@]}"; do
		for family in HTTP Sessions; do
			"$bin" -test.run '^$' -test.bench "^Benchmark$family\$/^store=(none|$store)\$/^work=(untouched-cookie|read|incr)\$/" \
				-test.benchtime "$BENCHTIME" -test.count 1 -bench.reverse="$reverse" >"$tmp/out.txt" 2>&1 || {
				cat "$tmp/out.txt" >&2
				echo "run-http.sh: $family benchmarks of $store failed" >&2
				exit 1
			}
			{ echo "# process $family $store round $round"; grep "^Benchmark" "$tmp/out.txt" || true; } >>"$OUT/bench.txt"
		done
	done
	echo "round $((round + 1))/$ROUNDS done after $((SECONDS - start))s" >&2
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); benchmarks took $((SECONDS - start))s" >>"$OUT/env.txt"
go run ./cmd/httpchart -svg "$OUT/chart.svg" "$OUT/bench.txt" >"$OUT/summary.md"
cat "$OUT/env.txt" "$OUT/summary.md"
