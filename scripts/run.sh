#!/usr/bin/env bash
# Set up and run Podium (web + worker, and Janus for SFU calls) with embedded SQLite and disk
# storage: http://localhost:${PORT:-8000}. Ctrl-C stops them all.
#
# Janus: unless JANUS_URL/JANUS_URLS name an external one, this script starts the local
# `janus` before honcho (the Procfile keeps its three lines) with a config generated under
# $DATA_DIR/janus/ (server/sfu/janus_config.py: secrets made on first run and kept, the API on
# 127.0.0.1:${JANUS_WS_PORT:-8188} only, RTP on ${JANUS_RTP_PORTS:-20000-40000}, ICE on
# JANUS_ICE_ENFORCE_LIST's interfaces if set) and stops it on exit. Without janus installed,
# calls are a browser mesh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PORT="${PORT:-8000}"
export SERVER_URL="${SERVER_URL:-http://127.0.0.1:$PORT}"  # where the worker finds the web process
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m server migrate

janus_pid=""
stop_janus() { [ -n "$janus_pid" ] && kill "$janus_pid" 2>/dev/null && wait "$janus_pid" 2>/dev/null; true; }
if [ -z "${JANUS_URL:-}${JANUS_URLS:-}" ]; then
  if command -v janus >/dev/null 2>&1; then
    janus_dir="$(realpath -m "${DATA_DIR:-data}/janus")"
    while IFS= read -r line; do export "$line"; done < <(
      .venv/bin/python -m server.sfu.janus_config "$janus_dir" --ws-port "${JANUS_WS_PORT:-8188}" \
        --rtp-ports "${JANUS_RTP_PORTS:-20000-40000}" --ice-enforce-list "${JANUS_ICE_ENFORCE_LIST:-}" --print-env)
    janus -F "$janus_dir" -C "$janus_dir/janus.jcfg" -o -N -L "$janus_dir/janus.log" &
    janus_pid=$!
    trap stop_janus EXIT
    echo "Podium: Janus started (log: $janus_dir/janus.log)"
  else
    echo "Podium: janus is not installed: calls use the browser mesh"
  fi
fi
echo "Podium: open http://localhost:$PORT"
.venv/bin/honcho start -p "$PORT" web worker
