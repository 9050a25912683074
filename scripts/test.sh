#!/usr/bin/env bash
# Installs what the test suite needs when it is missing, then runs all of it:
# formatting, clippy, and every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "need root to run: $*" >&2; return 1
    fi
}

# The real registry the integration tests start (Debian's distribution registry).
if [ ! -x "${REGSYNC_TEST_REGISTRY_BIN:-/usr/bin/docker-registry}" ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry
fi

# WASM plugins are built for this target.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
