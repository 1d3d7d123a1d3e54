#!/usr/bin/env bash
# Start or stop FerretDB, the MongoDB wire-protocol server the mongostore
# tests run against, on 127.0.0.1:27017, with its data in the local
# PostgreSQL.
#
#   .ci/mongo.sh start   # idempotent: builds (cached), starts, waits until it answers
#   .ci/mongo.sh stop
#
# The server is tools/ferretdb, a small program of ours around FerretDB's
# embeddable package, pinned in tools/ferretdb/go.mod. The binary is cached
# under $SESSIONS_CACHE (default /var/cache/sessionkit) by the hash of its
# source, so only the first start on a machine builds it.
#
# Environment: MONGO_ADDR (default 127.0.0.1:27017), FERRETDB_PG_URL
# (default postgres://postgres@127.0.0.1:5432/sessionkit_ferretdb?synchronous_commit=off&pool_max_conns=10:
# at most 10 of the shared server's connections (FerretDB would take 50);
# test data need no durability, and commits without waiting for the WAL
# flush make FerretDB's writes about twice as fast; the database is created
# if absent), FERRETDB_DIR (default /tmp/sessionkit-ferretdb: pid file, log,
# Unix socket).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

addr=${MONGO_ADDR:-127.0.0.1:27017}
pgurl=${FERRETDB_PG_URL:-postgres://postgres@127.0.0.1:5432/sessionkit_ferretdb?synchronous_commit=off&pool_max_conns=10}
dir=${FERRETDB_DIR:-/tmp/sessionkit-ferretdb}
cache=${SESSIONS_CACHE:-/var/cache/sessionkit}/ferretdb
src=tools/ferretdb

log() { echo "mongo: $*" >&2; }

binary() {
	local sum
	sum=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)
	echo "$cache/ferretdb-$sum"
}

build() {
	local bin start
	bin=$(binary)
	if [ ! -x "$bin" ]; then
		mkdir -p "$cache"
		log "building FerretDB ($src) into $bin"
		start=$(date +%s)
		(cd "$src" && GOWORK=off GOFLAGS=-mod=readonly go build -o "$bin.tmp" .)
		mv "$bin.tmp" "$bin"
		# Binaries of older sources are dead weight (about 37 MB each).
		find "$cache" -maxdepth 1 -name 'ferretdb-*' ! -name "${bin##*/}" -delete
		log "built in $(($(date +%s) - start)) s"
	fi
	echo "$bin"
}

up() { "$1" -check "$addr" >/dev/null 2>&1; }

ensure_database() {
	local base=${pgurl%%\?*} db
	db=${base##*/}
	psql "${base%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
		psql "${base%/*}/postgres" -qc "CREATE DATABASE \"$db\""
}

start() {
	local bin pid
	bin=$(build)
	if up "$bin"; then
		log "already answering on $addr"
		return 0
	fi
	ensure_database
	mkdir -p "$dir"
	nohup "$bin" -listen "$addr" -postgresql-url "$pgurl" -dir "$dir" >"$dir/ferretdb.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/ferretdb.pid"
	for _ in $(seq 300); do
		if up "$bin"; then
			log "FerretDB (pid $pid) answering on $addr"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "FerretDB exited; see $dir/ferretdb.log:"
			tail -20 "$dir/ferretdb.log" >&2
			return 1
		fi
		sleep 0.1
	done
	log "FerretDB did not answer on $addr within 30 s; see $dir/ferretdb.log"
	return 1
}

stop() {
	local pid
	[ -f "$dir/ferretdb.pid" ] || return 0
	pid=$(cat "$dir/ferretdb.pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then log "FerretDB (pid $pid) still running"; return 1; fi
	fi
	rm -f "$dir/ferretdb.pid"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
