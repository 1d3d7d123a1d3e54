#!/usr/bin/env bash
# Runs every test of every module in the repository with the race detector.
# Usage: scripts/test.sh [go test flags...]
# Service-backed tests use the local PostgreSQL, MariaDB and Redis and skip
# when these are unreachable; SESSIONS_REQUIRE_SERVICES=1 makes them fail.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
while IFS= read -r mod; do
	dir=$(dirname "$mod")
	rel=${dir#"$root"}; rel=${rel#/}; rel=${rel:-.}
	# tools/ferretdb is a program without tests; a -race build of FerretDB costs minutes.
	case "$rel" in tools | tools/*) continue ;; esac
	echo "== $rel"
	# -v feeds the tally below. A passing module shows its package results; a
	# failing one shows its whole output but for the progress lines.
	if (cd "$dir" && GOWORK=off go test -race -count=1 -v "$@" ./... >"$log" 2>&1); then
		grep -E '^(ok|FAIL|\?) ' "$log" || true
	else
		status=1
		grep -vE '^\s*(=== (RUN|PAUSE|CONT|NAME)|--- (PASS|SKIP))' "$log" || true
	fi
	p=$(grep -cE '^\s*--- PASS' "$log"); f=$(grep -cE '^\s*--- FAIL' "$log"); s=$(grep -cE '^\s*--- SKIP' "$log")
	echo "   $rel: $p passed, $f failed, $s skipped (tests and subtests)"
	passed=$((${passed:-0} + p)); failed=$((${failed:-0} + f)); skipped=$((${skipped:-0} + s))
	if [ "${SESSIONS_SHOW_SKIPS:-}" = 1 ] || [ "${SESSIONS_REQUIRE_SERVICES:-}" = 1 ]; then
		grep -E '^\s*--- SKIP' "$log" | sed 's/^ */  /' || true
	fi
done < <(find "$root" -name go.mod -not -path '*/.git/*' | sort)
echo
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit $status
