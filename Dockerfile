# syntax=docker/dockerfile:1
# Patto: ONE image with every binary (the seven services, the gateway, the all-in-one launcher);
# each Kubernetes Deployment picks its binary with `command:`. Why one image: README, "Deploying".
#
#   docker build -t patto:0.1.0 .
#   docker run --rm -p 8080:8080 patto:0.1.0                                 # all-in-one, demo data
#   docker run --rm -p 50053:50053 patto:0.1.0 /usr/local/bin/patto-culture  # one service on SQLite
#
# Stages:
#   planner  reduces the workspace to its manifests, Cargo.lock and empty targets: a skeleton that
#            only changes when a dependency or the crate layout changes;
#   builder  compiles every dependency against the skeleton (a cached layer of its own), then the
#            real sources;
#   runtime  distroless (glibc, no shell, no package manager) with the binaries alone, as uid 65532.

# The builder's Debian (bookworm) matches the runtime's (debian12), so the binaries' glibc does.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
# A release pins the digest too: gcr.io/distroless/cc-debian12:nonroot@sha256:<digest>
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS planner
WORKDIR /src
COPY . .
# Every Cargo.toml, plus an empty stand-in for each target root that exists (lib.rs, main.rs,
# build.rs, src/bin/*.rs, explicit `path = "…rs"`). Timestamps are zeroed so an unchanged skeleton
# gives an unchanged layer.
RUN set -eu; \
    find . -name Cargo.toml -not -path './target/*' | while read -r manifest; do \
      dir="${manifest%/Cargo.toml}"; \
      mkdir -p "/skeleton/$dir"; \
      cp "$manifest" "/skeleton/$manifest"; \
      for target in "$dir/build.rs" "$dir/src/lib.rs" "$dir/src/main.rs" "$dir"/src/bin/*.rs \
          $(sed -n 's|^path *= *"\([^"]*\.rs\)".*|'"$dir"'/\1|p' "$manifest"); do \
        [ -f "$target" ] || continue; \
        mkdir -p "/skeleton/${target%/*}"; \
        case "$target" in \
          */lib.rs) : > "/skeleton/$target" ;; \
          *) echo 'fn main() {}' > "/skeleton/$target" ;; \
        esac; \
      done; \
    done; \
    cp Cargo.lock /skeleton/; \
    find /skeleton -exec touch -h -d @0 {} +

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
# The same selection in both builds, so the dependency layer is reused as is (features unify the
# same way). patto-bench is a benchmark, not shipped.
ARG CARGO_BUILD_ARGS="--release --locked --workspace --exclude patto-bench --bins"

# 1. Dependencies: rebuilt only when the skeleton changes.
COPY --from=planner /skeleton/ ./
RUN cargo build ${CARGO_BUILD_ARGS}

# 2. The real sources. They are touched so that none looks older than the stand-ins built above
#    (cargo compares timestamps; a checkout can carry old ones).
COPY . .
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
 && cargo build ${CARGO_BUILD_ARGS}

# What the image ships; a missing binary fails the build here rather than a pod at start.
ARG BINARIES="patto patto-gateway patto-social patto-building patto-culture patto-employment patto-taxes patto-environment patto-publicworks"
RUN set -eu; mkdir -p /out/bin; \
    for bin in ${BINARIES}; do \
      if [ ! -x "target/release/$bin" ]; then echo "binary $bin was not built" >&2; exit 1; fi; \
      cp "target/release/$bin" /out/bin/; \
    done

FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="patto" \
      org.opencontainers.image.description="Patto: seven gRPC services and the GraphQL gateway of the comuni of the Città Metropolitana di Palermo" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="EUPL-1.2"
COPY --from=builder /out/bin/ /usr/local/bin/
# distroless's "nonroot" user; the Kubernetes manifests set the same uid and runAsNonRoot.
USER 65532:65532
WORKDIR /home/nonroot
# For the all-in-one launcher only (the services and the gateway bind 0.0.0.0 through their own
# GRPC_ADDR / GATEWAY_ADDR); its SQLite files go to ./data, writable by the nonroot user.
ENV PATTO_BIND=0.0.0.0
EXPOSE 8080 50051 50052 50053 50054 50055 50056 50057
CMD ["/usr/local/bin/patto"]
