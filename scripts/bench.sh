#!/usr/bin/env bash
# Runs the benchmarks and writes their reports to benchmarks/.
#
#   scripts/bench.sh           every benchmark (the LLM one takes minutes)
#   scripts/bench.sh --check   regenerates the fast deterministic reports into
#                              a scratch directory and fails when they differ
#                              from the committed ones in benchmarks/
#
# Reports hold instruction counts, heap sizes and simulated time, which the
# simulator makes deterministic, so a changed figure shows in the diff (and
# the check fails until the new reports are committed). Wall-clock figures
# live in their own reports, which the check never compares.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

# Report benchmarks/<name>.md comes from the example bench_<name>.
FAST=(simulator mainer creator_store creator_copy)   # deterministic, checked
SLOW=(llm llm_side_by_side creator_jobs economy game share_service)    # deterministic, minutes: full run only
TIMING=(simulator_speed)                            # wall-clock: full run only, never checked

# The examples are built once, with the same features as the tests (build_host).
run() { "$(cargo_target_dir)/debug/examples/bench_$1"; }

case "${1:-}" in
  "")
    scripts/build.sh
    build_host
    mkdir -p benchmarks
    for b in "${FAST[@]}" "${SLOW[@]}" "${TIMING[@]}"; do
      run "$b" | tee "benchmarks/$b.md"
    done
    ;;
  --check)
    scripts/build.sh
    build_host
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    drifted=()
    for b in "${FAST[@]}"; do
      echo "==> benchmark $b"
      run "$b" >"$scratch/$b.md"
      if ! diff -u "benchmarks/$b.md" "$scratch/$b.md"; then
        drifted+=("$b")
      fi
    done
    if ((${#drifted[@]})); then
      echo "error: benchmarks/ differs for: ${drifted[*]}; run scripts/bench.sh and commit the reports" >&2
      exit 1
    fi
    echo "benchmarks/ is up to date (${FAST[*]})"
    ;;
  *)
    echo "usage: scripts/bench.sh [--check]" >&2
    exit 2
    ;;
esac
