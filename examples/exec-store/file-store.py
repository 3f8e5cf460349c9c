#!/usr/bin/env python3
"""An alation-rotator exec store: each document is a JSON file in a directory.

command = ["python3", "file-store.py", "/var/lib/my-store"] in [stores.NAME] with
type = "exec" and compare_and_set = true (a lock makes preconditions atomic).
"""
import fcntl, json, os, sys

root, verb, key = sys.argv[1], sys.argv[2], (sys.argv[3:] or [""])[0]
os.makedirs(root, mode=0o700, exist_ok=True)
path = os.path.join(root, key.encode().hex() + ".json")

def load():
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None

if verb == "check":
    sys.exit(0 if os.access(root, os.W_OK) else 6)
elif verb == "read":
    entry = load()
    print(json.dumps(entry and {"document": entry["document"], "version": entry["version"],
                                "managed": entry["labels"].get("managed-by") == "alation-rotator"}))
elif verb == "write":
    request = json.load(sys.stdin)
    with open(os.path.join(root, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # precondition check and write are one step
        entry, pre = load(), request["precondition"]
        if (pre == "absent" and entry) or (isinstance(pre, dict) and
                                           (not entry or entry["version"] != pre["version"])):
            print("the precondition failed", file=sys.stderr)
            sys.exit(3)
        if entry and entry["labels"].get("managed-by") != "alation-rotator" and not request["takeover"]:
            sys.exit(4)
        version = str(int(entry["version"]) + 1) if entry else "1"
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"document": request["document"], "version": version,
                       "labels": request["labels"]}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
    print(json.dumps({"version": version}))
else:
    print(f"unknown verb {verb}", file=sys.stderr)
    sys.exit(2)
