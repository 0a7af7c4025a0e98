# syntax=docker/dockerfile:1
# The operator image. Build with BuildKit (the default builder of current
# Docker), tagged as the Helm chart expects (repository
# generic-secrets-operator, tag = the chart's appVersion):
#
#   docker build -t generic-secrets-operator:0.1.0 .
#
# The binary links glibc dynamically and uses rustls (no OpenSSL): a Debian 12
# builder and distroless cc-debian12 (glibc, libgcc, CA certificates) match.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Only what the build reads. benches/ is needed: Cargo.toml declares [[bench]]
# targets, and cargo refuses a manifest whose bench files are missing. tests/
# is not (its [[test]] target has an explicit path, only checked when built).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# The crate registry and target/ are cache mounts: a rebuild after a source
# change recompiles only the crate. The binary is copied out of the mount,
# which does not outlive this step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --profile dist --locked --bin generic-secrets-operator \
    && cp target/dist/generic-secrets-operator /generic-secrets-operator

# Nothing in the image is written at run time (logs go to stdout), so it runs
# with a read-only root filesystem.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="generic-secrets-operator" \
      org.opencontainers.image.description="Kubernetes operator that models SAP AI Core generic secrets and replicates them into resource-group namespaces" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /generic-secrets-operator /generic-secrets-operator
# glibc gives each thread that allocates its own malloc arena and keeps
# their freed memory, and after a big buffer is freed (a list response) it
# raises its mmap threshold, so the next big buffers stay in the heap: after
# the initial lists and a fan-out's burst that is ~10 MiB of RSS at 1000
# resource groups. Two arenas serve the two tokio workers; a fixed 128 KiB
# threshold returns big buffers on free (docs/benchmarks.md, section 6).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
# The nonroot user of distroless, numeric so that runAsNonRoot can verify it.
USER 65532:65532
# /healthz, /readyz and /metrics; the REST API (run --rest-api) uses 8000.
EXPOSE 8080
ENTRYPOINT ["/generic-secrets-operator"]
CMD ["run"]
