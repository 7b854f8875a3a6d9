#!/usr/bin/env bash
# The main job, from a fresh machine: builds every canister and runs the whole
# mAIner factory end to end on the embedded IC simulator (game state, creator,
# uploads, controllers of every role, LLM canisters with a real model,
# challenges, answers), then prints a report. Options: scripts/demo.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  if [[ "$arg" == -h || "$arg" == --help ]]; then
    cat integration-tests/src/bin/demo_help.txt
    exit 0
  fi
done
source scripts/common.sh
scripts/build.sh >&2
build_host
echo "==> running the demo" >&2
exec "$(cargo_target_dir)/debug/demo" "$@"
