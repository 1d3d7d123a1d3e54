#!/usr/bin/env bash
# Static checks for every module: gofmt, the modules' versions
# (scripts/release.sh check), go mod tidy -diff, go vet and staticcheck
# (pinned in tools/go.mod).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
unformatted=$(cd "$root" && gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; status=1
fi
"$root/scripts/release.sh" check || status=1
while IFS= read -r mod; do
	dir=$(dirname "$mod")
	rel=${dir#"$root"}; rel=${rel#/}; rel=${rel:-.}
	echo "== $rel"
	(cd "$dir" && GOWORK=off go mod tidy -diff) || { echo "$rel: go.mod/go.sum not tidy"; status=1; }
	[ "$rel" = tools ] && continue
	(cd "$dir" && GOWORK=off go vet ./...) || status=1
	(cd "$dir" && GOWORK=off go tool -modfile="$root/tools/go.mod" staticcheck ./...) || status=1
done < <(find "$root" -name go.mod -not -path '*/.git/*' | sort)
exit $status
