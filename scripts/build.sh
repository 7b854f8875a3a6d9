#!/usr/bin/env bash
# Builds every canister to wasm and copies the modules to target/wasm/ in the
# project (whatever CARGO_TARGET_DIR says: dfx.json and icp.yaml name that
# folder; cargo's own outputs are read from its target directory).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

# Canister crates (package names); each becomes target/wasm/<name>.wasm.
CANISTERS=(
  game_state
  llm
  mainer_controller
  mainer_creator
  sim_probe
  test_llm
)

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "==> installing the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

packages=()
for c in "${CANISTERS[@]}"; do packages+=(-p "$c"); done
echo "==> building canister wasm: ${CANISTERS[*]}"
cargo build --target wasm32-unknown-unknown --release --locked "${packages[@]}"

TARGET_DIR="$(cargo_target_dir)"
mkdir -p target/wasm
for c in "${CANISTERS[@]}"; do
  cp "$TARGET_DIR/wasm32-unknown-unknown/release/$c.wasm" "target/wasm/$c.wasm"
  printf '    %-24s %8d bytes\n' "$c.wasm" "$(stat -c %s "target/wasm/$c.wasm")"
done
