#!/usr/bin/env bash
# The project's tests, from a fresh machine: installs the wasm target, builds
# every canister to wasm, then runs the unit and integration tests (on the
# embedded simulator; on PocketIC instead when POCKET_IC_BIN is set).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

scripts/build.sh
echo "==> formatting check"
cargo fmt --all --check
echo "==> clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> the shared types crates do not depend on ic-cdk"
for crate in mainer_types llm_engine; do
  if cargo tree --locked -p "$crate" -e normal --prefix none | grep -q '^ic-cdk'; then
    echo "error: $crate depends on ic-cdk" >&2
    exit 1
  fi
done
# The same build the demo, the CLI and the local network use (scripts/common.sh).
build_host
echo "==> tests"
cargo test --workspace --locked --no-fail-fast "$@"
# The committed benchmark reports match the code: the fast deterministic ones
# are regenerated and compared (a few minutes; the slow ones run only in
# `scripts/bench.sh`). Skip with SKIP_BENCH_CHECK=1.
if [[ "${SKIP_BENCH_CHECK:-}" != 1 ]]; then
  echo "==> benchmark reports"
  scripts/bench.sh --check
fi
