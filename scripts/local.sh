#!/usr/bin/env bash
# A local IC network in one command: builds the canisters and the host tools
# (scripts/common.sh's one shared build), then runs sim-server, the embedded
# IC simulator behind the IC's HTTP interface, on 127.0.0.1:PORT (default
# 4943, dfx's local port, so `mainer --network local`, dfx and icp-cli find it).
#
#   scripts/local.sh [--port N] [--log]   in the foreground (Ctrl-C stops it)
#   scripts/local.sh --background [--port N]   in the background; logs and pid in .sim-server/
#   scripts/local.sh --stop               stops the one started with --background
#
# State is in memory only (the simulator has no snapshots): every start is a
# fresh network, deploy again (scripts/deploy.sh --tool icp|dfx).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

PORT=4943
BACKGROUND=0
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) PORT="${2:?--port needs a number}"; shift 2 ;;
    --background) BACKGROUND=1; shift ;;
    --log) ARGS+=(--log); shift ;;
    --stop)
      if [[ -f .sim-server/pid ]] && kill "$(cat .sim-server/pid)" 2>/dev/null; then
        echo "stopped sim-server (pid $(cat .sim-server/pid))"
      else
        echo "no sim-server started by scripts/local.sh --background is running"
      fi
      rm -f .sim-server/pid .sim-server/port
      exit 0
      ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "local.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

scripts/build.sh >&2
build_host
SERVER="$(cargo_target_dir)/debug/sim-server"
if [[ "$BACKGROUND" == 0 ]]; then
  exec "$SERVER" --port "$PORT" "${ARGS[@]}"
fi
mkdir -p .sim-server
rm -f .sim-server/port
nohup "$SERVER" --port "$PORT" --port-file .sim-server/port "${ARGS[@]}" >.sim-server/log 2>&1 &
echo $! >.sim-server/pid
for _ in $(seq 100); do
  [[ -s .sim-server/port ]] && break
  if ! kill -0 "$(cat .sim-server/pid)" 2>/dev/null; then
    cat .sim-server/log >&2
    exit 3
  fi
  sleep 0.1
done
echo "sim-server is running at http://127.0.0.1:$(cat .sim-server/port) (pid $(cat .sim-server/pid), log .sim-server/log)"
