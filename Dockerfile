# syntax=docker/dockerfile:1
# Multi-stage build: compile with the Rust toolchain the project pins (rust-version 1.94+),
# ship a small Debian runtime as a non-root user. No build step downloads anything but crates.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs rustfmt.toml clippy.toml ./
COPY .cargo .cargo
COPY simulator simulator
COPY src src
COPY migrations migrations
COPY demo demo
COPY openapi openapi
COPY tests tests
# Production images carry no Azure simulator (no fake Entra inside): the `simulator` feature is
# off unless asked for (docker-compose.yml asks for it, for the demo).
ARG CARGO_FEATURES=""
RUN cargo build --release --locked --bin acr-attach --no-default-features ${CARGO_FEATURES:+--features "$CARGO_FEATURES"}

FROM debian:bookworm-slim AS runtime
# ca-certificates: reqwest's rustls verifier uses the OS trust store for ARM, Graph and Entra.
# DL3008 (pin apt versions): unpinned on purpose; the newest root store of the pinned Debian
# release is the one wanted, and Debian drops superseded versions, so a pin would break builds.
# /var/lib/acr-attach/{state,ca}: writable by the service user, for `acr-attach simulator
# --state-dir/--ca-out` in the demo image (docker-compose.yml mounts named volumes there, and a
# new named volume takes the directory's owner).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin acr-attach \
    && install -d -o 10001 -g 10001 /var/lib/acr-attach/state /var/lib/acr-attach/ca
COPY --from=build /src/target/release/acr-attach /usr/local/bin/acr-attach
# The demo world and policy, for the simulator in a demo image (docker-compose.yml).
COPY --from=build /src/demo /opt/acr-attach/demo
WORKDIR /opt/acr-attach
USER 10001:10001
ENV ACR_ATTACH_LISTEN=0.0.0.0:8080 \
    ACR_ATTACH_LOG_FORMAT=json
EXPOSE 8080
# bash, not sh: /dev/tcp is a bash feature (Debian's sh is dash).
HEALTHCHECK --interval=10s --timeout=3s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["acr-attach"]
CMD ["serve"]
