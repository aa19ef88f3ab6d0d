# syntax=docker/dockerfile:1
# cognitive-operator image: docker build -t ghcr.io/cognitive-operator/cognitive-operator:0.1.0 .

# ---- build: release binary from the locked dependency set
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what `cargo build` reads: benches/ because Cargo.toml declares bench targets,
# tools/arm-emulator because cargo loads every workspace member's manifest (the emulator is not
# compiled: --no-default-features leaves it and the `demo`/`emulator` subcommands out of the
# image), and deploy/examples/ which the demo embeds (include_str!) in builds that have it.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tools/arm-emulator ./tools/arm-emulator
COPY deploy/examples ./deploy/examples
# Cache mounts keep the crate registry and compiled dependencies between builds; the binary is
# copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin cognitive-operator \
    && install -D -m 0755 target/release/cognitive-operator /out/cognitive-operator

# ---- run: glibc + CA certificates, no shell, non-root
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="cognitive-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/cognitive-operator /cognitive-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/cognitive-operator"]
CMD ["run"]
