#!/usr/bin/env bash
# Versions of the repository's modules, kept in lockstep.
#
# Every module is released at the version in the VERSION file: the core as
# tag vX.Y.Z, each other published module as tag <dir>/vX.Y.Z (the Go
# convention for modules in subdirectories). Modules of this repository
# require each other at that version, so that they resolve for users, and
# keep a replace directive to the local directory, so that development in
# the repository never downloads them: the in-repository loop stays
# "edit, go test".
#
# Usage:
#   scripts/release.sh check          every internal require is at VERSION and replaced locally
#   scripts/release.sh bump vX.Y.Z    set VERSION and every internal require to vX.Y.Z
#   scripts/release.sh tag            tag vX.Y.Z and <dir>/vX.Y.Z at HEAD (clean tree, check passes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
prefix=github.com/sessionkit/sessions
# Modules that are not published: they are never tagged.
unpublished='^(examples|benchmarks|reliability|tools|tools/.*|\.ci/.*)$'

version() { tr -d ' \n' < VERSION; }
valid() { [[ $1 =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; }
modules() { find . -name go.mod -not -path './.git/*' | sed 's|^\./||; s|/\?go.mod$||; s|^$|.|' | sort; }

# internal_requires DIR: the module paths of this repository DIR requires,
# with their versions ("path version" per line).
internal_requires() {
	(cd "$1" && GOWORK=off go mod edit -json) |
		awk -v p="\"$prefix" '
			/"Require"/ { inreq = 1 } /"Replace"/ { inreq = 0 }
			inreq && /"Path":/ { path = $2 } inreq && /"Version":/ { if (index(path, p) == 1) print path, $2 }' |
		tr -d '",'
}

# local_replace DIR PATH: where DIR's go.mod replaces PATH, or nothing.
local_replace() {
	(cd "$1" && GOWORK=off go mod edit -json) |
		awk -v want="$2" '
			{ gsub(/[",]/, "", $2) }
			/"Old":/ { old = 1 } /"New":/ { old = 0; new = 1 }
			old && /"Path":/ { hit = ($2 == want) }
			new && /"Path":/ { if (hit) print $2; new = 0; hit = 0 }'
}

# dir_of PATH: the repository directory of module PATH.
dir_of() { local d=${1#"$prefix"}; d=${d#/}; echo "${d:-.}"; }

check() {
	local want status=0
	want=$(version)
	valid "$want" || { echo "VERSION: $want is not a semantic version"; return 1; }
	for dir in $(modules); do
		case "$dir" in tools | tools/*) continue ;; esac
		while read -r path ver; do
			[ -n "$path" ] || continue
			if [ "$ver" != "$want" ]; then
				echo "$dir/go.mod: requires $path at $ver, want $want (scripts/release.sh bump $want)"
				status=1
			fi
			target=$(dir_of "$path")
			rep=$(local_replace "$dir" "$path")
			if [ -z "$rep" ] || [ "$(cd "$dir/$rep" 2>/dev/null && pwd)" != "$(cd "$target" && pwd)" ]; then
				echo "$dir/go.mod: $path must be replaced by the local directory $target (have '${rep:-none}')"
				status=1
			fi
		done < <(internal_requires "$dir")
	done
	[ $status = 0 ] && echo "release check: every internal require is at $want and replaced locally"
	return $status
}

bump() {
	local to=$1
	valid "$to" || { echo "bump: $to is not a semantic version (vX.Y.Z)"; return 1; }
	for dir in $(modules); do
		case "$dir" in tools | tools/*) continue ;; esac
		while read -r path ver; do
			[ -n "$path" ] || continue
			(cd "$dir" && GOWORK=off go mod edit -require="$path@$to")
		done < <(internal_requires "$dir")
	done
	echo "$to" > VERSION
	grep -q "^## $to" CHANGELOG.md || echo "CHANGELOG.md has no '## $to' section yet: write it before tagging"
	check
}

tag() {
	local v
	v=$(version)
	[ -z "$(git status --porcelain)" ] || { echo "tag: the working tree is not clean"; return 1; }
	grep -q "^## $v" CHANGELOG.md || { echo "tag: CHANGELOG.md has no '## $v' section"; return 1; }
	check
	for dir in $(modules); do
		[[ $dir =~ $unpublished ]] && continue
		if [ "$dir" = . ]; then t=$v; else t=$dir/$v; fi
		git tag "$t" && echo "tagged $t"
	done
	echo "push with: git push origin --tags"
}

case "${1:-}" in
check) check ;;
bump) bump "${2:?usage: scripts/release.sh bump vX.Y.Z}" ;;
tag) tag ;;
*) sed -n '2,18p' "$0"; exit 2 ;;
esac
