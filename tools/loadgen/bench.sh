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
#                     idle login fanout walk storm isolation)
#   BENCH_CONNS       echo connections              (50)
#   BENCH_SECS        seconds per measured phase    (10)
#   BENCH_IDLE        idle connections              (15000)
#   BENCH_LOGINS      login bots                    (20000)
#   BENCH_LOGIN_CONCURRENCY  login flows in flight  (50)
#   BENCH_FANOUT      fanout bots = Redis subscribers        (1000)
#   BENCH_CHATTERS    fanout chatters = Redis publishers     (50)
#   BENCH_FANOUT_START  offered deliveries/s of the first step (50000)
#   BENCH_FANOUT_STEP   seconds per step; each offers 1.4x the last (3)
#   BENCH_STORM       reconnect storm players (10000, or what the open-files
#                     limit allows: the result says which)
#   BENCH_STORM_ENGINES  engines of the storm runs   (memory sqlite postgres)
#   BENCH_WALK        walk bots                     (1000)
#   BENCH_WALK_RATE   moves/s per walk bot          (1)
#   BENCH_DB_PORT     port of the gateways of the per-engine login runs (29502)
#   BENCH_DB_SECS     seconds of each per-engine login run   (30)
#   BENCH_ENGINES     engines of the per-engine login runs   (sqlite postgres)
#   PACKET_SERVICE_TEST_DATABASE_URL  PostgreSQL for the postgres run
#                     (mk/bench.mk starts one with .ci/postgres.sh)
#
# Every limit of the gateway that would close, refuse or throttle the
# benchmark's clients (all from 127.0.0.1) is set explicitly below, and each
# scenario reads the gateway's /metrics before and after: a run that the
# gateway's limits touched anyway fails instead of printing a ratio.
#
# fanout and pubsub step the offered deliveries/s up to saturation, on the
# gateway (bots on one map) and on Redis (SUBSCRIBE/PUBLISH) alike. The
# storm creates its players (storm --prepare), restarts the gateway on the
# same database, and logs them all in at once.
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
SCENARIOS=${BENCH_SCENARIOS:-echo redis reuseport idle login fanout walk storm isolation}
CONNS=${BENCH_CONNS:-50}
SECS=${BENCH_SECS:-10}
IDLE=${BENCH_IDLE:-15000}
LOGINS=${BENCH_LOGINS:-20000}
LOGIN_CONC=${BENCH_LOGIN_CONCURRENCY:-50}
FANOUT=${BENCH_FANOUT:-1000}
CHATTERS=${BENCH_CHATTERS:-50}
FANOUT_START=${BENCH_FANOUT_START:-50000}
FANOUT_STEP=${BENCH_FANOUT_STEP:-3}
STORM=${BENCH_STORM:-10000}
STORM_ENGINES=${BENCH_STORM_ENGINES:-memory sqlite postgres}
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

# The limits every gateway of the run is given. Every client is on
# loopback, one address: the per-address connection cap, the packet rate,
# the chat budget (chatters talk faster than players may), the auto-create
# and failed-login throttles per source are lifted; a connection may queue
# 8 MiB of output (Redis's soft limit for pub/sub clients) before it is
# closed, as a fan-out stepped past saturation queues some. Several gateways
# run at once, each with its embedded backend: their admin services take
# ephemeral ports.
LIMIT_FLAGS=(--listen 127.0.0.1 --codec plain --max-packets-per-sec 0
    --max-connections-per-ip 0 --chat-per-sec 0 --auto-create-accounts
    --autocreate-per-source 100000 --autocreate-per-min 1000000
    --auth-failures-per-source 100000 --output-limit 8388608 --log-level warn
    --admin-listen 127.0.0.1:0)
# The main gateway's flags; the reuse-port pair gets the same ones.
GW_FLAGS=("${LIMIT_FLAGS[@]}" --max-connections 19000 --buffer-pool-size 8192 --database memory)
METRICS_PORT=$((PORT + 10))
GM="127.0.0.1:$METRICS_PORT"
"$BIN/packet-service" "${GW_FLAGS[@]}" --port "$PORT" \
    --metrics-listen 127.0.0.1 --metrics-port "$METRICS_PORT" >"$logs/gateway.log" 2>&1 &
gw_pid=$!
wait_port "$PORT"
echo "packet-service pid $gw_pid on :$PORT"
if want redis || want idle || want fanout; then
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
    want echo && run echo -a "$GW" --server-pid "$gw_pid" --metrics-addr "$GM" -c "$CONNS" -P "$p" -d "$SECS"
    want redis && run redis -a "$RD" --server-pid "$redis_pid" -c "$CONNS" -P "$p" -d "$SECS"
done
if want reuseport; then
    # Two gateway processes on one port: the kernel spreads the echo
    # connections over them; their CPU is summed.
    for i in 1 2; do
        "$BIN/packet-service" "${GW_FLAGS[@]}" --port "$REUSE_PORT" --reuse-port \
            --no-metrics >"$logs/gateway-reuse-$i.log" 2>&1 &
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
    run idle -a "$GW" --server-pid "$gw_pid" --metrics-addr "$GM" -c "$IDLE"
    run idle --target redis -a "$RD" --server-pid "$redis_pid" -c "$IDLE"
fi
want login && run login -a "$GW" --server-pid "$gw_pid" --metrics-addr "$GM" \
    --bots "$LOGINS" --concurrency "$LOGIN_CONC" -d 30
# A fresh database of `engine` for run `name` (printed: its URL; empty:
# the engine is not available here).
db_url() {
    local engine=$1 name=$2
    case $engine in
        memory) echo memory ;;
        sqlite) rm -f "$logs/bench-$name.db"*; echo "sqlite:$logs/bench-$name.db" ;;
        postgres)
            [ -n "${PACKET_SERVICE_TEST_DATABASE_URL:-}" ] || return 0
            psql -q "$PACKET_SERVICE_TEST_DATABASE_URL" \
                -c "DROP SCHEMA IF EXISTS bench_$name CASCADE" -c "CREATE SCHEMA bench_$name"
            echo "$PACKET_SERVICE_TEST_DATABASE_URL?options=-c%20search_path%3Dbench_$name"
            ;;
        *) echo "unknown engine $engine" >&2; return 1 ;;
    esac
}
# A gateway on DB_PORT (metrics on DB_PORT+10) for the per-engine runs:
# db_gateway LOG URL [FLAG..]; sets db_pid.
DM="127.0.0.1:$((DB_PORT + 10))"
db_gateway() {
    local log=$1 url=$2
    shift 2
    "$BIN/packet-service" "${LIMIT_FLAGS[@]}" --port "$DB_PORT" \
        --metrics-listen 127.0.0.1 --metrics-port "$((DB_PORT + 10))" \
        --database "$url" "$@" >>"$log" 2>&1 &
    db_pid=$!
    wait_port "$DB_PORT"
}
# The login scenario on each persistent engine, one fresh database each.
login_on() {
    local engine=$1 url
    url=$(db_url "$engine" login) || return 1
    if [ -z "$url" ]; then
        echo "login-$engine skipped: PACKET_SERVICE_TEST_DATABASE_URL is not set"
        return 0
    fi
    db_gateway "$logs/gateway-$engine.log" "$url"
    run login -a "127.0.0.1:$DB_PORT" --server-pid "$db_pid" --metrics-addr "$DM" \
        --bots "$LOGINS" --concurrency "$LOGIN_CONC" -d "$DB_SECS" --run-id "login-$engine"
    stop_pids "$db_pid"
    db_pid=""
}
# The reconnect storm on one engine: the players are created, the gateway
# restarted on the same database, then all log in at once. The storm's
# logins wait for the password hashes longer than the default 3 s backend
# deadline and queue more calls than the default 4096: both are raised
# (60 s, 20,000; the players wait up to 90 s for their flow; a
# refused call would fail the run). The memory engine keeps no account
# across a restart: its storm creates them.
STORM_FLAGS=(--max-connections 19500 --buffer-pool-size 20000 --rpc-queue 20000
    --rpc-deadline 60000)
storm_on() {
    local engine=$1 url prefix log="$logs/gateway-storm-$1.log"
    url=$(db_url "$engine" storm) || return 1
    if [ -z "$url" ]; then
        echo "storm-$engine skipped: PACKET_SERVICE_TEST_DATABASE_URL is not set"
        return 0
    fi
    prefix="s${engine:0:1}$(date +%s | tail -c 6)"
    # The players are created and left spread over the map; a database
    # engine's gateway is then restarted (memory would forget them: its
    # storm meets the same process).
    db_gateway "$log" "$url" "${STORM_FLAGS[@]}"
    echo
    echo "--- loadgen storm --prepare ($engine)"
    if ! "$LG" storm --prepare -a "127.0.0.1:$DB_PORT" --server-pid "$db_pid" \
        --metrics-addr "$DM" --prefix "$prefix" --bots "$STORM" --run-id "storm-$engine"; then
        echo "storm-$engine: the players could not be created" >&2
        failed=$((failed + 1))
    fi
    if [ "$engine" != memory ]; then
        stop_pids "$db_pid"
        db_gateway "$log" "$url" "${STORM_FLAGS[@]}"
    fi
    run storm -a "127.0.0.1:$DB_PORT" --server-pid "$db_pid" --metrics-addr "$DM" \
        --prefix "$prefix" --bots "$STORM" --flow-timeout 90 --run-id "storm-$engine"
    stop_pids "$db_pid"
    db_pid=""
}
db_pid=""
if want login; then
    for engine in $ENGINES; do
        login_on "$engine"
    done
fi
if want fanout; then
    # The same subscribers, publishers and steps on both.
    run fanout -a "$GW" --server-pid "$gw_pid" --metrics-addr "$GM" -b "$FANOUT" -k "$CHATTERS" \
        --start-rate "$FANOUT_START" --step-factor 1.4 --steps 20 -d "$FANOUT_STEP"
    run pubsub -a "$RD" --server-pid "$redis_pid" -b "$FANOUT" -k "$CHATTERS" \
        --start-rate "$FANOUT_START" --step-factor 1.4 --steps 20 -d "$FANOUT_STEP"
fi
want walk && run walk -a "$GW" --server-pid "$gw_pid" -b "$WALK" -r "$WALK_RATE" -d "$SECS"
if want storm; then
    for engine in $STORM_ENGINES; do
        storm_on "$engine"
    done
fi
want isolation && run isolation --gateway-bin "$BIN/packet-service" -d "$SECS"

echo
echo "=== summary ($json)"
"$LG" report "$json" --svg "$svg"
if ! kill -0 "$gw_pid" 2>/dev/null; then
    echo "packet-service exited during the run; see $logs/gateway.log" >&2
    failed=$((failed + 1))
fi
exit "$failed"
