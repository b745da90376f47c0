#!/usr/bin/env bash
# Type-checks the macOS build of the layer (its SIP exec hooks) and of
# mirrord-sip on Linux: nightly's -Zbuild-std builds the standard library
# for the target from rust-src, so no macOS SDK is needed. Nothing is linked
# or run (no macOS linker or Mac here). Not part of scripts/test-all.sh: the
# first run builds std for the target (minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component add rust-src --toolchain nightly
for target in aarch64-apple-darwin x86_64-apple-darwin; do
  cargo +nightly clippy -Zbuild-std --target "$target" -p mirrord-layer -p mirrord-sip -- -D warnings
done
