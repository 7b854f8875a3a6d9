#!/usr/bin/env bash
# Runs the benchmarks and writes their reports to benchmarks/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
scripts/build.sh
build_host
EXAMPLES="$(cargo_target_dir)/debug/examples"
mkdir -p benchmarks
"$EXAMPLES/bench_simulator" | tee benchmarks/simulator.md
"$EXAMPLES/bench_mainer" | tee benchmarks/mainer.md
"$EXAMPLES/bench_creator_store" | tee benchmarks/creator_store.md
"$EXAMPLES/bench_llm" | tee benchmarks/llm.md
"$EXAMPLES/bench_creator_copy" | tee benchmarks/creator_copy.md
