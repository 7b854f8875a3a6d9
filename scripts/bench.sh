#!/usr/bin/env bash
# Runs the benchmarks and writes their reports to benchmarks/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p benchmarks
cargo run -q --locked -p integration-tests --example bench_simulator | tee benchmarks/simulator.md
cargo run -q --locked -p integration-tests --example bench_mainer | tee benchmarks/mainer.md
cargo run -q --locked -p integration-tests --example bench_creator_store | tee benchmarks/creator_store.md
cargo run -q --locked -p integration-tests --example bench_llm | tee benchmarks/llm.md
cargo run -q --locked -p integration-tests --example bench_creator_copy | tee benchmarks/creator_copy.md
