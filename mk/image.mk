# Container image (Dockerfile): `make image` builds it with the OCI labels
# filled in — the crate version, the git revision (also the build_info
# revision: the build context has no .git) and the build time.
#
#   make image                     packet-service:<version> and :latest
#   make image IMAGE=registry.example/packet-service

IMAGE ?= packet-service
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)

.PHONY: image

image:
	docker build -t $(IMAGE):$(IMAGE_VERSION) -t $(IMAGE):latest \
		--build-arg VERSION=$(IMAGE_VERSION) \
		--build-arg REVISION=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		.
