#!/usr/bin/env bash
# Deploys the mAIner factory with dfx: builds the canisters, installs (or
# upgrades) the game state and the creator with each other's ids, uploads the
# artefacts into the creator with the `mainer` CLI (files already stored are
# skipped), and prints what to do next.
#
#   scripts/deploy.sh [--network local|ic] [--mode install|upgrade] [--identity NAME] [--skip-upload]
#
# local: start a replica first (dfx start --background --clean).
# ic:    the identity needs cycles (dfx cycles balance --network ic); set
#        CREATOR_CYCLES (e.g. 20000000000000) to give the creator more at creation.
#
# Install arguments (Candid text; the types are in canisters/*/*.did):
#   game_state      GameStateArgs::Init: admins = [you], registrars = [the creator]
#   mainer_creator  CreatorArgs::Init:   admins = [you], game_state = the game state
# Each needs the other's id, so both canisters are created first, then installed.
# Upgrades pass `variant { Upgrade }` with every field null: nothing changes
# (typed as the .did's install argument, which dfx checks; the canisters read
# it as `opt`, which Candid allows).
#
#   scripts/deploy.sh --print-init-args ADMIN GAME_STATE CREATOR
# prints the four arguments (game state init, creator init, game state upgrade,
# creator upgrade) without dfx; tools/mainer-cli/tests/deploy_config.rs checks
# that they decode into the canisters' Rust init types.
set -euo pipefail
cd "$(dirname "$0")/.."

game_state_init() {
  echo "(variant { Init = record { admins = vec { principal \"$1\" }; registrars = vec { principal \"$2\" }; max_answer_bytes = null } })"
}
creator_init() {
  echo "(variant { Init = record { admins = vec { principal \"$1\" }; game_state = principal \"$2\"; allowed_creators = vec {}; settings = null } })"
}
game_state_upgrade() {
  echo "(variant { Upgrade = record { admins = null; registrars = null; max_answer_bytes = null } })"
}
creator_upgrade() {
  echo "(variant { Upgrade = record { admins = null; game_state = null; allowed_creators = null; settings = null } })"
}

if [[ "${1:-}" == "--print-init-args" ]]; then
  if [[ $# -ne 4 ]]; then
    echo "usage: $0 --print-init-args ADMIN GAME_STATE CREATOR" >&2
    exit 2
  fi
  game_state_init "$2" "$4"
  creator_init "$2" "$3"
  game_state_upgrade
  creator_upgrade
  exit 0
fi

die() {
  echo "deploy: $1" >&2
  exit "${2:-1}"
}

NETWORK=local
MODE=install
IDENTITY=""
SKIP_UPLOAD=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --network) NETWORK="${2:-}"; shift 2 ;;
    --mode) MODE="${2:-}"; shift 2 ;;
    --identity) IDENTITY="${2:-}"; shift 2 ;;
    --skip-upload) SKIP_UPLOAD=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" 2 ;;
  esac
done
[[ "$NETWORK" == local || "$NETWORK" == ic ]] || die "--network must be local or ic" 2
[[ "$MODE" == install || "$MODE" == upgrade ]] || die "--mode must be install or upgrade" 2
command -v dfx >/dev/null || die "dfx is not installed (the IC SDK: https://internetcomputer.org/docs/building-apps/getting-started/install)" 2

DFX=(dfx)
[[ -n "$IDENTITY" ]] && DFX+=(--identity "$IDENTITY")
IDENTITY_NAME="${IDENTITY:-$(dfx identity whoami)}"
ADMIN="$("${DFX[@]}" identity get-principal)"
echo "==> network $NETWORK, mode $MODE, identity $IDENTITY_NAME ($ADMIN)"

if [[ "$NETWORK" == local ]] && ! dfx ping local >/dev/null 2>&1; then
  die "no local replica answers: start one with 'dfx start --background --clean'" 3
fi

echo "==> creating the canisters (a no-op for those that exist)"
"${DFX[@]}" canister create game_state --network "$NETWORK"
"${DFX[@]}" canister create mainer_creator --network "$NETWORK" ${CREATOR_CYCLES:+--with-cycles "$CREATOR_CYCLES"}
GAME="$(dfx canister id game_state --network "$NETWORK")"
CREATOR="$(dfx canister id mainer_creator --network "$NETWORK")"
echo "    game_state $GAME, mainer_creator $CREATOR"

echo "==> building (scripts/build.sh through dfx) and the mainer CLI"
"${DFX[@]}" build game_state --network "$NETWORK"
"${DFX[@]}" build mainer_creator --network "$NETWORK"
# MAINER_CLI: a mainer binary to use instead of building one (the shared
# host build of scripts/common.sh, which the tests and the demo reuse).
source scripts/common.sh
if [[ -n "${MAINER_CLI:-}" ]]; then
  MAINER="$MAINER_CLI"
else
  build_host
  MAINER="$(cargo_target_dir)/debug/mainer"
fi

if [[ "$MODE" == install ]]; then
  echo "==> installing"
  "${DFX[@]}" canister install game_state --network "$NETWORK" --mode install \
    --argument "$(game_state_init "$ADMIN" "$CREATOR")" ||
    die "installing game_state failed (already installed? use --mode upgrade)"
  "${DFX[@]}" canister install mainer_creator --network "$NETWORK" --mode install \
    --argument "$(creator_init "$ADMIN" "$GAME")" ||
    die "installing mainer_creator failed (already installed? use --mode upgrade)"
  if [[ "$NETWORK" == local ]]; then
    # Each mAIner costs the creator 2T (controller) + 5T per LLM by default.
    dfx ledger fabricate-cycles --canister mainer_creator --t 100 --network local
  fi
else
  echo "==> upgrading"
  "${DFX[@]}" canister install game_state --network "$NETWORK" --mode upgrade --yes \
    --argument "$(game_state_upgrade)"
  # The IC does not stop a canister for an upgrade: a reply to a call made
  # before it (a create_canister, say) would land in the new module and be
  # lost. `dfx canister stop` returns once every call in flight has ended.
  echo "==> stopping mainer_creator (waits for its calls in flight)"
  "${DFX[@]}" canister stop mainer_creator --network "$NETWORK"
  if ! "${DFX[@]}" canister install mainer_creator --network "$NETWORK" --mode upgrade --yes \
    --argument "$(creator_upgrade)"; then
    "${DFX[@]}" canister start mainer_creator --network "$NETWORK"
    die "upgrading mainer_creator failed; it was started again with its old module"
  fi
  "${DFX[@]}" canister start mainer_creator --network "$NETWORK"
fi

if [[ "$SKIP_UPLOAD" == 0 ]]; then
  echo "==> uploading artefacts into the creator"
  # The CLI reads plaintext PEM keys; exporting also works for encrypted identities.
  PEM="$(mktemp)"
  trap 'rm -f "$PEM"' EXIT
  chmod 600 "$PEM"
  dfx identity export "$IDENTITY_NAME" >"$PEM"
  CLI=("$MAINER" --network "$NETWORK" --pem "$PEM" --creator "$CREATOR" --game-state "$GAME")

  "${CLI[@]}" upload --kind controller-wasm target/wasm/mainer_controller.wasm

  if [[ -f files/llama_cpp.wasm ]]; then
    LLM_WASM=files/llama_cpp.wasm
  else
    LLM_WASM=target/wasm/llm.wasm
    echo "    (no files/llama_cpp.wasm: using our llm canister, a drop-in for it)"
  fi
  "${CLI[@]}" upload --kind llm-wasm "$LLM_WASM"

  MODEL=""
  PROMPT=""
  for candidate in files/qwen2.5-0.5b-instruct-q8_0.gguf files/*.gguf; do
    if [[ -f "$candidate" ]]; then
      MODEL="$candidate"
      break
    fi
  done
  if [[ -z "$MODEL" && "$NETWORK" == local && -f ../shared/models/stories260Ktok512.gguf ]]; then
    MODEL=../shared/models/stories260Ktok512.gguf
    PROMPT=" --prompt plain"
    echo "    (no model in files/: using the tiny test model, which has no chat template)"
  fi
  if [[ -n "$MODEL" ]]; then
    "${CLI[@]}" upload --kind model "$MODEL"
  else
    echo "    no model: put one in files/ (see files/README.md), then: $MAINER --network $NETWORK upload --kind model FILE"
  fi
fi

ID_FLAG="--identity $IDENTITY_NAME"
cat <<EOF

Deployed on $NETWORK: game_state $GAME, mainer_creator $CREATOR (admin $ADMIN).

Next (the CLI reads the canister ids from dfx's files; an encrypted identity
needs --pem FILE from 'dfx identity export $IDENTITY_NAME' instead of --identity):
  $MAINER --network $NETWORK $ID_FLAG artefacts
  $MAINER --network $NETWORK $ID_FLAG create-mainer --role own --owner $ADMIN --llms 1${PROMPT:-} --follow
  $MAINER --network $NETWORK $ID_FLAG mainers
  $MAINER --network $NETWORK $ID_FLAG challenge add --question "Write a haiku about the sea" --max-tokens 32
  $MAINER --network $NETWORK $ID_FLAG submissions --challenge 1
EOF
if [[ "$MODE" == upgrade ]]; then
  echo "  $MAINER --network $NETWORK $ID_FLAG fleet-upgrade    # if a new controller wasm was uploaded"
fi
if [[ "$NETWORK" == ic ]]; then
  echo "  dfx canister deposit-cycles 20000000000000 mainer_creator --network ic    # each mAIner costs 2T + 5T per LLM"
fi
