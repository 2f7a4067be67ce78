#!/bin/sh
# What the container image does, as one script: the Dockerfile runs it, and so does
# tests/test_package.py (no container daemon runs on the build machines), so the image's
# steps are tested where the code is.
#
#   deploy/image.sh build SRC WHEELS        the wheel of the source tree SRC, into WHEELS
#   deploy/image.sh install WHEELS PREFIX   a virtualenv at PREFIX with the wheel and the
#                                           pinned runtime dependencies (constraints.txt)
#   deploy/image.sh start [PREFIX]          `thidua run` in its place (it upgrades the schema
#                                           when behind; with several processes run
#                                           `thidua db upgrade` once first, as compose does)
#   deploy/image.sh healthcheck [PREFIX]    exit 0 when /healthz answers 200 (HEALTHCHECK)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}

case "${1:-}" in
build)
    src=$2 wheels=$3
    mkdir -p "$wheels"
    # --no-deps: only the bot's own wheel; its dependencies come pinned at install.
    # The build compiles the gettext catalogues into the wheel (setup.py).
    "$python" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$src"
    # The deployment pins travel with the wheel.
    cp "$src/constraints.txt" "$wheels/constraints.txt"
    ;;
install)
    wheels=$2 prefix=$3
    "$python" -m venv "$prefix"
    "$prefix/bin/python" -m pip install --quiet --no-cache-dir \
        --constraint "$wheels/constraints.txt" "$wheels"/thidua_bot-*.whl
    ;;
start)
    prefix=${2:-/opt/thidua/venv}
    exec "$prefix/bin/thidua" run
    ;;
healthcheck)
    prefix=${2:-/opt/thidua/venv}
    exec "$prefix/bin/python" - <<'PY'
import os, sys, urllib.request
host = os.environ.get("THIDUA_WEB_HOST", "127.0.0.1")
host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
port = os.environ.get("THIDUA_WEB_PORT", "8080")
try:
    with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError:
    sys.exit(1)
PY
    ;;
*)
    echo "usage: $0 build SRC WHEELS | install WHEELS PREFIX | start [PREFIX] | healthcheck [PREFIX]" >&2
    exit 2
    ;;
esac
