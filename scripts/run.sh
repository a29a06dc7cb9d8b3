#!/usr/bin/env bash
# Set up and run Podium (web + worker) with embedded SQLite and disk storage:
# http://localhost:${PORT:-8000}. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PORT="${PORT:-8000}"
export SERVER_URL="${SERVER_URL:-http://127.0.0.1:$PORT}"  # where the worker finds the web process
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m server migrate
echo "Podium: open http://localhost:$PORT"
exec .venv/bin/honcho start -p "$PORT" web worker
