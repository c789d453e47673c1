# syntax=docker/dockerfile:1
# Multi-stage build: a full Rust toolchain builds payoutd; the runtime image holds only the
# binary, its config files and glibc, and runs as a non-root user.

FROM rust:1.85-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src migrations \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin payoutd

# distroless/cc: glibc and nothing else (TLS roots are compiled in via webpki-roots).
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/release/payoutd /usr/local/bin/payoutd
COPY config ./config
ENV PAYOUTD_ENV=production \
    PAYOUTD_LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/payoutd"]
CMD ["serve"]
