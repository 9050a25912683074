#!/usr/bin/env bash
# Installs what the test suite needs when it is missing, then runs all of it:
# formatting, clippy, and every unit and integration test (plugins included).
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

# WASM plugins: Rust ones are built for this target...
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
# ...and Python ones with componentize-py from PyPI, in a venv of our own.
venv=target/plugin-tools/venv
if [ ! -x "$venv/bin/componentize-py" ]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check componentize-py==0.25.1
fi

cargo fmt --all -- --check
cargo fmt --all --manifest-path plugins/Cargo.toml -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --locked --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml -- -D warnings
cargo test --workspace --locked
# The plugins' own unit tests, on the host.
cargo test --locked --quiet --lib -p keep-latest -p semver-fns --manifest-path plugins/Cargo.toml --target "$(rustc -vV | sed -n 's/^host: //p')"
