#!/usr/bin/env bash
# Set up and run the whole test suite twice: on SQLite (one process, no Redis) and on
# PostgreSQL (TEST_PG_URL, default postgresql://postgres@127.0.0.1:5432/test) with the Redis bus
# on (TEST_REDIS_URL, default redis://127.0.0.1:6379/0). Extra arguments go to pytest.
# In CI (CI=true) an unreachable PostgreSQL or Redis is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1
PG_URL="${TEST_PG_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}"
REDIS_URL_="${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
status=0

# The two passes run at the same time (most of a test's time is spent waiting on sockets,
# processes and media clocks); TEST_SERIAL=1 runs them one after the other. The SQLite pass's
# output is printed when it ends.
# Where both passes run, a few kinds of test run in one of them only (TEST_PASS; which and why:
# tests/conftest.py home_pass): the browser tests and the media worker's (database-free) in the
# SQLite pass; the other database-free ones and the SFU tests that use SQLite in both passes
# anyway in the PostgreSQL pass.
# TEST_WORKERS=N runs each pass on N pytest-xdist workers, file by file (default 0: none —
# with workers the media tests, which measure timing, failed under the contention on 2 cores):
# On PostgreSQL each worker has its own database (tests/dbutil.py).
workers="${TEST_WORKERS:-0}"
xdist=()
# Each pass ends with its 25 slowest tests (what to look at when the suite nears its budget).
durations=(--durations=25 --durations-min=5)
if [ "$workers" != "0" ]; then xdist=(-n "$workers" --dist loadfile); fi

logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT
# Heavy tests (real Chromium, Janus, the media worker's rendering: tests/heavy.py) take both
# cores; two at once made each far slower and the ones measuring media timing fail. So the
# SQLite pass runs its heavy tests first and the PostgreSQL pass last, and a heavy test holds
# a lock file while it runs, so that where the two heavy parts meet they take turns.
export TEST_HEAVY_LOCK="$logdir/heavy.lock"
if [ -n "${TEST_SERIAL:-}" ]; then unset TEST_HEAVY_LOCK; fi

pg_reachable() {
  .venv/bin/python - "$PG_URL" "$REDIS_URL_" <<'PY'
import asyncio, sys
import asyncpg
import redis
async def main(url):
    conn = await asyncio.wait_for(asyncpg.connect(url.replace("+asyncpg", "")), 5)
    await conn.close()
try:
    asyncio.run(main(sys.argv[1]))
except Exception as e:
    print(f"PostgreSQL not reachable at {sys.argv[1]}: {e!r}", file=sys.stderr)
    sys.exit(1)
try:
    redis.Redis.from_url(sys.argv[2], socket_connect_timeout=5).ping()
except Exception as e:
    print(f"Redis not reachable at {sys.argv[2]}: {e!r}", file=sys.stderr)
    sys.exit(1)
PY
}

if pg_reachable; then
  both=1
elif [ "${CI:-}" = "true" ]; then
  echo "FAIL: PostgreSQL and Redis are required in CI" >&2
  exit 1
else
  echo "WARNING: PostgreSQL + Redis pass skipped (not reachable); CI will fail on this" >&2
  both=0
fi

sqlite_pass() {
  echo "=== test suite on SQLite ==="
  local pass=()
  if [ "$both" = 1 ]; then pass=(TEST_PASS=sqlite); fi
  env -u TEST_DATABASE_URL -u TEST_REDIS_URL "${pass[@]}" TEST_HEAVY=first \
    .venv/bin/python -m pytest "${xdist[@]}" "${durations[@]}" "$@"
}
if [ -n "${TEST_SERIAL:-}" ] || [ "$both" = 0 ]; then
  sqlite_pass "$@" || status=1
else
  echo "=== test suite on SQLite: started in the background (its output follows the PostgreSQL pass) ==="
  sqlite_pass "$@" >"$logdir/sqlite.log" 2>&1 &
  sqlite_pid=$!
fi

if [ "$both" = 1 ]; then
  echo "=== test suite on PostgreSQL + Redis ==="
  TEST_DATABASE_URL="$PG_URL" TEST_REDIS_URL="$REDIS_URL_" TEST_PASS=pg TEST_HEAVY=last \
    .venv/bin/python -m pytest "${xdist[@]}" "${durations[@]}" "$@" || status=1
fi
if [ -n "${sqlite_pid:-}" ]; then
  wait "$sqlite_pid" || status=1
  cat "$logdir/sqlite.log"
fi
exit $status
