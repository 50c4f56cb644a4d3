# syntax=docker/dockerfile:1
#
# packet-service container image (BuildKit).
#
#   docker build -t packet-service .
#   docker run --rm -p 29000:29000 -p 9102:9102 packet-service
#
# Settings are the environment variables listed in deploy/packet-service.env
# (docker run -e NAME=value, or --env-file). The same image runs the
# standalone backend: docker run packet-service backend --backend-listen
# 0.0.0.0:29100 --database postgres://... (and -p 29100:29100). There is no systemd in the
# container: the sd-notify calls are no-ops. For liveness/readiness probe
# GET /healthz on port 9102 (the runtime image has no curl, so use the
# orchestrator's HTTP probe rather than a HEALTHCHECK command).

# --- build -------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src

# The whole workspace (filtered by .dockerignore): Cargo.toml may name other
# members and targets, and build.rs compiles proto/ with protox (pure Rust,
# no protoc needed).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin packet-service \
    && install -D -m 0755 target/release/packet-service /out/packet-service

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: for https:// backend URLs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 packet-service \
    && useradd --system --uid 10001 --gid packet-service --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin packet-service

COPY --from=build /out/packet-service /usr/local/bin/packet-service

# The default database (DATABASE_URL=sqlite:data/packet-service.db) is
# relative to the working directory: keep it on a volume.
RUN install -d -o 10001 -g 10001 -m 0750 /var/lib/packet-service
WORKDIR /var/lib/packet-service
VOLUME /var/lib/packet-service

# Numeric ids so runtimes that enforce runAsNonRoot can verify them.
USER 10001:10001
# 29000: game clients. 9102: /metrics and /healthz (publish it to the
# monitoring network only).
# 29100: the standalone backend's gRPC port, when the image runs that role
# (`backend --backend-listen 0.0.0.0:29100`).
EXPOSE 29000 9102 29100
# SIGTERM starts the graceful shutdown (SHUTDOWN_GRACE_SECS); give the
# container a stop timeout above it (docker stop -t, terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/packet-service"]
