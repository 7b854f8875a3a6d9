#!/usr/bin/env bash
# The main job on the embedded simulator, from a fresh machine.
#
# Today the simulator is what exists: this builds every canister and runs the
# simulator's showcase (fixture canisters, calls, timers, cycles, benchmark).
# The factory itself (game state, controllers, creator, LLM canisters) is
# being built on top of it and will run here end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cargo run -q --locked -p integration-tests --example bench_simulator
