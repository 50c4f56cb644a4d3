# Soak test, included from the top-level Makefile.
#
#   make soak                        15,000 connections, mixed traffic, 300 s
#   make soak SOAK_SECONDS=60        a short run
#   make soak SOAK_CONNECTIONS=5000 SOAK_INTERVAL=5
#
# Builds the release binaries, then runs tools/loadgen/soak.sh, which starts
# packet-service on loopback, holds the connections with idle keepalives,
# STRESS echo, login churn and chat on one map, samples the gateway's RSS,
# descriptors and buffer pool every SOAK_INTERVAL seconds into
# bench/results/soak-<date>-<host>.json, prints a verdict (flat or not; the
# exit status follows it) and stops the gateway (also on failure).

SOAK_DIR ?= bench/results
SOAK_PORT ?= 29510
SOAK_METRICS_PORT ?= 29511
SOAK_CONNECTIONS ?= 15000
SOAK_SECONDS ?= 300
SOAK_INTERVAL ?= 10
SOAK_IDLE_TIMEOUT ?= 30
SOAK_ALIVE ?= 10
SOAK_POOL ?= 4096
SOAK_MAX_CONNECTIONS ?= 20000
SOAK_ARGS ?=
SOAK_BIN_DIR := $(or $(CARGO_TARGET_DIR),target)/release

.PHONY: soak

soak:
	$(CARGO) build --release --locked --workspace --bins
	SOAK_BIN_DIR=$(SOAK_BIN_DIR) SOAK_DIR=$(SOAK_DIR) \
	SOAK_PORT=$(SOAK_PORT) SOAK_METRICS_PORT=$(SOAK_METRICS_PORT) \
	SOAK_CONNECTIONS=$(SOAK_CONNECTIONS) SOAK_SECONDS=$(SOAK_SECONDS) \
	SOAK_INTERVAL=$(SOAK_INTERVAL) SOAK_IDLE_TIMEOUT=$(SOAK_IDLE_TIMEOUT) \
	SOAK_ALIVE=$(SOAK_ALIVE) SOAK_POOL=$(SOAK_POOL) SOAK_MAX_CONNECTIONS=$(SOAK_MAX_CONNECTIONS) \
	SOAK_ARGS="$(SOAK_ARGS)" \
	bash tools/loadgen/soak.sh
