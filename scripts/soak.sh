#!/usr/bin/env bash
# The fault soak on many seeds: the whole factory under random faults, then
# quiet; a line per seed (faults injected, submissions, what broke).
#
#   scripts/soak.sh                 seeds 1..10, 30 fault rounds each
#   scripts/soak.sh 1 2 3           these seeds
#   scripts/soak.sh --rounds 60 4   longer runs
#   scripts/soak.sh --markdown $(seq 1 50) > benchmarks/soak.md   the committed report
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
scripts/build.sh >&2
build_host
exec "$(cargo_target_dir)/debug/examples/soak" "$@"
