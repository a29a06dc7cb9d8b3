#!/usr/bin/env bash
# Idempotent set-up: the virtualenv with pinned packages, and (with --test) the Debian
# packages the test suite needs. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_install() {
  # Install Debian packages that are missing (we run as root on these machines; sudo otherwise).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt_install python3-venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi

reqs=requirements.txt
[ $want_test = 1 ] && reqs=requirements-dev.txt
stamp=".venv/.installed-$(cat requirements.txt "$reqs" | sha256sum | cut -c1-16)-$want_test"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages from $reqs"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -r "$reqs"
  touch "$stamp"
fi

# Janus (Debian's janus: the media router for SFU calls, docs/CALLS.md). Without it calls are
# a browser mesh; the SFU tests (tests/sfu) need it.
if ! command -v janus >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt_install janus
  else
    echo "setup: janus not found and no apt-get: calls will use the browser mesh"
  fi
fi

# Fonts for the names in the class video (media_worker/post/text.py): Noto Sans for Latin,
# Greek, Cyrillic and most other scripts, Noto Sans CJK for Chinese, Japanese and Korean.
# Without them a worker draws names in ASCII only (and says so in its log).
if command -v apt-get >/dev/null 2>&1; then
  apt_install fonts-noto-core fonts-noto-cjk
else
  echo "setup: no apt-get: install the Noto fonts (fonts-noto-core, fonts-noto-cjk) yourself"
fi

if [ $want_test = 1 ]; then
  apt_install chromium
  if ! command -v node >/dev/null 2>&1; then apt_install nodejs npm; fi
fi
