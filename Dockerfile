# syntax=docker/dockerfile:1
#
# packet-service container image (BuildKit).
#
#   make image              # docker build with the version, revision and date labels
#   docker run --rm -p 29000:29000 -p 9102:9102 packet-service
#
# Settings are the environment variables listed in deploy/packet-service.env
# (docker run -e NAME=value, or --env-file). There is no systemd in the
# container: the sd-notify calls are no-ops. The HEALTHCHECK runs the
# binary's own `healthcheck` subcommand (the image has no curl), which asks
# /healthz on the port the environment gives (PACKET_METRICS_PORT); settings
# given as flags after the image name are not seen by it.
#
# The same image runs the standalone backend:
#   docker run --no-healthcheck -p 29100:29100 packet-service \
#     backend --backend-listen 0.0.0.0:29100 --database postgres://...
# (the backend role serves no /healthz, hence --no-healthcheck).
#
# Base images are pinned to exact tags. Pin them by digest as well
# (`rust:1.95.0-bookworm@sha256:…`) when building with registry access:
# `docker buildx imagetools inspect rust:1.95.0-bookworm` prints it.

# --- build -------------------------------------------------------------------
FROM rust:1.95.0-bookworm AS build
WORKDIR /src

# The build context has no .git (.dockerignore): the revision for the
# build_info metric comes from here (make image passes it).
ARG REVISION=unknown

# The whole workspace (filtered by .dockerignore): Cargo.toml may name other
# members and targets, and build.rs compiles proto/ with protox (pure Rust,
# no protoc needed).
COPY . .
# Stripped, without the line tables `[profile.release] debug = 1` keeps for
# profiling on a host: nothing profiles inside the image, and the binary is
# a fraction of the size.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    PACKET_SERVICE_REVISION="$REVISION" \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --bin packet-service \
    && install -D -m 0755 target/release/packet-service /out/packet-service

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-20250520-slim AS runtime

ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="packet-service" \
      org.opencontainers.image.description="Client-facing gateway for ROSE Online (osIROSE) game clients" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.created="$CREATED" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-20250520-slim"

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
# Unhealthy after three failed checks; /healthz fails while starting, while
# stopping and when the reactor has not completed a pass for 10 s. The
# subcommand gives up after 2 s, inside the 5 s Docker allows.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/packet-service", "healthcheck"]
# SIGTERM starts the graceful shutdown (SHUTDOWN_GRACE_SECS); give the
# container a stop timeout above it (docker stop -t, terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/packet-service"]
