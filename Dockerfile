# syntax=docker/dockerfile:1
# The production image is the last stage (`docker build .`); the Google emulator, for the
# compose file's `demo` profile only, is the `google-emulator` target and never ships in it.

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# Dependencies first, from the manifests alone, so that a change to the sources rebuilds only
# the workspace's own crates. Every workspace member's manifest and target roots must exist for
# cargo to load the workspace: stubs stand in for them (add a line here with a new crate). The
# stubs' own artefacts are removed afterwards, so that the real sources are compiled below.
FROM ${RUST_IMAGE} AS deps
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY api/Cargo.toml api/
COPY core/Cargo.toml core/
COPY entity/Cargo.toml entity/
COPY migration/Cargo.toml migration/
COPY tests/Cargo.toml tests/
COPY tests/google-emulator/Cargo.toml tests/google-emulator/
RUN set -eu; \
    for f in api/src/lib.rs api/src/main.rs core/src/lib.rs entity/src/lib.rs \
             migration/src/lib.rs tests/support/lib.rs tests/bin/server.rs tests/bench/main.rs \
             tests/e2e/main.rs tests/google-emulator/src/lib.rs tests/google-emulator/src/main.rs; do \
      mkdir -p "$(dirname "$f")"; echo 'fn main() {}' > "$f"; \
    done; \
    cargo build --release --locked -p dirsync-api; \
    rm -rf target/release/.fingerprint/dirsync-* target/release/deps/dirsync* \
           target/release/deps/libdirsync* target/release/dirsync*

FROM deps AS build
COPY . .
RUN cargo build --release --locked -p dirsync-api

# `docker compose --profile demo` builds this target: a Google of your own for trying dirsync.
FROM deps AS emulator-build
COPY . .
RUN cargo build --release --locked -p dirsync-google-emulator

FROM ${RUNTIME_IMAGE} AS google-emulator
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --home-dir /demo --create-home emulator
COPY --from=emulator-build /src/target/release/google-emulator /usr/local/bin/google-emulator
USER emulator
EXPOSE 8463
ENTRYPOINT ["google-emulator"]

# The production image: the dirsync binary on a slim Debian, run as an unprivileged user.
FROM ${RUNTIME_IMAGE} AS dirsync
# ca-certificates: the operating system's trust store, which dirsync trusts besides its built-in
# roots (add an internal CA to it, or name one with DIRSYNC_CA_FILE).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/dirsync --shell /usr/sbin/nologin dirsync \
    && install -d -o dirsync -g dirsync -m 0700 /var/lib/dirsync
COPY --from=build /src/target/release/dirsync /usr/local/bin/dirsync
ENV DIRSYNC_LISTEN=0.0.0.0:8462 DIRSYNC_DATA_DIR=/var/lib/dirsync
VOLUME /var/lib/dirsync
USER dirsync
EXPOSE 8462
# `/ready`: the process is up, the database reachable and the stored settings readable.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["dirsync", "healthcheck"]
ENTRYPOINT ["dirsync"]
CMD ["serve"]
