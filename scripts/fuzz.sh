#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...]: runs the cargo fuzz targets of fuzz/
# (every parser of outside input) for SECONDS each (default 60), one after
# another, and prints a table: target, executions, seconds, result.
#
# Seeds are read from fuzz/corpus/<target>/ (committed, small); what the
# fuzzer finds goes to $FUZZ_CORPUS/<target>/ (default target/fuzz-corpus, not
# committed; it is read again at the next run) and a crashing input to
# fuzz/artifacts/<target>/, which makes the script exit 1.
# A crash becomes a regression test (see fuzz/README.md).
#
# FUZZ_DEV=1 builds without optimisation: minutes less to build, fewer
# executions per second; what CI's short smoke run uses.
#
# Builds with nightly when it is installed, else with the stable toolchain
# and RUSTC_BOOTSTRAP=1 (cargo fuzz needs nightly flags); installs cargo-fuzz
# when it is missing. No sanitizer (the code is safe Rust: panics, overflows,
# hangs and memory blow-ups are what is looked for), debug assertions and
# overflow checks on, 2 GiB memory and 10 s per input at most.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a number, got '$seconds'" >&2; exit 2; }

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
if rustup run nightly rustc -V >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    toolchain=()
    export RUSTC_BOOTSTRAP=1
fi

all=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^regsync-fuzz$')
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || read -r -a targets <<<"$(echo $all)"

flags=(-s none -a)
[[ ${FUZZ_DEV:-0} == 1 ]] && flags+=(--dev)
cargo "${toolchain[@]}" fuzz build "${flags[@]}"

corpus=${FUZZ_CORPUS:-target/fuzz-corpus}
failed=0
printf '%-18s %14s %8s  %s\n' target executions seconds result
for t in "${targets[@]}"; do
    work=$corpus/$t
    mkdir -p "$work" "fuzz/artifacts/$t"
    log=$corpus/$t.log
    set +e
    cargo "${toolchain[@]}" fuzz run "${flags[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    if [[ $rc -eq 0 ]]; then
        result=ok
    else
        failed=1
        result="FAILED (exit $rc): $(grep -m1 -E "panicked at|ERROR: libFuzzer: (deadly|out-of|timeout)" "$log" || echo "see $log")"
        result="$result; input: $(ls -t "fuzz/artifacts/$t" 2>/dev/null | head -1)"
    fi
    printf '%-18s %14s %8s  %s\n' "$t" "${runs:-?}" "${secs:-?}" "$result"
done
exit $failed
