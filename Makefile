# packet-service — common tasks. `make run` and `make test` are the two that matter.

CARGO ?= cargo
# Local development defaults for `make run`: a demo account and auto-created
# accounts, so a client can log in with no other service installed. Accounts
# and characters are kept in data/packet-service.db (the DATABASE_URL default).
RUN_ARGS ?= --account admin:admin --auto-create-accounts

.PHONY: all build run test lint fmt clippy clean doc

all: build

build:
	$(CARGO) build --release --workspace --locked

run:
	$(CARGO) run --release --locked --bin packet-service -- $(RUN_ARGS) $(ARGS)

# Every test of the workspace: unit, integration (real TCP, real gRPC), tools.
test:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast && \
		$(CARGO) test --workspace --locked --doc; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

doc:
	$(CARGO) doc --workspace --no-deps

clean:
	$(CARGO) clean

-include mk/*.mk
