#!/usr/bin/env bash
# Checks the dependency graph, offline once the crates are fetched:
#
#   1. One HTTP and one TLS stack: exactly one version each of rustls, hyper, h2 and reqwest in
#      the normal dependency graph of the whole workspace (dev and build dependencies left out),
#      with default features and with every feature (CI lints the test-only `testcontainers`
#      feature too), for every target.
#   2. `cargo deny check bans licenses sources` with ./deny.toml: one version of every crate
#      unless deny.toml says why, only the licenses it allows, crates.io only.
#
#   ./scripts/check-deps.sh
#
# cargo-deny is installed on first use with `cargo install --locked` (a pinned version, built
# from crates.io: about 3 minutes on 2 cores) into ./.tools, which git ignores; later runs
# reuse it. Set CARGO_DENY=/path/to/cargo-deny to use another binary of that version.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
TOOLS=.tools
STACK="rustls hyper h2 reqwest"

fail() {
    echo "check-deps: FAILED: $*" >&2
    exit 1
}

echo "==> one HTTP and TLS stack ($STACK)"
cargo fetch --locked --quiet
for features in "" "--all-features"; do
    what="default features"
    [ -n "$features" ] && what="all features"
    graph=$(cargo tree --locked --workspace -e normal --target all $features \
        --prefix none --format '{p}' | awk '{ print $1, $2 }' | sort -u)
    for crate in $STACK; do
        versions=$(awk -v c="$crate" '$1 == c { print $2 }' <<<"$graph")
        count=$(grep -c . <<<"$versions" || true)
        if [ "$count" -ne 1 ]; then
            {
                echo "check-deps: $count versions of $crate in the normal dependency graph" \
                    "($what):" $versions
                echo "The workspace must use one HTTP and TLS stack (rustls, hyper, h2, reqwest)."
                for version in $versions; do
                    echo "--- who pulls in $crate $version:"
                    cargo tree --locked --workspace -e normal --target all $features \
                        --invert "$crate@${version#v}" --depth 6 || true
                done
                echo "Fix: give the crate that pulls in the other version default-features = false"
                echo "and the features of the shared stack (for the AWS SDK: default-https-client,"
                echo "rt-tokio), or move everything to one version."
            } >&2
            fail "$crate is not unique ($what)"
        fi
        echo "    $crate $versions ($what)"
    done
done

echo "==> cargo deny check bans licenses sources"
deny="${CARGO_DENY:-$TOOLS/bin/cargo-deny}"
if ! "$deny" --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
    if [ -n "${CARGO_DENY:-}" ]; then
        fail "CARGO_DENY=$CARGO_DENY is not cargo-deny $CARGO_DENY_VERSION"
    fi
    echo "    installing cargo-deny $CARGO_DENY_VERSION into $TOOLS (once; about 3 minutes)"
    cargo install --locked --quiet --root "$TOOLS" "cargo-deny@$CARGO_DENY_VERSION"
fi
if ! "$deny" --offline check bans licenses sources; then
    fail "cargo deny found a duplicate crate, a license or a source deny.toml does not allow" \
        "(details above); fix the dependency, or record the decision in deny.toml"
fi
echo "check-deps: ok"
