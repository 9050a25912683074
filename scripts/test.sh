#!/usr/bin/env bash
# Installs what the test suite needs when it is missing, then runs all of it:
# formatting, clippy, every unit and integration test (plugins included), and
# a short run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "need root to run: $*" >&2; return 1
    fi
}

phase() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

# Debian packages: the real registry the integration tests start
# (distribution), and for the image, progress and Kubernetes tests: musl-gcc,
# umoci, CA certificates, tmux and kubectl. A kubectl from elsewhere will do.
# (The prometheus package brings promtool; its service is not started here.)
# openssl makes the RSA keys of the signature tests (ring cannot).
missing=()
[ -x "${REGSYNC_TEST_REGISTRY_BIN:-/usr/bin/docker-registry}" ] || missing+=(docker-registry)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
command -v umoci >/dev/null || missing+=(umoci)
command -v tmux >/dev/null || missing+=(tmux)
command -v kubectl >/dev/null || missing+=(kubernetes-client)
command -v openssl >/dev/null || missing+=(openssl)
# The status page is tested in Debian's Chromium; promtool checks the alert rules.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
    phase "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# WASM plugins: Rust ones are built for this target...
# ...and the container image's binary for this one.
for target in wasm32-wasip2 x86_64-unknown-linux-musl; do
    if ! rustup target list --installed | grep -qx "$target"; then
        rustup target add "$target"
    fi
done
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
# JavaScript plugins: componentize-js from npm, pinned, in a directory of our own.
js=target/plugin-tools/js
if [ ! -f "$js/node_modules/@bytecodealliance/componentize-js/src/componentize.js" ]; then
    command -v npm >/dev/null || { as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }
    mkdir -p "$js"
    [ -f "$js/package.json" ] || echo '{"private": true}' >"$js/package.json"
    npm install --prefix "$js" --no-audit --no-fund --silent @bytecodealliance/componentize-js@0.23.0
fi
# playwright-core, which drives Chromium in the status page test, in a
# directory of its own: a second install into componentize-js's directory
# prunes packages that one needs.
browser=target/plugin-tools/browser
if [ ! -f "$browser/node_modules/playwright-core/package.json" ]; then
    mkdir -p "$browser"
    [ -f "$browser/package.json" ] || echo '{"private": true}' >"$browser/package.json"
    npm install --prefix "$browser" --no-audit --no-fund --silent playwright-core@1.64.1
fi
# oras-py, the ORAS project's OCI artifact client: pushes plugin artifacts as other tools do.
if ! "$venv/bin/python" -c 'import oras.client' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check oras==0.2.43
fi

# Incremental caches speed up edit-compile loops, not one full run; off,
# a clean run writes 1.6 GB less (CI machines can be short of disk).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

phase "fmt and clippy"
cargo fmt --all -- --check
cargo fmt --all --manifest-path plugins/Cargo.toml -- --check
cargo fmt --all --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --locked --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml -- -D warnings
# The image test builds a musl binary (minutes on two cores): it runs alone
# first, so that build does not slow the timing-sensitive tests beside it.
phase "container image test"
cargo test --locked -p regsync-tests --test it -- --exact image::the_image_builds_runs_from_its_own_root_and_pushes_with_regsync
# Its musl build (1.6 GB) is not used again; removed, the suite's peak disk
# use stays near 5 GB instead of 8.
rm -rf target/x86_64-unknown-linux-musl target/image-test
phase "all other tests"
cargo test --workspace --locked -- --skip image::the_image_builds_runs_from_its_own_root_and_pushes_with_regsync
# The plugins' own unit tests, on the host.
phase "plugin unit tests"
cargo test --locked --quiet --lib -p keep-latest -p semver-fns -p webhook -p max-age --manifest-path plugins/Cargo.toml --target "$(rustc -vV | sed -n 's/^host: //p')"
# Every fuzz target for a few seconds over its seeds (long runs: scripts/fuzz.sh 600).
phase "fuzz smoke"
rm -rf target/fuzz-smoke
FUZZ_DEV=1 FUZZ_CORPUS=target/fuzz-smoke scripts/fuzz.sh "${FUZZ_SMOKE_SECONDS:-3}"
phase "done"
