# regsync's image for people with Docker or Podman:
#   docker build -t regsync .
#   docker run --rm -v "$PWD/regsync.yml:/regsync.yml:ro" regsync once -c /regsync.yml
# It is the image scripts/image.sh builds without a daemon (same files, user,
# entrypoint and labels); that script is what this repository tests.

FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# A build context without .git reports these instead (see runtime/build.rs).
ARG REGSYNC_VCS_TAG=
ARG REGSYNC_VCS_REF=
ARG REGSYNC_VCS_COMMIT=
ARG REGSYNC_VCS_STATE=
ARG REGSYNC_VCS_DATE=
RUN cargo build --locked --release --target x86_64-unknown-linux-musl --bin regsync \
    && strip target/x86_64-unknown-linux-musl/release/regsync \
    && scripts/image.sh rootfs target/x86_64-unknown-linux-musl/release/regsync /rootfs \
    && chown -R 65532:65532 /rootfs/home/appuser

FROM scratch
COPY --from=build /rootfs/ /
ARG REGSYNC_VCS_TAG=
ARG REGSYNC_VCS_COMMIT=
LABEL org.opencontainers.image.title="regsync" \
      org.opencontainers.image.description="Mirror container images between registries (regsync, in Rust)" \
      org.opencontainers.image.source="https://example.invalid/regsync-rs" \
      org.opencontainers.image.version="${REGSYNC_VCS_TAG}" \
      org.opencontainers.image.revision="${REGSYNC_VCS_COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/usr/local/bin \
    HOME=/home/appuser \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/appuser
ENTRYPOINT ["regsync"]
