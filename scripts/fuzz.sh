#!/usr/bin/env bash
# Runs every fuzz target of every module for a bounded time each, starting
# from its committed corpus (testdata/fuzz/<Target>, plus the f.Add seeds).
#
# Usage:
#   scripts/fuzz.sh [SECONDS] [TARGET-REGEXP]
#
# SECONDS per target, default 5 (what CI runs). A long campaign, e.g. an
# hour per target, or one target for a night:
#   scripts/fuzz.sh 3600
#   scripts/fuzz.sh 28800 '^FuzzManager$'
# A failing input is written by go test to testdata/fuzz/<Target>/ of its
# package: commit it with the fix, so that every later `go test` replays it.
# New interesting inputs stay in the Go build cache ($(go env GOCACHE)/fuzz);
# FUZZ_SAVE=1 copies up to 10 of the smallest per target into the
# committed corpus.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
filter=${2:-.}
export GOWORK=off
status=0
count=0
start=$(date +%s)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
while IFS= read -r file; do
	dir=$(dirname "$file")
	# One instrumented test binary per package, built once.
	key=$(echo "$dir" | md5sum | cut -c1-12)
	if [ ! -x "$bin/$key.test" ]; then
		(cd "$dir" && go test -c -fuzz=. -o "$bin/$key.test" .) || { status=1; continue; }
	fi
	pkg=$(cd "$dir" && go list .)
	cache="$(go env GOCACHE)/fuzz/$pkg"
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$file"); do
		[[ $name =~ $filter ]] || continue
		count=$((count + 1))
		rel=${dir#"$root"}; rel=${rel#/}; rel=${rel:-.}
		echo "== $rel $name (${secs}s)"
		if ! (cd "$dir" && "$bin/$key.test" -test.run='^$' -test.fuzz="^$name\$" -test.fuzztime="${secs}s" \
			-test.fuzzcachedir="$cache" 2>&1 | tail -3); then
			status=1
		fi
		if [ "${FUZZ_SAVE:-}" = 1 ]; then
			if [ -d "$cache/$name" ]; then
				mkdir -p "$dir/testdata/fuzz/$name"
				ls -S -r "$cache/$name" | head -10 | while read -r f; do cp "$cache/$name/$f" "$dir/testdata/fuzz/$name/"; done
			fi
		fi
	done
done < <(cd "$root" && grep -l --include='*_test.go' -r '^func Fuzz' . | grep -v '/\.git/' | sed "s|^\./|$root/|" | sort)
echo "$count fuzz targets, ${secs}s each, in $(( $(date +%s) - start ))s"
exit $status
