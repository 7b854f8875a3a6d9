# Shared by the scripts (sourced, not run): where cargo puts its outputs, and
# the one host build that tests, demo, CLI and local network all share.

# No incremental-compilation caches (gigabytes a fresh clone gains nothing
# from), for every script alike: the setting is part of cargo's fingerprints,
# so a script without it would rebuild the workspace's crates after one with it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Cargo's target directory: CARGO_TARGET_DIR, else `build.target-dir` of a
# cargo config, else ./target (what `cargo metadata` reports).
cargo_target_dir() {
  if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    echo "$CARGO_TARGET_DIR"
    return
  fi
  local dir
  dir="$(cargo metadata --format-version 1 --no-deps --offline 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  echo "${dir:-target}"
}

# Builds every host target of the workspace (simulator, tests, examples, the
# demo, the `mainer` CLI, sim-server) in the dev profile. `cargo test
# --workspace` resolves dependency features over exactly this set, so after
# any of scripts/test.sh, demo.sh, local.sh or deploy.sh the others find
# everything built; building only one package (`cargo run -p …`) would
# resolve other features and recompile wasmtime and cranelift (minutes).
build_host() {
  echo "==> building the host tools and tests (simulator, demo, mainer CLI, sim-server; the first build takes several minutes)" >&2
  cargo build --locked --workspace --all-targets "$@" >&2
}
