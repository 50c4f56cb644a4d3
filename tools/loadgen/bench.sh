#!/usr/bin/env bash
# The benchmark suite behind `make bench` (see tools/loadgen/README.md).
#
# Starts packet-service (release binary, plain codec, no packet-rate limit,
# auto-created accounts) and redis-server on loopback, runs every loadgen
# scenario against them, writes bench/results/<date>-<host>.json and the
# latency chart beside it, prints the summary, and stops both servers on any
# exit (trap). Every scenario is bounded; the whole takes a few minutes.
# The reuseport scenario starts two more gateways sharing one port
# (--reuse-port) and runs echo against the pair, their CPU summed, to set
# beside the single gateway's echo of the same run.
#
# Settings come from the environment (mk/bench.mk passes them):
#   BENCH_BIN_DIR     release binaries              (target/release)
#   BENCH_DIR         results directory             (bench/results)
#   BENCH_PORT        gateway port                  (29500)
#   BENCH_REDIS_PORT  redis port                    (29501)
#   BENCH_REUSE_PORT  port of the two reuse-port gateways (29503)
#   BENCH_SCENARIOS   which to run, space-separated (all: echo redis reuseport
#                     idle login fanout walk isolation)
#   BENCH_CONNS       echo connections              (50)
#   BENCH_SECS        seconds per measured phase    (10)
#   BENCH_IDLE        idle connections              (15000)
#   BENCH_LOGINS      login bots                    (20000)
#   BENCH_LOGIN_CONCURRENCY  login flows in flight  (50)
#   BENCH_FANOUT      fanout bots                   (1000)
#   BENCH_CHATTERS    fanout chatters               (60: 600,000 deliveries/s offered)
#   BENCH_CHAT_RATE   messages/s per chatter        (10)
#   BENCH_WALK        walk bots                     (1000)
#   BENCH_WALK_RATE   moves/s per walk bot          (1)
#   BENCH_DB_PORT     port of the gateways of the per-engine login runs (29502)
#   BENCH_DB_SECS     seconds of each per-engine login run   (30)
#   BENCH_ENGINES     engines of the per-engine login runs   (sqlite postgres)
#   PACKET_SERVICE_TEST_DATABASE_URL  PostgreSQL for the postgres run
#                     (mk/bench.mk starts one with .ci/postgres.sh)
#
# The main gateway keeps the memory database (the figures of every scenario
# stay comparable with earlier runs); the login scenario then runs again
# against a gateway on each persistent engine (`login-sqlite`,
# `login-postgres`), and the summary shows those next to the memory run.
set -euo pipefail

BIN=${BENCH_BIN_DIR:-target/release}
OUT=${BENCH_DIR:-bench/results}
PORT=${BENCH_PORT:-29500}
REDIS_PORT=${BENCH_REDIS_PORT:-29501}
REUSE_PORT=${BENCH_REUSE_PORT:-29503}
SCENARIOS=${BENCH_SCENARIOS:-echo redis reuseport idle login fanout walk isolation}
CONNS=${BENCH_CONNS:-50}
SECS=${BENCH_SECS:-10}
IDLE=${BENCH_IDLE:-15000}
LOGINS=${BENCH_LOGINS:-20000}
LOGIN_CONC=${BENCH_LOGIN_CONCURRENCY:-50}
FANOUT=${BENCH_FANOUT:-1000}
CHATTERS=${BENCH_CHATTERS:-60}
CHAT_RATE=${BENCH_CHAT_RATE:-10}
WALK=${BENCH_WALK:-1000}
WALK_RATE=${BENCH_WALK_RATE:-1}
DB_PORT=${BENCH_DB_PORT:-29502}
DB_SECS=${BENCH_DB_SECS:-30}
ENGINES=${BENCH_ENGINES:-sqlite postgres}

# shellcheck source=tools/loadgen/common.sh
. "$(dirname "$0")/common.sh"
raise_fd_limit

mkdir -p "$OUT"
stamp=$(date -u +%Y-%m-%d)
host=$(host_name)
json="$OUT/$stamp-$host.json"
svg="$OUT/$stamp-$host.svg"
rm -f "$json"
logs=$(mktemp -d)

# Whether a scenario (group) was asked for.
want() {
    case " $SCENARIOS " in *" $1 "*) return 0 ;; esac
    return 1
}

gw_pid=""
redis_pid=""
pair_pids=""
cleanup() {
    # shellcheck disable=SC2086 # empty pids vanish
    stop_pids $gw_pid $redis_pid $pair_pids ${db_pid:-}
    echo "servers stopped; logs in $logs"
}
trap cleanup EXIT INT TERM

# The gateway's flags; the reuse-port pair gets the same ones. Every client
# is on loopback and chatters talk faster than players may: the per-address
# limit and the chat budget are off for the benchmark. Several gateways run at
# once, each with its embedded backend: their admin services take ephemeral ports.
GW_FLAGS=(--listen 127.0.0.1 --codec plain --admin-listen 127.0.0.1:0
    --max-packets-per-sec 0 --max-connections 19000 --buffer-pool-size 8192
    --max-connections-per-ip 0 --chat-per-sec 0
    --auto-create-accounts --no-metrics --log-level warn --database memory)
"$BIN/packet-service" "${GW_FLAGS[@]}" --port "$PORT" >"$logs/gateway.log" 2>&1 &
gw_pid=$!
wait_port "$PORT"
echo "packet-service pid $gw_pid on :$PORT"
if want redis || want idle; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --maxclients 17000 >"$logs/redis.log" 2>&1 &
    redis_pid=$!
    wait_port "$REDIS_PORT"
    echo "redis-server pid $redis_pid on :$REDIS_PORT"
fi

LG="$BIN/loadgen"
GW="127.0.0.1:$PORT"
RD="127.0.0.1:$REDIS_PORT"
failed=0
run() {
    echo
    echo "--- loadgen $*"
    if ! "$LG" "$@" --json "$json"; then
        echo "loadgen $1 failed (the other scenarios still run)" >&2
        failed=$((failed + 1))
    fi
}

for p in 1 16; do
    want echo && run echo -a "$GW" --server-pid "$gw_pid" -c "$CONNS" -P "$p" -d "$SECS"
    want redis && run redis -a "$RD" --server-pid "$redis_pid" -c "$CONNS" -P "$p" -d "$SECS"
done
if want reuseport; then
    # Two gateway processes on one port: the kernel spreads the echo
    # connections over them; their CPU is summed.
    for i in 1 2; do
        "$BIN/packet-service" "${GW_FLAGS[@]}" --port "$REUSE_PORT" --reuse-port \
            >"$logs/gateway-reuse-$i.log" 2>&1 &
        pair_pids="$pair_pids $!"
    done
    wait_port "$REUSE_PORT"
    # shellcheck disable=SC2086 # two pids, joined with commas
    pids=$(echo $pair_pids | tr ' ' ',')
    echo "packet-service pids $pids sharing :$REUSE_PORT"
    for p in 1 16; do
        run echo -a "127.0.0.1:$REUSE_PORT" --server-pid "$pids" -c "$CONNS" -P "$p" -d "$SECS"
    done
    for pid in $pair_pids; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "reuse-port gateway $pid exited during the run; see $logs/gateway-reuse-*.log" >&2
            failed=$((failed + 1))
        fi
    done
    # shellcheck disable=SC2086 # two pids
    stop_pids $pair_pids
    pair_pids=""
fi
if want idle; then
    run idle -a "$GW" --server-pid "$gw_pid" -c "$IDLE"
    run idle --target redis -a "$RD" --server-pid "$redis_pid" -c "$IDLE"
fi
want login && run login -a "$GW" --server-pid "$gw_pid" --bots "$LOGINS" --concurrency "$LOGIN_CONC" -d 30
# The login scenario on each persistent engine, one fresh database each.
login_on() {
    local engine=$1 url
    case $engine in
        sqlite) url="sqlite:$logs/bench-login.db" ;;
        postgres)
            if [ -z "${PACKET_SERVICE_TEST_DATABASE_URL:-}" ]; then
                echo "login-postgres skipped: PACKET_SERVICE_TEST_DATABASE_URL is not set"
                return 0
            fi
            psql -q "$PACKET_SERVICE_TEST_DATABASE_URL" \
                -c 'DROP SCHEMA IF EXISTS bench_login CASCADE' -c 'CREATE SCHEMA bench_login'
            url="$PACKET_SERVICE_TEST_DATABASE_URL?options=-c%20search_path%3Dbench_login"
            ;;
        *) echo "unknown engine $engine" >&2; return 1 ;;
    esac
    "$BIN/packet-service" --listen 127.0.0.1 --port "$DB_PORT" --codec plain \
        --max-packets-per-sec 0 --auto-create-accounts --no-metrics --log-level warn \
        --admin-listen 127.0.0.1:0 --database "$url" >"$logs/gateway-$engine.log" 2>&1 &
    db_pid=$!
    wait_port "$DB_PORT"
    run login -a "127.0.0.1:$DB_PORT" --server-pid "$db_pid" --bots "$LOGINS" \
        --concurrency "$LOGIN_CONC" -d "$DB_SECS" --run-id "login-$engine"
    stop_pids "$db_pid"
    db_pid=""
}
db_pid=""
if want login; then
    for engine in $ENGINES; do
        login_on "$engine"
    done
fi
want fanout && run fanout -a "$GW" --server-pid "$gw_pid" -b "$FANOUT" -k "$CHATTERS" -r "$CHAT_RATE" -d "$SECS"
want walk && run walk -a "$GW" --server-pid "$gw_pid" -b "$WALK" -r "$WALK_RATE" -d "$SECS"
want isolation && run isolation --gateway-bin "$BIN/packet-service" -d "$SECS"

echo
echo "=== summary ($json)"
"$LG" report "$json" --svg "$svg"
if ! kill -0 "$gw_pid" 2>/dev/null; then
    echo "packet-service exited during the run; see $logs/gateway.log" >&2
    failed=$((failed + 1))
fi
exit "$failed"
