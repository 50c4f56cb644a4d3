#!/usr/bin/env bash
# The soak test behind `make soak` (see tools/loadgen/README.md, "Soak").
#
# Starts packet-service (release binary, plain codec, no packet-rate limit,
# auto-created accounts, metrics on loopback, a short idle timeout so that
# keepalives matter), holds SOAK_CONNECTIONS connections with mixed traffic
# for SOAK_SECONDS, prints a sample every SOAK_INTERVAL seconds, writes the
# samples to bench/results/soak-<date>-<host>.json and exits non-zero unless
# the gateway stayed flat. The gateway is stopped on any exit (trap).
#
# Settings come from the environment (mk/soak.mk passes them):
#   SOAK_BIN_DIR       release binaries                       (target/release)
#   SOAK_DIR           results directory                      (bench/results)
#   SOAK_PORT          gateway port                           (29510)
#   SOAK_METRICS_PORT  gateway metrics port                   (29511)
#   SOAK_CONNECTIONS   connections held                       (15000)
#   SOAK_SECONDS       duration of the mix                    (300)
#   SOAK_INTERVAL      seconds between samples                (10)
#   SOAK_IDLE_TIMEOUT  gateway --idle-timeout, seconds        (30)
#   SOAK_ALIVE         seconds between ALIVEs of a connection (10)
#   SOAK_POOL          gateway --buffer-pool-size             (4096)
#   SOAK_MAX_CONNECTIONS  gateway --max-connections          (20000)
#   SOAK_ARGS          extra loadgen arguments                (none)
set -euo pipefail

BIN=${SOAK_BIN_DIR:-target/release}
OUT=${SOAK_DIR:-bench/results}
PORT=${SOAK_PORT:-29510}
METRICS_PORT=${SOAK_METRICS_PORT:-29511}
CONNS=${SOAK_CONNECTIONS:-15000}
SECS=${SOAK_SECONDS:-300}
INTERVAL=${SOAK_INTERVAL:-10}
IDLE_TIMEOUT=${SOAK_IDLE_TIMEOUT:-30}
ALIVE=${SOAK_ALIVE:-10}
POOL=${SOAK_POOL:-4096}

# shellcheck source=tools/loadgen/common.sh
. "$(dirname "$0")/common.sh"
raise_fd_limit

mkdir -p "$OUT"
stamp=$(date -u +%Y-%m-%d)
host=$(host_name)
json="$OUT/soak-$stamp-$host.json"
logs=$(mktemp -d)

gw_pid=""
cleanup() {
    if [ -n "$gw_pid" ]; then
        stop_pids "$gw_pid"
    fi
    echo "gateway stopped; its log is $logs/gateway.log"
}
trap cleanup EXIT INT TERM

max_conns=${SOAK_MAX_CONNECTIONS:-20000}
# Every client is on loopback: no per-address limit.
"$BIN/packet-service" --listen 127.0.0.1 --port "$PORT" --codec plain --database memory \
    --max-packets-per-sec 0 --max-connections "$max_conns" --buffer-pool-size "$POOL" \
    --max-connections-per-ip 0 --chat-per-sec 0 \
    --idle-timeout "$IDLE_TIMEOUT" --auto-create-accounts \
    --metrics-listen 127.0.0.1 --metrics-port "$METRICS_PORT" --log-level info \
    >"$logs/gateway.log" 2>&1 &
gw_pid=$!
wait_port "$PORT"
wait_port "$METRICS_PORT"
echo "packet-service pid $gw_pid on :$PORT (metrics :$METRICS_PORT), idle timeout ${IDLE_TIMEOUT}s"

status=0
# SOAK_ARGS is split on spaces on purpose (several flags).
# shellcheck disable=SC2086
"$BIN/loadgen" soak -a "127.0.0.1:$PORT" --server-pid "$gw_pid" \
    --metrics-addr "127.0.0.1:$METRICS_PORT" -c "$CONNS" -d "$SECS" \
    --interval "$INTERVAL" --alive-interval "$ALIVE" --json "$json" ${SOAK_ARGS:-} ||
    status=$?
if ! kill -0 "$gw_pid" 2>/dev/null; then
    gw_status=0
    wait "$gw_pid" || gw_status=$?
    echo "packet-service exited during the soak (status $gw_status; 128+N is signal N);" \
        "see $logs/gateway.log" >&2
    tail -n 20 "$logs/gateway.log" >&2
    gw_pid=""
    status=1
fi
exit "$status"
