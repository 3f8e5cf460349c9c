#!/usr/bin/env bash
# The container image's runtime layout, exercised without a container engine.
#
# Builds the image's file system from what deploy/Dockerfile says (USER, ENV, WORKDIR,
# ENTRYPOINT, paths): the binary plus the shared libraries it links (what distroless cc
# provides), an /etc/passwd with the image's user, the CA bundle. Then it runs the binary in a
# private mount namespace, chrooted into that file system, as the container runtime would with
# the Kubernetes settings of deploy/kubernetes: the root file system read-only, the
# configuration on a read-only mount, a writable state volume owned by the image's uid/gid,
# the image's uid/gid, no HOME, the working directory read-only. In that layout it runs
# `--version`, `check-config`, `bootstrap`, `run` (which regenerates a refresh token, so the
# escrow is written) and `status` against the Alation emulator, and checks what was written,
# with which owner and mode, and that no secret was printed.
#
# Needs root (mount namespaces, chroot), as CI has. Binaries: $ALATION_ROTATOR_BIN and
# $ALATION_EMULATOR_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "FAIL image layout: $*" >&2; exit 1; }

BIN="${ALATION_ROTATOR_BIN:?set ALATION_ROTATOR_BIN to the alation-rotator binary}"
EMULATOR="${ALATION_EMULATOR_BIN:?set ALATION_EMULATOR_BIN to the alation-emulator binary}"
[ -x "$BIN" ] || fail "$BIN is not an executable binary"
[ -x "$EMULATOR" ] || fail "$EMULATOR is not an executable binary"
[ "$(id -u)" = 0 ] || fail "needs root for a mount namespace and chroot (CI runs as root): run it with sudo"
for tool in unshare mount chroot ldd python3; do
    command -v "$tool" >/dev/null || fail "$tool is missing"
done

# What the Dockerfile says about the final image.
eval "$(python3 - deploy/Dockerfile <<'EOF'
import json, shlex, sys
final = open(sys.argv[1]).read().split("\nFROM ")[-1]
values = {}
for line in final.splitlines():
    word, _, rest = line.partition(" ")
    if word == "USER":
        values["IMAGE_USER"] = rest.strip()
    elif word == "WORKDIR":
        values["IMAGE_WORKDIR"] = rest.strip()
    elif word == "ENV" and rest.startswith("ALATION_ROTATOR_CONFIG="):
        values["IMAGE_CONFIG"] = rest.split("=", 1)[1].strip()
    elif word == "ENTRYPOINT":
        values["IMAGE_ENTRYPOINT"] = " ".join(json.loads(rest))
for key in ("IMAGE_USER", "IMAGE_WORKDIR", "IMAGE_CONFIG", "IMAGE_ENTRYPOINT"):
    if key not in values:
        sys.exit(f"deploy/Dockerfile: the final stage sets no {key}")
for key, value in values.items():
    print(f"{key}={shlex.quote(value)}")
EOF
)"
IMAGE_UID="${IMAGE_USER%%:*}"
IMAGE_GID="${IMAGE_USER##*:}"
[[ "$IMAGE_UID" =~ ^[1-9][0-9]*$ && "$IMAGE_GID" =~ ^[1-9][0-9]*$ ]] \
    || fail "USER $IMAGE_USER is not a fixed non-root uid:gid"
IMAGE_BINARY="${IMAGE_ENTRYPOINT%% *}"
STATE_DIR=/var/lib/alation-rotator
grep -q "COPY --from=build --chown=$IMAGE_USER /out$STATE_DIR $STATE_DIR" deploy/Dockerfile \
    || fail "deploy/Dockerfile does not give $STATE_DIR to $IMAGE_USER"

WORK="$(mktemp -d)"
EMULATOR_PID=""
cleanup() {
    [ -n "$EMULATOR_PID" ] && kill "$EMULATOR_PID" 2>/dev/null && wait "$EMULATOR_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
ROOTFS="$WORK/rootfs"

# The image's file system.
install -D -m 0755 "$BIN" "$ROOTFS$IMAGE_BINARY"
for library in $(ldd "$BIN" | grep -o '/[^ ]*'); do
    install -D -m 0755 "$(readlink -f "$library")" "$ROOTFS$library"
done
install -d -m 0755 "$ROOTFS/etc/ssl/certs" "$ROOTFS$(dirname "$IMAGE_CONFIG")" \
    "$ROOTFS$STATE_DIR" "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/tmp" "$ROOTFS/home/nonroot"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$IMAGE_UID" "$IMAGE_GID" >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$IMAGE_GID" >"$ROOTFS/etc/group"
touch "$ROOTFS/dev/null" "$ROOTFS/dev/urandom"

# The Alation emulator, with refresh tokens of 10 days: less than refresh_renew_before (14d),
# so the first run regenerates one and writes the escrow.
PASSWORD="image-layout-pw-$RANDOM$RANDOM"
"$EMULATOR" --listen 127.0.0.1:0 --user "102:svc-tableau:$PASSWORD" --refresh-lifetime 10d \
    >"$WORK/emulator.out" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/emulator.out" && break
    sleep 0.1
done
ALATION_URL="$(sed -n 's/^listening on //p' "$WORK/emulator.out")"
[ -n "$ALATION_URL" ] || fail "the emulator did not start: $(cat "$WORK/emulator.out")"

# The volumes: the configuration (root's, read-only, like a ConfigMap) and the state volume
# (the image's user's, like a PVC with fsGroup or the EFS access point).
CONFIG_VOLUME="$WORK/config"
STATE_VOLUME="$WORK/state"
install -d -m 0755 "$CONFIG_VOLUME"
install -d -m 0700 -o "$IMAGE_UID" -g "$IMAGE_GID" "$STATE_VOLUME"
cat >"$CONFIG_VOLUME/$(basename "$IMAGE_CONFIG")" <<EOF
[alation]
base_url = "$ALATION_URL"

[policy]
# Regenerate the token bootstrap just made (the default waits an hour between regenerations).
min_regenerate_interval = "0s"

[escrow]
directory = "$STATE_DIR/escrow"

[stores.local]
type = "file"
directory = "$STATE_DIR/tokens"

[[integrations]]
name = "tableau-prod"
user_id = 102
refresh_token = { store = "local", key = "state/tableau-prod" }
access_token = { store = "local", key = "alation/tableau-prod" }
EOF
chmod 0644 "$CONFIG_VOLUME/$(basename "$IMAGE_CONFIG")"

# Runs the image's entrypoint with arguments, as the container runtime would.
in_image() {
    unshare --mount --propagation private -- /bin/sh -ec '
        rootfs=$1 config_volume=$2 state_volume=$3 config=$4 state=$5 user=$6 workdir=$7
        shift 7
        mount --bind "$rootfs" "$rootfs"
        mount -o remount,bind,ro "$rootfs"
        mount --bind "$config_volume" "$rootfs$(dirname "$config")"
        mount -o remount,bind,ro "$rootfs$(dirname "$config")"
        mount --bind "$state_volume" "$rootfs$state"
        mount --bind /dev/null "$rootfs/dev/null"
        mount --bind /dev/urandom "$rootfs/dev/urandom"
        mount --rbind /proc "$rootfs/proc"
        cd "$rootfs$workdir"
        exec env -i ALATION_ROTATOR_CONFIG="$config" NO_COLOR=1 \
            "$(command -v chroot)" --userspec="$user" --groups="${user#*:}" "$rootfs" "$@"
    ' in_image "$ROOTFS" "$CONFIG_VOLUME" "$STATE_VOLUME" "$IMAGE_CONFIG" "$STATE_DIR" \
        "$IMAGE_USER" "$IMAGE_WORKDIR" $IMAGE_ENTRYPOINT "$@"
}

# The layout really is read-only where it should be (else the test below proves nothing).
if unshare --mount --propagation private -- /bin/sh -c \
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && touch "$1/probe"' _ "$ROOTFS" 2>/dev/null; then
    fail "the emulated root file system is writable"
fi

passed=0
step() { passed=$((passed + 1)); echo "ok   image layout: $*"; }
OUTPUT="$WORK/output"
: >"$OUTPUT"

version="$(in_image --version 2>>"$OUTPUT")" || fail "--version failed: $(cat "$OUTPUT")"
[[ "$version" =~ ^alation-rotator\ [0-9]+\.[0-9]+ ]] || fail "--version printed: $version"
step "--version as $IMAGE_USER: $version"

in_image check-config >>"$OUTPUT" 2>&1 || fail "check-config failed: $(cat "$OUTPUT")"
grep -q "OK" "$OUTPUT" || fail "check-config did not say OK: $(cat "$OUTPUT")"
step "check-config reads $IMAGE_CONFIG from \$ALATION_ROTATOR_CONFIG on a read-only mount"

printf '%s\n' "$PASSWORD" | in_image bootstrap tableau-prod --username svc-tableau --password-stdin \
    >>"$OUTPUT" 2>&1 || fail "bootstrap failed: $(cat "$OUTPUT")"
step "bootstrap stored a refresh token on the state volume"

# From now on Alation hands out refresh tokens of 60 days: the regenerated one is not due.
python3 - "$ALATION_URL" <<'EOF_PY' || fail "the emulator refused new lifetimes"
import json, sys, urllib.request
request = urllib.request.Request(
    sys.argv[1].rstrip("/") + "/admin/lifetimes", method="POST",
    data=json.dumps({"refresh": "60d"}).encode(), headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=10)
EOF_PY

in_image run >"$WORK/run.out" 2>>"$OUTPUT" || fail "run failed: $(cat "$WORK/run.out" "$OUTPUT")"
cat "$WORK/run.out" >>"$OUTPUT"
grep -q "tableau-prod *rotated" "$WORK/run.out" || fail "run did not rotate: $(cat "$WORK/run.out")"
step "run regenerated the refresh token and delivered an access token (exit 0)"

in_image status --offline --format json >"$WORK/status.json" 2>>"$OUTPUT" \
    || fail "status failed: $(cat "$WORK/status.json" "$OUTPUT")"
cat "$WORK/status.json" >>"$OUTPUT"
health="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["health"])' "$WORK/status.json")"
[ "$health" = ok ] || fail "status says $health: $(cat "$WORK/status.json")"
step "status --offline reads it back: ok"

# What was written: only on the state volume, owned by the image's user, closed to others.
escrow_files="$(find "$STATE_VOLUME/escrow" -type f | wc -l)"
[ "$escrow_files" -ge 1 ] || fail "the regeneration wrote nothing to the escrow"
[ "$(stat -c %a "$STATE_VOLUME/escrow")" = 700 ] || fail "escrow directory mode $(stat -c %a "$STATE_VOLUME/escrow")"
while IFS= read -r path; do
    owner="$(stat -c %u:%g "$path")"
    mode="$(stat -c %a "$path")"
    [ "$owner" = "$IMAGE_UID:$IMAGE_GID" ] || fail "$path is owned by $owner"
    [ $((8#$mode & 8#077)) = 0 ] || fail "$path has mode $mode"
done < <(find "$STATE_VOLUME" -mindepth 1)
step "every file on the state volume ($(find "$STATE_VOLUME" -type f | wc -l), $escrow_files in escrow/) is $IMAGE_USER and owner-only"

# No secret in anything printed.
refresh_token="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["refresh_token"])' \
    "$STATE_VOLUME/tokens/state/tableau-prod.json")"
access_token="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_access_token"])' \
    "$STATE_VOLUME/tokens/alation/tableau-prod.json")"
for secret in "$PASSWORD" "$refresh_token" "$access_token"; do
    [ ${#secret} -ge 8 ] || fail "a secret read back is too short to search for"
    if grep -qF -- "$secret" "$OUTPUT"; then
        fail "a secret appeared in the output"
    fi
done
step "the password and both tokens appear nowhere in the output"
echo "$passed passed, 0 failed"
