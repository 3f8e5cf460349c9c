"""The benchmark of docs/performance.md; run it through scripts/bench.sh.

One `alation-rotator run` (release build, a new process each time) over N integrations against
the release emulator with a fixed latency per Alation call, on the file store, OpenBao and moto.
For each case it reports, as the median of three runs, wall time, CPU time per rotation and
peak RSS (from GNU time), Alation and store calls per rotation, and wall / bound, where bound =
Alation calls x latency / concurrency: the time the Alation calls alone take at that
concurrency. On the same emulator and store it times the script users write today (Python
`requests`, one integration after another, atomic file writes) and a 32-thread version of it,
and a nothing-to-do run and `status --offline`.

Store calls are counted by a small forwarding proxy in front of OpenBao and moto, in a run of its
own (the proxy's overhead would distort the timed run).
"""

import argparse
import concurrent.futures
import http.client
import http.server
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "target" / "release"
ROTATOR = RELEASE / "alation-rotator"
EMULATOR = RELEASE / "alation-emulator"
VENV_BIN = ROOT / ".venv" / "bin"
CONCURRENCY = 32
RUNS = 3
MAX_USERS = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method: str, url: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def measure(args: list[str], env: dict[str, str], stdin: str | None = None) -> dict:
    """Runs a command to its end; its wall time, and its CPU time and peak RSS as GNU time
    reports them (GNU time is a small process, so the peak is the command's own: a child
    forked from this Python would carry Python's resident set into its high-water mark)."""
    usage_file = tempfile.NamedTemporaryFile(prefix="bench-usage-", delete=False)
    usage_file.close()
    args = ["/usr/bin/time", "-f", "%U %S %M", "-o", usage_file.name, *args]
    started = time.monotonic()
    process = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if stdin is not None:
        process.stdin.write(stdin.encode())
        process.stdin.close()
    stdout = process.stdout.read()
    stderr = process.stderr.read()
    process.wait()
    wall = time.monotonic() - started
    usage = Path(usage_file.name).read_text().split()
    os.unlink(usage_file.name)
    if process.returncode != 0:
        sys.exit(
            f"bench: {' '.join(args[5:8])} exited {process.returncode}:\n"
            f"{stdout.decode()[-2000:]}\n{stderr.decode()[-2000:]}"
        )
    user, system, max_rss_kib = usage[-3:]
    return {
        "wall": wall,
        "cpu": float(user) + float(system),
        "rss_mib": int(max_rss_kib) / 1024,
        "stdout": stdout.decode(),
    }


class Emulator:
    def __init__(self, users: int):
        self.passwords = {i: f"pw-{i}-{os.urandom(6).hex()}" for i in range(1, users + 1)}
        args = [str(EMULATOR)]
        for i, password in self.passwords.items():
            args += ["--user", f"{i}:svc{i}:{password}"]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            sys.exit(f"bench: the emulator did not start: {line!r}")
        self.url = line.removeprefix("listening on ").strip().rstrip("/") + "/"

    def latency(self, ms: int):
        http_json("DELETE", self.url + "admin/faults")
        if ms:
            http_json("POST", self.url + "admin/faults", {"kind": {"latency": f"{ms}ms"}})

    def calls(self) -> Counter:
        return Counter(http_json("GET", self.url + "admin/calls"))

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Peer:
    """OpenBao (dev mode) or moto, from the test virtualenv, on a free port."""

    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        self.port = free_port()
        log = open(workdir / f"{kind}.log", "w")
        if kind == "vault":
            args = [
                str(VENV_BIN / "bao"), "server", "-dev", "-dev-root-token-id=bench-root",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ]
        else:
            args = [str(VENV_BIN / "moto_server"), "-p", str(self.port)]
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                path = "/v1/sys/health" if kind == "vault" else "/moto-api/"
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2):
                    return
            except Exception:
                time.sleep(0.2)
        sys.exit(f"bench: {kind} did not start (see {workdir / (kind + '.log')})")

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.process.terminate()
        self.process.wait()


class CountingProxy:
    """Forwards HTTP to a peer and counts the calls by operation."""

    def __init__(self, kind: str, upstream_port: int):
        self.counts: Counter = Counter()
        counts, lock = self.counts, threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if kind == "aws":
                    operation = (self.headers.get("X-Amz-Target") or "?").split(".")[-1]
                else:
                    path = self.path.split("?")[0]
                    part = next(
                        (p for p in ("auth", "data", "metadata") if f"/{p}/" in path + "/"),
                        path,
                    )
                    operation = f"{self.command} {part}"
                with lock:
                    counts[operation] += 1
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def take(self) -> Counter:
        taken = Counter(self.counts)
        self.counts.clear()
        return taken

    def stop(self):
        self.server.shutdown()


class Fleet:
    """A configuration of N integrations (users 1..N) on one store, bootstrapped."""

    def __init__(self, workdir: Path, emulator: Emulator, n: int, store: str, address: str = ""):
        self.dir = workdir / f"{store}-{n}-{os.urandom(3).hex()}"
        self.dir.mkdir()
        self.n, self.store, self.emulator, self.address = n, store, emulator, address
        self.baseline_tokens = None
        self.prefix = f"bench/{self.dir.name}"
        self.env = {
            "PATH": os.environ["PATH"],
            "ALATION_ROTATOR_CONFIG": str(self.dir / "alation-rotator.toml"),
            "RUST_LOG": "warn",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "BENCH_VAULT_TOKEN": "bench-root",
        }
        self.write_config(address)
        self.bootstrap()

    def key(self, what: str, i: int) -> str:
        return f"{what}/int{i}" if self.store == "file" else f"{self.prefix}/{what}/int{i}"

    def write_config(self, address: str):
        store = {
            "file": f'type = "file"\ndirectory = "{self.dir / "store"}"\n',
            "vault": f'type = "vault"\naddress = "{address}"\nmount = "secret"\n'
            'auth = { method = "token", token_env = "BENCH_VAULT_TOKEN" }\n',
            "aws": f'type = "aws_secrets_manager"\nregion = "us-east-1"\nendpoint_url = "{address}"\n'
            "max_writes_per_second = 1000\n",
        }[self.store]
        lines = [
            f'[alation]\nbase_url = "{self.emulator.url}"\ntimeout = "30s"\n',
            f"[policy]\nmax_concurrency = {CONCURRENCY}\n",
            f'[escrow]\ndirectory = "{self.dir / "escrow"}"\n',
            f"[stores.s]\n{store}",
        ]
        for i in range(1, self.n + 1):
            lines.append(
                f'[[integrations]]\nname = "int{i}"\nuser_id = {i}\n'
                f'refresh_token = {{ store = "s", key = "{self.key("state", i)}" }}\n'
                f'access_token = {{ store = "s", key = "{self.key("alation", i)}" }}\n'
            )
        Path(self.env["ALATION_ROTATOR_CONFIG"]).write_text("\n".join(lines))

    def bootstrap(self):
        def one(i: int):
            measure(
                [str(ROTATOR), "bootstrap", f"int{i}", "--username", f"svc{i}", "--password-stdin",
                 "--token-name", f"{self.dir.name}-int{i}"],
                self.env,
                stdin=self.emulator.passwords[i] + "\n",
            )

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(1, self.n + 1)))

    def run(self, *args: str) -> dict:
        return measure([str(ROTATOR), *args], self.env)

    def timed(self, *args: str) -> dict:
        """The median (by wall time) of RUNS runs, each a new process."""
        results = []
        for _ in range(RUNS):
            # Start each run with no writeback pending from the one before.
            os.sync()
            results.append(self.run(*args))
        results.sort(key=lambda r: r["wall"])
        return results[len(results) // 2]


BASELINE = r'''
import json, os, sys, tempfile, time, concurrent.futures
import boto3
import requests

base, tokens_file, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tokens = json.load(open(tokens_file))
local = __import__("threading").local()

def session():
    if not hasattr(local, "s"):
        local.s = requests.Session()
    return local.s

def rotate(item):
    name, cred = item
    r = session().post(base + "integration/v1/createAPIAccessToken/",
                       json={"refresh_token": cred["refresh_token"], "user_id": cred["user_id"]},
                       timeout=30)
    r.raise_for_status()
    body = r.json()
    doc = {"api_access_token": body["api_access_token"], "user_id": body["user_id"],
           "token_expires_at": body["token_expires_at"], "integration": name}
    if out.startswith("aws:"):
        if not hasattr(local, "sm"):
            local.sm = boto3.client("secretsmanager", endpoint_url=out[4:], region_name="us-east-1")
        local.sm.put_secret_value(SecretId=tokens[name]["secret_id"], SecretString=json.dumps(doc))
        return
    fd, tmp = tempfile.mkstemp(dir=out)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(out, name + ".json"))

if threads == 1:
    for item in tokens.items():
        rotate(item)
else:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(rotate, tokens.items()))
'''


def baseline_tokens(fleet: Fleet) -> dict:
    """The fleet's refresh tokens as the script keeps them (read from the fleet's state)."""
    tokens = {}
    if fleet.store == "file":
        for i in range(1, fleet.n + 1):
            state = json.loads((fleet.dir / "store" / "state" / f"int{i}.json").read_text())
            tokens[f"int{i}"] = {"refresh_token": state["refresh_token"],
                                 "user_id": state["user_id"]}
        return tokens
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=fleet.address, region_name="us-east-1")
    for i in range(1, fleet.n + 1):
        state = json.loads(client.get_secret_value(SecretId=fleet.key("state", i))["SecretString"])
        secret_id = f"{fleet.prefix}/baseline/int{i}"
        client.create_secret(Name=secret_id, SecretString="{}")
        tokens[f"int{i}"] = {"refresh_token": state["refresh_token"],
                             "user_id": state["user_id"], "secret_id": secret_id}
    return tokens


def baseline(fleet: Fleet, threads: int) -> dict:
    """The script users write today, over the fleet's refresh tokens: file writes, or one
    PutSecretValue per token on AWS."""
    if fleet.baseline_tokens is None:
        fleet.baseline_tokens = baseline_tokens(fleet)
    tokens_file = fleet.dir / "baseline-tokens.json"
    tokens_file.write_text(json.dumps(fleet.baseline_tokens))
    os.chmod(tokens_file, 0o600)
    if fleet.store == "aws":
        out = "aws:" + fleet.address
    else:
        out = fleet.dir / f"baseline-out-{threads}"
        out.mkdir(exist_ok=True)
    script = fleet.dir / "baseline.py"
    script.write_text(BASELINE)
    env = {k: v for k, v in fleet.env.items() if k.startswith("AWS_")}
    env["PATH"] = os.environ["PATH"]
    return measure(
        [str(VENV_BIN / "python"), str(script), fleet.emulator.url, str(tokens_file), str(out),
         str(threads)],
        env,
    )


def alation_calls(emulator: Emulator, before: Counter) -> int:
    return sum((emulator.calls() - before).values())


def row(label, n, latency, result, calls, store_calls="", baseline_seq=None, baseline_par=None):
    bound = calls * latency / 1000 / CONCURRENCY
    ratio = f"{result['wall'] / bound:.2f}" if bound else "n/a"
    if baseline_seq is not None:
        speedups = (f"{baseline_seq['wall']:.2f} s / {baseline_par['wall']:.2f} s | "
                    f"{baseline_seq['wall'] / result['wall']:.1f}x / "
                    f"{baseline_par['wall'] / result['wall']:.1f}x")
    else:
        speedups = "| "
    return (
        f"| {label} | {n} | {latency} | {result['wall']:.3f} | {bound:.3f} | {ratio} | "
        f"{result['cpu'] / n * 1000:.2f} | {result['rss_mib']:.1f} | {calls / n:.2f} | "
        f"{store_calls} | {speedups} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 10 and 100 only, 20 ms only")
    options = parser.parse_args()
    sizes = [10, 100] if options.quick else [10, 100, 1000]
    latencies = [20] if options.quick else [0, 20, 50]
    peer_n = 100

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    workdir = Path(tempfile.mkdtemp(prefix="alation-rotator-bench-"))
    emulator = Emulator(max(sizes + [peer_n]))
    peers = []
    try:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"{platform.system()} {platform.release()}; concurrency {CONCURRENCY}")
        print("| store | N | latency ms | wall s | bound s | wall/bound | CPU ms/rotation | "
              "peak RSS MiB | Alation calls/rotation | store calls/rotation | "
              "script: sequential / 32 threads | our speed-up |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        big = None
        for n in sizes:
            fleet = Fleet(workdir, emulator, n, "file")
            fleet.run("run")
            for latency in latencies:
                emulator.latency(latency)
                before = emulator.calls()
                result = fleet.timed("run", "--force")
                calls = alation_calls(emulator, before) // RUNS
                seq = baseline(fleet, 1) if n <= 100 or latency == 20 else None
                par = baseline(fleet, 32) if seq is not None else None
                print(row("file", n, latency, result, calls, "-", seq, par), flush=True)
            if n == max(sizes):
                big = fleet
        for kind in ("vault", "aws"):
            peer = Peer(kind, workdir)
            peers.append(peer)
            proxy = CountingProxy(kind, peer.port)
            emulator.latency(0)
            counted = Fleet(workdir, emulator, peer_n, kind, proxy.address)
            bootstrap_calls = proxy.take()
            counted.run("run")
            first_calls = proxy.take()
            counted.run("run", "--force")
            forced_calls = proxy.take()
            counted.run("run")
            idle_calls = proxy.take()
            proxy.stop()
            fleet = Fleet(workdir, emulator, peer_n, kind, peer.address)
            fleet.run("run")
            latency = 20
            emulator.latency(latency)
            before = emulator.calls()
            result = fleet.timed("run", "--force")
            calls = alation_calls(emulator, before) // RUNS
            per = lambda c: f"{sum(c.values()) / peer_n:.2f}"
            detail = ", ".join(f"{k} {v / peer_n:g}" for k, v in sorted(forced_calls.items()))
            seq = baseline(fleet, 1) if kind == "aws" else None
            par = baseline(fleet, 32) if kind == "aws" else None
            print(row(kind, peer_n, latency, result, calls, f"{per(forced_calls)} ({detail})",
                      seq, par), flush=True)
            print(f"<!-- {kind} store calls per integration: bootstrap {per(bootstrap_calls)}, "
                  f"first run {per(first_calls)}, forced {per(forced_calls)}, "
                  f"nothing to do {per(idle_calls)} ({dict(idle_calls)}) -->", flush=True)
        if big is not None:
            emulator.latency(0)
            idle = big.timed("run")
            status = big.timed("status", "--offline")
            print(f"\nnothing to do over {big.n}: {idle['wall']:.3f} s wall, "
                  f"{idle['cpu'] * 1000:.0f} ms CPU, {idle['rss_mib']:.1f} MiB; "
                  f"status --offline over {big.n}: {status['wall']:.3f} s wall, "
                  f"{status['cpu'] * 1000:.0f} ms CPU, {status['rss_mib']:.1f} MiB")
        size = ROTATOR.stat().st_size / 1024 / 1024
        print(f"release binary: {size:.1f} MiB")
    finally:
        for peer in peers:
            peer.stop()
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
