#!/usr/bin/env bash
# Builds every fuzz target and runs each for FUZZ_SECONDS (default 45) on a
# copy of its committed seed corpus, with the protocol dictionary. Works on a
# clean clone: installs cargo-fuzz if it is missing. Needs a nightly
# toolchain (`cargo +nightly`). Any crash fails the script; libFuzzer leaves
# the crashing input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-45}"
targets=(decode roundtrip client hub)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== cargo fuzz build"
cargo +nightly fuzz build

# Generated inputs go to a temporary corpus, so a run never writes into the
# repository (the seeds stay as committed).
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for target in "${targets[@]}"; do
    echo "== cargo fuzz run $target (${seconds}s)"
    mkdir -p "$work/$target"
    if [ -d "corpus/$target" ]; then
        cp corpus/"$target"/seed-* "$work/$target/" 2>/dev/null || true
    fi
    cargo +nightly fuzz run "$target" "$work/$target" -- \
        -max_total_time="$seconds" \
        -dict="$PWD/chat.dict" \
        -print_final_stats=1
done
echo "== fuzz: all targets ran ${seconds}s without a crash"
