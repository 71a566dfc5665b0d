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
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin acr-attach
COPY --from=build /src/target/release/acr-attach /usr/local/bin/acr-attach
# The demo world and policy, for `serve --simulator` in a demo image (docker-compose.yml).
COPY --from=build /src/demo /opt/acr-attach/demo
WORKDIR /opt/acr-attach
USER 10001:10001
ENV ACR_ATTACH_LISTEN=0.0.0.0:8080 \
    ACR_ATTACH_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["acr-attach"]
CMD ["serve"]
