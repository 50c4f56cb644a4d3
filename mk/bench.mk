# Benchmark suite, included from the top-level Makefile.
#
#   make bench                       every scenario vs Redis; results in bench/results/
#   make bench BENCH_SECS=5          shorter measured phases
#   make bench BENCH_IDLE=5000       fewer idle connections
#   make bench BENCH_ENGINES=sqlite  the per-engine login runs on SQLite only
#   make bench BENCH_SCENARIOS="echo reuseport"   one gateway vs two sharing a port
#   make bench BENCH_SCENARIOS="fanout storm" BENCH_STORM_ENGINES=sqlite
#
# Installs redis-server when missing (the baseline), builds the release
# binaries, then runs tools/loadgen/bench.sh, which starts packet-service and
# redis-server on loopback, runs the scenarios, writes
# bench/results/<date>-<host>.json and .svg and stops both servers (also on
# failure). Loopback only; every scenario is bounded in time.

BENCH_DIR ?= bench/results
BENCH_PORT ?= 29500
BENCH_REDIS_PORT ?= 29501
# The two gateways sharing one port (--reuse-port), measured against one.
BENCH_REUSE_PORT ?= 29503
# Which scenarios run (a subset for a quick look: BENCH_SCENARIOS="echo reuseport").
BENCH_SCENARIOS ?= echo redis reuseport idle login fanout walk storm isolation
BENCH_CONNS ?= 50
BENCH_SECS ?= 10
BENCH_IDLE ?= 15000
BENCH_LOGINS ?= 20000
BENCH_FANOUT ?= 1000
BENCH_LOGIN_CONCURRENCY ?= 50
# Fan-out at saturation: bots on one map = Redis subscribers, chatters =
# publishers; the first step's offered deliveries/s and each step's seconds.
BENCH_CHATTERS ?= 50
BENCH_FANOUT_START ?= 50000
BENCH_FANOUT_STEP ?= 3
# The reconnect storm: players (capped by the open-files limit) and engines.
BENCH_STORM ?= 10000
BENCH_STORM_ENGINES ?= memory sqlite postgres
# Walking bots: how many, and moves/s each.
BENCH_WALK ?= 1000
BENCH_WALK_RATE ?= 1
BENCH_BIN_DIR := $(or $(CARGO_TARGET_DIR),target)/release

.PHONY: bench bench-deps

bench-deps:
	@command -v redis-server >/dev/null 2>&1 || \
		(apt-get update && apt-get install -y redis-server)

# The login runs on each persistent engine need a PostgreSQL: the one
# .ci/postgres.sh installs and starts on loopback (BENCH_ENGINES=sqlite skips it).
BENCH_ENGINES ?= sqlite postgres
BENCH_DB_SECS ?= 30

bench: bench-deps
	$(CARGO) build --release --locked --workspace --bins
	case " $(BENCH_ENGINES) $(BENCH_STORM_ENGINES) " in *" postgres "*) . .ci/postgres.sh ;; esac; \
	BENCH_ENGINES="$(BENCH_ENGINES)" BENCH_DB_SECS=$(BENCH_DB_SECS) \
	BENCH_BIN_DIR=$(BENCH_BIN_DIR) BENCH_DIR=$(BENCH_DIR) \
	BENCH_PORT=$(BENCH_PORT) BENCH_REDIS_PORT=$(BENCH_REDIS_PORT) \
	BENCH_REUSE_PORT=$(BENCH_REUSE_PORT) BENCH_SCENARIOS="$(BENCH_SCENARIOS)" \
	BENCH_CONNS=$(BENCH_CONNS) BENCH_SECS=$(BENCH_SECS) BENCH_IDLE=$(BENCH_IDLE) \
	BENCH_LOGINS=$(BENCH_LOGINS) BENCH_LOGIN_CONCURRENCY=$(BENCH_LOGIN_CONCURRENCY) BENCH_FANOUT=$(BENCH_FANOUT) \
	BENCH_CHATTERS=$(BENCH_CHATTERS) BENCH_FANOUT_START=$(BENCH_FANOUT_START) \
	BENCH_FANOUT_STEP=$(BENCH_FANOUT_STEP) BENCH_STORM=$(BENCH_STORM) \
	BENCH_STORM_ENGINES="$(BENCH_STORM_ENGINES)" \
	BENCH_WALK=$(BENCH_WALK) BENCH_WALK_RATE=$(BENCH_WALK_RATE) \
	bash tools/loadgen/bench.sh
