# syntax=docker/dockerfile:1
# roadwatch image: `run` by default; docker-compose.yml also runs `simulate` from it.
# Multi-stage: compile with the full toolchain, ship a slim runtime with only the binary,
# the default configuration and the shipped road network.

FROM rust:1-bookworm AS build
# librdkafka is compiled from source by rdkafka-sys: cmake, OpenSSL and zlib headers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libssl-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the registry and target directory between builds, so a
# source change does not recompile librdkafka and every dependency.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin roadwatch \
    && install -D -m 0755 target/release/roadwatch /out/roadwatch \
    && strip /out/roadwatch

FROM debian:bookworm-slim AS runtime
# libssl3 and zlib1g: the dynamic libraries librdkafka links; bash: the compose healthcheck.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g bash \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin roadwatch
WORKDIR /app
COPY --from=build /out/roadwatch /usr/local/bin/roadwatch
# roads.file defaults to config/roads/bijie.geojson, relative to this directory.
COPY config ./config
USER roadwatch
ENV ROADWATCH__METRICS__LISTEN=0.0.0.0:9898
EXPOSE 9898
ENTRYPOINT ["roadwatch", "--log-format", "json"]
CMD ["run"]
