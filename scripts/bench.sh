#!/usr/bin/env bash
# Benchmark: one `alation-rotator run` over N integrations against the Alation emulator and a
# local file store, on release builds. Reports wall time (hyperfine) for a pass where every
# token is fresh and for a pass that rotates every integration (--force), and the peak
# resident memory of each (GNU time).
#
#   N=200 ./scripts/bench.sh
#
# Needs `hyperfine` and GNU `time` (Debian: apt-get install hyperfine time).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200}
for tool in hyperfine /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install hyperfine time" >&2; exit 2; }
done

cargo build --release --quiet -p alation-rotator -p alation-emulator
BIN=$PWD/target/release/alation-rotator
work=$(mktemp -d)
trap 'kill "$emulator_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

users=()
for i in $(seq 1 "$N"); do users+=(--user "$i:svc$i:pw-$i-$RANDOM$RANDOM"); done
printf '%s\n' "${users[@]}" | paste - - | awk '{print $2}' > "$work/users"
target/release/alation-emulator "${users[@]}" > "$work/emulator.out" &
emulator_pid=$!
for _ in $(seq 1 100); do grep -q listening "$work/emulator.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/emulator.out")

{
    printf '[alation]\nbase_url = "%s"\n\n[policy]\nmax_concurrency = 8\n\n' "$url"
    printf '[escrow]\ndirectory = "%s/escrow"\n\n[stores.local]\ntype = "file"\ndirectory = "%s/store"\n' "$work" "$work"
    for i in $(seq 1 "$N"); do
        printf '\n[[integrations]]\nname = "int%s"\nuser_id = %s\n' "$i" "$i"
        printf 'refresh_token = { store = "local", key = "state/int%s" }\n' "$i"
        printf 'access_token = { store = "local", key = "alation/int%s" }\n' "$i"
    done
} > "$work/config.toml"
export ALATION_ROTATOR_CONFIG=$work/config.toml

while IFS=: read -r id name password; do
    printf '%s\n' "$password" | "$BIN" bootstrap "int$id" --username "$name" --password-stdin >/dev/null
done < "$work/users"
"$BIN" run >/dev/null 2>&1

echo "== $N integrations, file store, emulator on loopback, release build"
hyperfine --warmup 2 --runs 10 --export-markdown "$work/bench.md" \
    -n "run (all fresh)" "$BIN run --log-level warn" \
    -n "run --force (rotate all)" "$BIN run --force --log-level warn" >/dev/null
cat "$work/bench.md"
for args in "run" "run --force"; do
    rss=$(/usr/bin/time -f '%M' "$BIN" $args --log-level warn 2>&1 >/dev/null | tail -1)
    echo "peak RSS, $args: ${rss} KiB"
done
