#!/usr/bin/env bash
# Builds regsync's container image without a daemon and without downloading a
# base image or a toolchain: a static musl binary on an empty (`scratch`) root
# with CA certificates, a non-root user (UID 65532) and its home, written by
# umoci into an OCI image layout tagged with the version.
#
#   scripts/image.sh                 # release build -> target/image/oci:<version>
#   scripts/image.sh rootfs BIN DIR  # only lay out the root filesystem (the Dockerfile uses this)
#
# Environment: REGSYNC_IMAGE_PROFILE (cargo profile, default release),
# REGSYNC_IMAGE_OUT (default target/image); REGSYNC_VCS_* as in runtime/build.rs
# for builds without .git. Push the result with regsync itself, e.g. a step
# `source: ocidir://target/image/oci:v0.1.0`, or `skopeo copy oci:... docker://...`.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly APP_UID=65532
readonly TARGET=x86_64-unknown-linux-musl

# The image's files, owned by whoever runs this; `pack` sets the owners.
rootfs() {
    local bin=$1 root=$2
    install -D -m 0755 "$bin" "$root/usr/local/bin/regsync"
    # regsync's own image runs /regsync; keep that path working.
    ln -s usr/local/bin/regsync "$root/regsync"
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    mkdir -p "$root/etc"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nappuser:x:%d:%d:appuser:/home/appuser:/sbin/nologin\n' \
        "$APP_UID" "$APP_UID" >"$root/etc/passwd"
    printf 'root:x:0:\nappuser:x:%d:\n' "$APP_UID" >"$root/etc/group"
    # Where regsync's image keeps the Docker config, so existing mounts work.
    install -d -m 0755 "$root/home/appuser/.docker"
    printf '{}\n' >"$root/home/appuser/.docker/config.json"
    chmod 0644 "$root/home/appuser/.docker/config.json"
    # The default plugin cache ($HOME/.cache/regsync/plugins) must be writable.
    install -d -m 0755 "$root/home/appuser/.cache/regsync/plugins"
    install -d -m 1777 "$root/tmp"
}

# One layer: everything root-owned except the user's home.
pack_layer() {
    local root=$1 tarball=$2 mtime=$3
    local common=(--sort=name --numeric-owner --mtime="@$mtime" -C "$root")
    tar "${common[@]}" --owner=0 --group=0 --exclude=./home/appuser -cf "$tarball" .
    tar "${common[@]}" --owner="$APP_UID" --group="$APP_UID" -rf "$tarball" ./home/appuser
}

if [ "${1:-}" = rootfs ]; then
    rootfs "$2" "$3"
    exit 0
fi

for tool in umoci musl-gcc tar; do
    command -v "$tool" >/dev/null || { echo "scripts/image.sh needs $tool (Debian: umoci, musl-tools)" >&2; exit 1; }
done
# The target is a download rustup makes on its own, as scripts/test.sh does.
if ! rustup target list --installed | grep -qx "$TARGET"; then
    echo "scripts/image.sh: adding the Rust target $TARGET" >&2
    rustup target add "$TARGET"
fi

profile=${REGSYNC_IMAGE_PROFILE:-release}
out=${REGSYNC_IMAGE_OUT:-target/image}
cargo build --locked --profile "$profile" --target "$TARGET" --bin regsync
case $profile in dev | test) dir=debug ;; *) dir=$profile ;; esac
bin=target/$TARGET/$dir/regsync

version=$("$bin" version --format '{{.VCSTag}}')
commit=$("$bin" version --format '{{.VCSCommit}}')
date=$("$bin" version --format '{{.VCSDate}}')
# Reproducible file times: the commit's date when known.
mtime=$(date -d "${date:-@0}" +%s 2>/dev/null || echo 0)
created=$(date -u -d "@$mtime" +%Y-%m-%dT%H:%M:%SZ)
repo=$(sed -n 's/^repository *= *"\(.*\)"/\1/p' Cargo.toml | head -1)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
if [ "$profile" = release ] && command -v strip >/dev/null; then
    # Symbols only name functions in backtraces: 8 MB of 40 (as regsync's -s -w).
    strip -o "$work/regsync" "$bin"
    bin=$work/regsync
fi
rootfs "$bin" "$work/root"
pack_layer "$work/root" "$work/layer.tar" "$mtime"

rm -rf "$out/oci"
mkdir -p "$out"
umoci init --layout "$out/oci"
umoci new --image "$out/oci:$version"
umoci raw add-layer --image "$out/oci:$version" --history.created "$created" \
    --history.created_by "scripts/image.sh" "$work/layer.tar"
label=(
    --config.label "org.opencontainers.image.title=regsync"
    --config.label "org.opencontainers.image.description=Mirror container images between registries (regsync, in Rust)"
    --config.label "org.opencontainers.image.source=$repo"
    --config.label "org.opencontainers.image.version=$version"
    --config.label "org.opencontainers.image.revision=$commit"
    --config.label "org.opencontainers.image.licenses=Apache-2.0"
)
umoci config --image "$out/oci:$version" --created "$created" --history.created "$created" \
    --config.user "$APP_UID:$APP_UID" \
    --config.entrypoint regsync \
    --config.env PATH=/usr/local/bin \
    --config.env HOME=/home/appuser \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.workingdir /home/appuser \
    "${label[@]}"
# Drop the intermediate manifests and configs umoci leaves behind.
umoci gc --layout "$out/oci"
size=$(du -sb "$out/oci/blobs" | cut -f1)
echo "image: $out/oci:$version ($size bytes of blobs; binary $(stat -c %s "$bin") bytes)"
