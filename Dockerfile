# Homeward's container image: built in a full Rust image, run from a small Debian one as a
# non-root user. `docker build -t homeward .` then `docker run homeward serve` (see compose.yaml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin homeward \
    && cp target/release/homeward /usr/local/bin/homeward

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/homeward --create-home homeward
COPY --from=build /usr/local/bin/homeward /usr/local/bin/homeward
COPY LICENSE /usr/share/doc/homeward/LICENSE
USER homeward
WORKDIR /var/lib/homeward
ENV HOMEWARD_LISTEN=0.0.0.0:8080 \
    HOMEWARD_OUTBOX=/var/lib/homeward/outbox
EXPOSE 8080
ENTRYPOINT ["homeward"]
CMD ["serve"]
