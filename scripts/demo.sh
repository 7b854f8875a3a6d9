#!/usr/bin/env bash
# The main job, from a fresh machine: builds every canister and runs the whole
# mAIner factory end to end on the embedded IC simulator (game state, creator,
# uploads, controllers of every role, LLM canisters with a real model,
# challenges, answers), then prints a report. Options: scripts/demo.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >&2
cargo run -q --locked -p integration-tests --bin demo -- "$@"
