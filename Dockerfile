# syntax=docker/dockerfile:1
# Multi-stage build: the dependencies are built in their own layer, so a source edit rebuilds
# only payoutd. The runtime image holds the binary, its config
# files and glibc, and runs as a numeric non-root user.
#
# The base is the minimum Rust version (Cargo.toml's rust-version, checked against the
# dependency graph by tests/api/deploy.rs). CI (.ci/run) builds exactly the files the build stage
# copies, in a scratch directory, with --locked.

FROM rust:1.89-bookworm AS build
WORKDIR /src
# Dependencies first (cargo-chef's idea without its image): the manifests and stub targets,
# so this layer is rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches/load migrations \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/load/main.rs \
 && cargo build --release --locked --bin payoutd \
 && rm -rf src benches
COPY src ./src
COPY migrations ./migrations
# The compile-checked queries' data: the build needs no database.
COPY .sqlx ./.sqlx
COPY benches ./benches
# The defaults are compiled into the binary (include_str! of config/default.toml).
COPY config ./config
RUN touch src/main.rs src/lib.rs build.rs && cargo build --release --locked --bin payoutd

# distroless/cc: glibc and nothing else (TLS roots are compiled in via webpki-roots).
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/release/payoutd /usr/local/bin/payoutd
COPY config ./config
ENV PAYOUTD_ENV=production \
    PAYOUTD_LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
# 65532 is distroless's "nonroot"; numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/payoutd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/payoutd"]
CMD ["serve"]
