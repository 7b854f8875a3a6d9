#!/usr/bin/env bash
# The project's tests, from a fresh machine: installs the wasm target, builds
# every canister to wasm, then runs the unit and integration tests (on the
# embedded simulator; on PocketIC instead when POCKET_IC_BIN is set).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
echo "==> formatting check"
cargo fmt --all --check
echo "==> tests"
cargo test --workspace --locked "$@"
