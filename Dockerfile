# wisegate container image: a static-ish release binary on distroless cc (glibc, CA
# certificates, no shell), running as the distroless non-root user.
#
#   docker build -t wisegate .
#   docker run --read-only -v "$PWD/conf:/etc/wisegate:ro" -v wisegate-state:/var/lib/wisegate wisegate
#
# The root filesystem can be read-only: wisegate writes only its token store
# (oauth.token_store), which belongs on a mounted volume.

# The builder's glibc (Debian 12) matches the runtime's.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# Dependencies first, against stub sources: this layer is rebuilt only when the
# manifests or the lock file change, not on every source edit. fake-wise (the test
# double, a dev-dependency) is a workspace member: cargo reads its manifest, and a stub
# library is all it needs, since nothing of it is built here. Cargo.toml also names the
# benchmark's targets ([[bench]] hot_path and allocations, [[example]] bench-fake-wise):
# cargo refuses a manifest whose named targets are missing, so they get empty stubs too,
# kept for the build below (they are never compiled; .dockerignore keeps benches/ and
# bench/ out).
COPY Cargo.toml Cargo.lock ./
COPY fake-wise/Cargo.toml fake-wise/Cargo.toml
RUN mkdir -p src fake-wise/src benches bench \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs fake-wise/src/lib.rs benches/hot_path.rs benches/allocations.rs bench/fake_wise.rs \
    && cargo build --release --locked --bin wisegate \
    && rm -rf src

# The real sources; touched so that cargo rebuilds over the stubs' artifacts whatever
# mtimes the build context carried.
COPY src src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin wisegate \
    && cp target/release/wisegate /wisegate

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="wisegate" \
      org.opencontainers.image.description="Sidecar proxy: plain HTTP in, OAuth 2.0 bearer + mutual TLS out to Wise" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /wisegate /wisegate
# distroless's "nonroot" user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# 8080: the app-facing listener; 9901: admin (/healthz, /readyz, /metrics).
EXPOSE 8080 9901
ENTRYPOINT ["/wisegate"]
CMD ["run", "--config", "/etc/wisegate/wisegate.toml"]
