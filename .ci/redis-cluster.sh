#!/usr/bin/env bash
# Start or stop a three-master Redis Cluster on loopback for the redisstore
# tests.
#
#   .ci/redis-cluster.sh start   # idempotent; prints the seed list
#   .ci/redis-cluster.sh stop
#
# Environment: REDIS_CLUSTER_PORTS (default "7001 7002 7003"),
# REDIS_CLUSTER_DIR (default /tmp/sessionkit-redis-cluster).
# The tests read the printed list from SESSIONS_REDIS_CLUSTER, e.g.
#   export SESSIONS_REDIS_CLUSTER=$(.ci/redis-cluster.sh start)
set -euo pipefail

ports=(${REDIS_CLUSTER_PORTS:-7001 7002 7003})
dir=${REDIS_CLUSTER_DIR:-/tmp/sessionkit-redis-cluster}
host=127.0.0.1

log() { echo "redis-cluster: $*" >&2; }

seeds() {
	local out=() p
	for p in "${ports[@]}"; do out+=("$host:$p"); done
	(IFS=,; echo "${out[*]}")
}

up() { redis-cli -h "$host" -p "$1" ping >/dev/null 2>&1; }

state_ok() {
	redis-cli -h "$host" -p "$1" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok'
}

known_nodes() {
	redis-cli -h "$host" -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_known_nodes://p'
}

start() {
	command -v redis-server >/dev/null || { log "redis-server not found (apt-get install redis-server)"; exit 1; }
	local p
	for p in "${ports[@]}"; do
		if up "$p"; then
			continue
		fi
		mkdir -p "$dir/$p"
		# A node that was stopped keeps nodes.conf; start it fresh.
		rm -f "$dir/$p/nodes.conf" "$dir/$p/dump.rdb"
		redis-server --port "$p" --bind "$host" --daemonize yes \
			--cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
			--cluster-node-timeout 5000 --dir "$dir/$p" --save "" --appendonly no \
			--logfile "$dir/$p/redis.log" --pidfile "$dir/$p/redis.pid"
	done
	for p in "${ports[@]}"; do
		for _ in $(seq 100); do up "$p" && break; sleep 0.1; done
		up "$p" || { log "node $p did not start; see $dir/$p/redis.log"; exit 1; }
	done

	local joined=1
	for p in "${ports[@]}"; do
		if ! state_ok "$p" || [ "$(known_nodes "$p")" != "${#ports[@]}" ]; then joined=0; fi
	done
	if [ "$joined" = 0 ]; then
		# Nodes that already know others but are not ok were half-joined:
		# reset them all and create the cluster again.
		for p in "${ports[@]}"; do
			redis-cli -h "$host" -p "$p" flushall >/dev/null 2>&1 || true
			redis-cli -h "$host" -p "$p" cluster reset hard >/dev/null
		done
		local addrs=()
		for p in "${ports[@]}"; do addrs+=("$host:$p"); done
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
			{ cat "$dir/create.log" >&2; exit 1; }
	fi

	for _ in $(seq 300); do
		local ok=1
		for p in "${ports[@]}"; do state_ok "$p" || ok=0; done
		[ "$ok" = 1 ] && break
		sleep 0.1
	done
	for p in "${ports[@]}"; do
		state_ok "$p" || { log "cluster_state is not ok on $p"; exit 1; }
	done
	seeds
}

stop() {
	local p
	for p in "${ports[@]}"; do
		if up "$p"; then
			redis-cli -h "$host" -p "$p" shutdown nosave >/dev/null 2>&1 || true
		fi
	done
	for p in "${ports[@]}"; do
		for _ in $(seq 50); do up "$p" || break; sleep 0.1; done
		if up "$p"; then log "node $p still running"; exit 1; fi
	done
	rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
