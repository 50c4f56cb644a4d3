# Fuzzing (docs/architecture.md §13.12): cargo-fuzz targets in fuzz/, outside
# the workspace.
#
#   make fuzz                      every target for FUZZ_SECONDS (default 60) each
#   make fuzz FUZZ_TARGETS=session FUZZ_SECONDS=600
#   make fuzz FUZZ_SANITIZER=address   ASan on stable (RUSTC_BOOTSTRAP=1 is set for it)
#
# Targets: frame_rose, frame_plain (framing loop as the reactor runs it, split
# feeds, re-seal), frame_seeded (the irose codec on seeded tables and trial
# decoding of a first packet, docs/protocol.md §10.1 and §10.6.2),
# first_packet (the gateway's first-packet rule under irose and auto),
# packets (every typed decoder, osIROSE and irose, encode/decode round trip),
# session (the state machine under arbitrary inputs, every dialect,
# invariants of src/conn/check.rs). fuzz/seeds/<target>/ holds the committed
# seeds (the docs/protocol.md §7 vectors in both codecs; for frame_seeded,
# the docs/protocol.md §10.3 vectors); what libFuzzer finds goes to the
# ignored fuzz/corpus/<target>/, crashes to fuzz/artifacts/<target>/ and
# each run's output to fuzz/logs/<target>.log. Replay a crash with
# `cd fuzz && cargo fuzz run -s none TARGET artifacts/TARGET/crash-...`.

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= frame_rose frame_plain frame_seeded first_packet packets session
FUZZ_SANITIZER ?= none
FUZZ_ARGS ?=
FUZZ_ENV = $(if $(filter none,$(FUZZ_SANITIZER)),,RUSTC_BOOTSTRAP=1)

.PHONY: fuzz fuzz-build

fuzz-build:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && $(FUZZ_ENV) $(CARGO) fuzz build -s $(FUZZ_SANITIZER)

fuzz: fuzz-build
	@cd fuzz && mkdir -p logs && status=0; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t seeds/$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		if ! $(FUZZ_ENV) $(CARGO) fuzz run -s $(FUZZ_SANITIZER) $$t corpus/$$t seeds/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_ARGS) \
			>logs/$$t.log 2>&1; then \
			status=1; tail -n 60 logs/$$t.log; \
		fi; \
	done; \
	echo "fuzz: executions per target ($(FUZZ_SECONDS) s each)"; \
	for t in $(FUZZ_TARGETS); do \
		printf '  %-12s %s\n' $$t "$$(grep -h '^Done' logs/$$t.log || echo 'FAILED: see fuzz/logs/'$$t.log)"; \
	done; \
	exit $$status
