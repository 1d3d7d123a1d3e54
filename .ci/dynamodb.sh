#!/usr/bin/env bash
# Start or stop dynalite, an implementation of the DynamoDB API in Node.js
# (in memory), on loopback for the dynamostore tests.
#
#   .ci/dynamodb.sh start   # idempotent; prints the endpoint
#   .ci/dynamodb.sh stop
#
# Environment: DYNALITE_PORT (default 4567), DYNALITE_DIR (the install
# cache, default /var/cache/sessionkit/dynalite), DYNALITE_RUN (pid and log,
# default /tmp/sessionkit-dynalite).
# The tests read the endpoint from SESSIONS_DYNAMODB_ENDPOINT, whose default
# is the one printed here: http://127.0.0.1:4567.
set -euo pipefail

version=4.0.0
port=${DYNALITE_PORT:-4567}
dir=${DYNALITE_DIR:-/var/cache/sessionkit/dynalite}
run=${DYNALITE_RUN:-/tmp/sessionkit-dynalite}
host=127.0.0.1
endpoint="http://$host:$port"

log() { echo "dynamodb: $*" >&2; }

# up: the port accepts connections (bash's /dev/tcp; no curl needed).
up() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

install() {
	local bin=$dir/node_modules/.bin/dynalite
	if [ -x "$bin" ] && grep -q "\"version\": \"$version\"" "$dir/node_modules/dynalite/package.json" 2>/dev/null; then
		return 0
	fi
	command -v npm >/dev/null || { log "npm not found (apt-get install nodejs npm)"; exit 1; }
	mkdir -p "$dir"
	log "installing dynalite@$version into $dir"
	# npm may skip a native install script of a dependency (leveldown) by
	# policy; the in-memory server does not need it.
	npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "dynalite@$version" >&2
}

start() {
	command -v node >/dev/null || { log "node not found (apt-get install nodejs)"; exit 1; }
	if up; then
		echo "$endpoint"
		return 0
	fi
	install
	mkdir -p "$run"
	# Tables become ACTIVE after 50 ms instead of dynalite's default 500 ms
	# (set in .ci/dynalite.js):
	# the tests create a table per case, and CreateTable still waits for it.
	# .ci/dynalite.js starts it with those settings and keeps it alive when
	# a client aborts a request (dynalite itself exits on that).
	nohup node "$(dirname "$0")/dynalite.js" "$dir" "$host" "$port" >"$run/dynalite.log" 2>&1 &
	echo $! >"$run/dynalite.pid"
	for _ in $(seq 100); do up && break; sleep 0.1; done
	up || { log "dynalite did not start; see $run/dynalite.log"; exit 1; }
	echo "$endpoint"
}

stop() {
	if [ -f "$run/dynalite.pid" ]; then
		local pid
		pid=$(cat "$run/dynalite.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		rm -f "$run/dynalite.pid"
	fi
	if up; then log "something still answers on $endpoint"; exit 1; fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
