# Builds the release binary and runs it on a slim image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p dirsync-api -p dirsync-google-emulator

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/dirsync /usr/local/bin/dirsync
COPY --from=build /src/target/release/google-emulator /usr/local/bin/google-emulator
ENV DIRSYNC_LISTEN=0.0.0.0:8462 DIRSYNC_DATA_DIR=/var/lib/dirsync
VOLUME /var/lib/dirsync
EXPOSE 8462
ENTRYPOINT ["dirsync"]
CMD ["serve"]
