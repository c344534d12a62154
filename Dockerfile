# Multi-stage build: compile with the full toolchain, ship a slim runtime image.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/roadwatch

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /app roadwatch
WORKDIR /app
COPY --from=build /src/target/release/roadwatch /usr/local/bin/roadwatch
COPY config ./config
USER roadwatch
ENV ROADWATCH__METRICS__LISTEN=0.0.0.0:9898
EXPOSE 9898
ENTRYPOINT ["roadwatch", "--log-format", "json"]
CMD ["run"]
