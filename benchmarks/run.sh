#!/usr/bin/env bash
# Runs the sessionkit benchmarks against the peers, interleaved: ROUNDS
# rounds, each running every workload of every store once, one process per
# workload and store that runs every library on it together with the
# baseline, the libraries' order reversed every other round. Machine drift
# thus hits the libraries compared alike: they are measured within seconds
# of each other. Then runs the lost-update probe, and writes into OUT:
#
#   bench.txt      raw go test -bench output, every round
#   benchstat.txt  benchstat per store, one column per library, against
#                  the baseline and against the store's floor
#   probe.tsv      lost-update counts; probe.log its verbose output
#   summary.md     medians, ratios and the issue-6 targets (cmd/summarize)
#   env.txt        date, machine, load, Go and library versions
#
# With PROFILE=1 it also profiles sessionkit's memory-store workloads
# (cpu.pprof, mem.pprof and their pprof -top listings).
#
# Knobs (environment): ROUNDS (default 10), BENCHTIME (200ms),
# PROBE_ROUNDS (5), OUT (results/latest), STORES and WORKS (space-separated
# subsets of the defaults). Redis, PostgreSQL and MariaDB are used at their
# default local addresses (SESSIONS_REDIS_URL, SESSIONS_POSTGRES_DSN,
# SESSIONS_MYSQL_DSN override); benchmarks of an unreachable one are
# skipped unless SESSIONS_REQUIRE_SERVICES=1.
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK=off

ROUNDS=${ROUNDS:-10}
BENCHTIME=${BENCHTIME:-200ms}
PROBE_ROUNDS=${PROBE_ROUNDS:-5}
read -r -a STORES <<<"${STORES:-memory redis redis-near postgres mysql cookie filesystem}"
read -r -a WORKS <<<"${WORKS:-untouched-nocookie untouched-cookie read incr create parallel-incr}"
OUT=${OUT:-results/latest}
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=$tmp/bench.test
go test -c -o "$bin" .

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "go: $(go version | cut -d' ' -f3-)"
	echo "rounds: $ROUNDS x benchtime $BENCHTIME; probe rounds: $PROBE_ROUNDS"
	go list -m github.com/alexedwards/scs/v2 github.com/alexedwards/scs/redisstore \
		github.com/alexedwards/scs/postgresstore github.com/gorilla/sessions \
		github.com/gomodule/redigo github.com/redis/go-redis/v9 github.com/jackc/pgx/v5 \
		github.com/go-sql-driver/mysql | sed 's/^/module: /'
	echo "sessionkit: $(git -C .. rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C .. diff --quiet HEAD -- '*.go' ':!benchmarks' 2>/dev/null || echo ' (with uncommitted changes)')"
} >"$OUT/env.txt"

: >"$OUT/bench.txt"
start=$SECONDS
for ((round = 0; round < ROUNDS; round++)); do
	reverse=$([ $((round % 2)) = 1 ] && echo true || echo false)
	for store in "${STORES[@]}"; do
		for work in "${WORKS[@]}"; do
			"$bin" -test.run '^$' -test.bench "^BenchmarkSessions\$/^store=(none|$store)\$/^work=$work\$/" \
				-test.benchtime "$BENCHTIME" -test.count 1 -bench.reverse="$reverse" >"$tmp/out.txt" 2>&1 || {
				cat "$tmp/out.txt" >&2
				echo "run.sh: benchmarks of $store/$work failed" >&2
				exit 1
			}
			cat "$tmp/out.txt" >>"$OUT/bench.txt"
		done
	done
	echo "round $((round + 1))/$ROUNDS done after $((SECONDS - start))s" >&2
done

"$bin" -test.run '^TestLostUpdates$' -test.v -probe.rounds "$PROBE_ROUNDS" \
	-probe.out "$OUT/probe.tsv" >"$OUT/probe.log" 2>&1 || {
	cat "$OUT/probe.log" >&2
	echo "run.sh: lost-update probe failed" >&2
	exit 1
}

if [ "${PROFILE:-0}" = 1 ]; then
	"$bin" -test.run '^$' -test.bench '^BenchmarkSessions$/^store=memory$/./^lib=sessionkit$' \
		-test.benchtime 2s -test.cpuprofile "$OUT/cpu.pprof" -test.memprofile "$OUT/mem.pprof" \
		-test.memprofilerate 512 >"$OUT/profile-bench.txt"
	go tool pprof -top -nodecount 60 "$bin" "$OUT/cpu.pprof" >"$OUT/cpu-top.txt" 2>/dev/null
	go tool pprof -top -sample_index alloc_space -nodecount 40 "$bin" "$OUT/mem.pprof" >"$OUT/mem-top.txt" 2>/dev/null
fi

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); benchmarks took $((SECONDS - start))s" >>"$OUT/env.txt"
go run ./cmd/summarize -probe "$OUT/probe.tsv" "$OUT/bench.txt" >"$OUT/summary.md"
# benchstat compares against its first column: per store, every library
# against the baseline, then against that store's floor.
{
	for store in "${STORES[@]}"; do
		echo "## $store: against the baseline"
		go run "$BENCHSTAT" -filter "/store:(none OR $store)" -ignore /store \
			-col '/lib@(baseline floor sessionkit scs gorilla)' "$OUT/bench.txt"
		case $store in cookie | filesystem) continue ;; esac
		echo "## $store: against the floor"
		go run "$BENCHSTAT" -filter "/store:$store -/work:untouched-nocookie -/work:untouched-cookie" \
			-ignore /store -col '/lib@(floor sessionkit scs)' "$OUT/bench.txt"
	done
} >"$OUT/benchstat.txt"
cat "$OUT/env.txt" "$OUT/summary.md"
