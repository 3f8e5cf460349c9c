"""Renders every kustomization under deploy/kubernetes and checks what Kubernetes would get.

For each rendering (the base through `deploy/kubernetes`, and every overlay):
  1. `kubectl kustomize DIR` succeeds;
  2. every object validates, strictly (unknown fields are errors), against the Kubernetes
     OpenAPI schemas of the oldest and the newest version we support (PyPI
     `kubernetes-validate`, which ships the schemas: no cluster, no network);
  3. the rendered CronJob or Deployment has the settings that matter (see `check_workload`),
     read from the rendered output, never from the source files;
  4. the configuration in the rendered ConfigMap passes `alation-rotator check-config` of the
     real binary ($ALATION_ROTATOR_BIN), and its deadlines fit the pod's;
  5. the binary accepts the container's command line (the image's ENTRYPOINT plus the
     rendered args, `--help` appended, so nothing runs).

Then it proves the checks can fail: it breaks a rendered CronJob and Deployment in each way
listed in `BREAKAGES` and expects a problem for each.

Usage: check_kubernetes.py --kubectl PATH --binary PATH
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_ROOT = ROOT / "deploy" / "kubernetes"
# The oldest version the overlays need (backoffLimitPerIndex is on by default from 1.29;
# CronJob timeZone is GA since 1.27), and the newest schema kubernetes-validate ships.
SCHEMA_VERSIONS = ("1.29.0", "1.37.0")
SCHEDULE_PERIOD_SECONDS = 30 * 60

Doc = dict[str, Any]


def humantime_seconds(text: str) -> int:
    """The few humantime forms the example configurations use ("20s", "10m", "1h 30m")."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0
    for number, unit in re.findall(r"(\d+)\s*([smhd])", text):
        total += int(number) * units[unit]
    if not total:
        raise ValueError(f"cannot read duration {text!r}")
    return total


def render(kubectl: str, directory: Path) -> list[Doc]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def pod_spec_of(workload: Doc) -> Doc:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def env_value(container: Doc, name: str) -> str | None:
    for entry in container.get("env", []):
        if entry["name"] == name:
            return entry.get("value")
    return None


def config_of(docs: list[Doc], workload: Doc) -> tuple[str, dict[str, Any], str]:
    """The rendered configuration file the container reads: (path, parsed TOML, text)."""
    pod = pod_spec_of(workload)
    container = pod["containers"][0]
    path = env_value(container, "ALATION_ROTATOR_CONFIG")
    if path is None:
        raise AssertionError("the container does not set ALATION_ROTATOR_CONFIG")
    directory, filename = os.path.split(path)
    mount = next((m for m in container["volumeMounts"] if m["mountPath"] == directory), None)
    if mount is None:
        raise AssertionError(f"nothing is mounted at {directory}, where the config is read")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    if "configMap" not in volume:
        raise AssertionError(f"the config volume {volume['name']} is not a ConfigMap")
    config_maps = find(docs, "ConfigMap", volume["configMap"]["name"])
    if not config_maps:
        raise AssertionError(f"ConfigMap {volume['configMap']['name']} is not in the output")
    text = config_maps[0]["data"][filename]
    return path, tomllib.loads(text), text


def check_workload(docs: list[Doc], workload: Doc) -> list[str]:
    """Every setting that matters for a rotator pod; one line per problem."""
    problems: list[str] = []

    def expect(condition: bool, message: str) -> None:
        if not condition:
            problems.append(f"{workload['kind']}/{workload['metadata']['name']}: {message}")

    pod = pod_spec_of(workload)
    containers = pod.get("containers", [])
    expect(len(containers) == 1, "exactly one container")
    container = containers[0]
    pod_sc = pod.get("securityContext", {})
    sc = container.get("securityContext", {})

    try:
        _, config, _ = config_of(docs, workload)
    except AssertionError as error:
        expect(False, str(error))
        return problems
    policy = config.get("policy", {})
    shutdown_grace = humantime_seconds(policy.get("shutdown_grace", "20s"))
    run_deadline = humantime_seconds(policy.get("run_deadline", "10m"))

    if workload["kind"] == "CronJob":
        spec = workload["spec"]
        job = spec["jobTemplate"]["spec"]
        expect(spec.get("concurrencyPolicy") == "Forbid", "concurrencyPolicy must be Forbid")
        deadline = spec.get("startingDeadlineSeconds")
        expect(
            isinstance(deadline, int) and 0 < deadline < SCHEDULE_PERIOD_SECONDS,
            f"startingDeadlineSeconds must be set and below the schedule period, got {deadline}",
        )
        active = job.get("activeDeadlineSeconds")
        expect(
            isinstance(active, int) and active >= run_deadline + shutdown_grace + 60,
            f"activeDeadlineSeconds ({active}) must leave run_deadline ({run_deadline}s) plus "
            f"shutdown_grace ({shutdown_grace}s) plus a minute",
        )
        expect(
            isinstance(active, int) and active < SCHEDULE_PERIOD_SECONDS,
            "activeDeadlineSeconds must end a run before the next one is due",
        )
        expect(pod.get("restartPolicy") == "Never", "restartPolicy must be Never")
    elif workload["kind"] == "Deployment":
        spec = workload["spec"]
        expect(spec.get("replicas") == 1, "a daemon Deployment has exactly one replica")
        expect(spec.get("strategy", {}).get("type") == "Recreate", "strategy must be Recreate")

    grace = pod.get("terminationGracePeriodSeconds")
    expect(
        isinstance(grace, int) and grace >= shutdown_grace + 10,
        f"terminationGracePeriodSeconds ({grace}) must be at least shutdown_grace "
        f"({shutdown_grace}s) plus 10s",
    )
    expect(pod_sc.get("runAsNonRoot") is True, "pod runAsNonRoot must be true")
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        value = pod_sc.get(key)
        expect(isinstance(value, int) and value > 0, f"pod {key} must be a fixed non-root id")
    expect(
        pod_sc.get("fsGroupChangePolicy") == "OnRootMismatch",
        "fsGroupChangePolicy must be OnRootMismatch",
    )
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
    expect(seccomp.get("type") == "RuntimeDefault", "seccompProfile must be RuntimeDefault")
    expect(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")
    expect(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    expect(sc.get("privileged") is not True, "the container must not be privileged")
    capabilities = sc.get("capabilities", {})
    expect(capabilities.get("drop") == ["ALL"], "capabilities must drop ALL")
    expect(not capabilities.get("add"), "no capability may be added")
    expect(sc.get("runAsUser", 1) != 0, "the container must not run as root")
    resources = container.get("resources", {})
    requests = resources.get("requests", {})
    expect("cpu" in requests and "memory" in requests, "cpu and memory requests must be set")
    expect("memory" in resources.get("limits", {}), "a memory limit must be set")

    # No API token unless something in the pod is built to use one.
    expect(
        pod.get("automountServiceAccountToken") is False,
        "automountServiceAccountToken must be false",
    )
    service_account = find(docs, "ServiceAccount", pod.get("serviceAccountName", "default"))
    expect(bool(service_account), "the pod's ServiceAccount must be part of the output")

    # Mounts: the config read-only; the escrow on a PersistentVolumeClaim; nothing else writable.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    escrow = config.get("escrow", {}).get("directory", "/var/lib/alation-rotator/escrow")
    escrow_mount = None
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"])
        expect(volume is not None, f"volume {mount['name']} is mounted but not defined")
        if volume is None:
            continue
        is_escrow = escrow == mount["mountPath"] or escrow.startswith(
            mount["mountPath"].rstrip("/") + "/"
        )
        if is_escrow:
            escrow_mount = (mount, volume)
        else:
            expect(
                mount.get("readOnly") is True,
                f"{mount['mountPath']} must be mounted read-only",
            )
    expect(escrow_mount is not None, f"the escrow directory {escrow} is on no volume")
    if escrow_mount is not None:
        mount, volume = escrow_mount
        claim = volume.get("persistentVolumeClaim", {}).get("claimName")
        expect(claim is not None, f"the escrow directory {escrow} must be on a PVC")
        expect(
            claim is None or bool(find(docs, "PersistentVolumeClaim", claim)),
            f"PersistentVolumeClaim {claim} must be part of the output",
        )
        expect(mount.get("readOnly") is not True, "the escrow volume must be writable")

    # $(VAR) in args must name a variable of the container's env, else it stays literal.
    env_names = {e["name"] for e in container.get("env", [])}
    for arg in container.get("args", []):
        for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
            expect(
                name in env_names or name == "JOB_COMPLETION_INDEX",
                f"argument {arg!r} refers to ${name}, which the container does not define",
            )
    return problems


def check_sharded(docs: list[Doc]) -> list[str]:
    problems = []
    (cronjob,) = find(docs, "CronJob")
    job = cronjob["spec"]["jobTemplate"]["spec"]
    container = pod_spec_of(cronjob)["containers"][0]
    completions = job.get("completions")
    if job.get("completionMode") != "Indexed":
        problems.append("sharded: completionMode must be Indexed")
    if job.get("parallelism") != completions:
        problems.append("sharded: parallelism must equal completions (every shard at once)")
    if env_value(container, "JOB_COMPLETIONS") != str(completions):
        problems.append(f"sharded: env JOB_COMPLETIONS must be {completions!r}, as completions")
    if "--shard-from-env" not in container.get("args", []):
        problems.append("sharded: the run must take --shard-from-env")
    if "backoffLimit" in job or job.get("backoffLimitPerIndex") != 0:
        problems.append("sharded: one failing shard must fail only its index (backoffLimitPerIndex: 0)")
    claim_name = next(
        v["persistentVolumeClaim"]["claimName"]
        for v in pod_spec_of(cronjob)["volumes"]
        if "persistentVolumeClaim" in v
    )
    (claim,) = find(docs, "PersistentVolumeClaim", claim_name)
    if claim["spec"]["accessModes"] != ["ReadWriteMany"]:
        problems.append("sharded: shards on several nodes share the escrow: ReadWriteMany")
    return problems


def check_vault_kubernetes_auth(docs: list[Doc]) -> list[str]:
    problems = []
    (cronjob,) = find(docs, "CronJob")
    pod = pod_spec_of(cronjob)
    _, config, _ = config_of(docs, cronjob)
    auths = [s.get("auth", {}) for s in config["stores"].values() if s["type"] == "vault"]
    kubernetes = [a for a in auths if a.get("method") == "kubernetes"]
    if not kubernetes:
        return ["vault-kubernetes-auth: no Vault store logs in with method = kubernetes"]
    jwt_file = kubernetes[0].get("jwt_file", "/var/run/secrets/kubernetes.io/serviceaccount/token")
    container = pod["containers"][0]
    mount = next(
        (m for m in container["volumeMounts"] if jwt_file.startswith(m["mountPath"] + "/")), None
    )
    if mount is None:
        return [f"vault-kubernetes-auth: jwt_file {jwt_file} is on no volume"]
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    sources = volume.get("projected", {}).get("sources", [])
    tokens = [s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s]
    if not tokens or tokens[0].get("path") != os.path.basename(jwt_file):
        problems.append(f"vault-kubernetes-auth: {jwt_file} must be a projected SA token")
    elif not tokens[0].get("audience"):
        problems.append("vault-kubernetes-auth: the projected token must name Vault's audience")
    if any("secret" in v for v in pod["volumes"]):
        problems.append("vault-kubernetes-auth: no Vault credential Secret is needed any more")
    return problems


def check_aws_irsa(docs: list[Doc]) -> list[str]:
    problems = []
    (cronjob,) = find(docs, "CronJob")
    (account,) = find(docs, "ServiceAccount", pod_spec_of(cronjob)["serviceAccountName"])
    role = account["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "")
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/.+", role):
        problems.append("aws-irsa: the ServiceAccount needs eks.amazonaws.com/role-arn")
    _, config, _ = config_of(docs, cronjob)
    if not any(s["type"] == "aws_secrets_manager" for s in config["stores"].values()):
        problems.append("aws-irsa: the configuration has no aws_secrets_manager store")
    return problems


def check_pushgateway(docs: list[Doc]) -> list[str]:
    (cronjob,) = find(docs, "CronJob")
    args = pod_spec_of(cronjob)["containers"][0]["args"]
    problems = []
    if args[:1] != ["run"] or "--pushgateway" not in args:
        problems.append("pushgateway: the run must push (--pushgateway URL)")
    else:
        url = args[args.index("--pushgateway") + 1]
        if not re.fullmatch(r"https?://[a-z0-9.-]+(:\d+)?/?", url):
            problems.append(f"pushgateway: {url!r} is not a Pushgateway base URL")
    if "--metrics-instance" not in args:
        problems.append("pushgateway: a stable --metrics-instance keeps one group per runner")
    elif "$(POD_NAME)" in args[args.index("--metrics-instance") + 1]:
        problems.append("pushgateway: a per-pod instance leaves a stale group per run")
    return problems


def check_daemon(docs: list[Doc]) -> list[str]:
    problems = []
    if find(docs, "CronJob"):
        problems.append("daemon: the scheduled job must be gone beside the daemon")
    (deployment,) = find(docs, "Deployment")
    pod = pod_spec_of(deployment)
    container = pod["containers"][0]
    args = container["args"]
    if args[:1] != ["daemon"] or "--listen" not in args:
        return problems + ["daemon: the container must run `daemon --listen ADDR`"]
    host, _, port = args[args.index("--listen") + 1].rpartition(":")
    if host != "0.0.0.0":
        problems.append("daemon: in a pod it must listen on 0.0.0.0 to be probed and scraped")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        target = ports.get(get.get("port"), get.get("port"))
        if get.get("path") != path or str(target) != port:
            problems.append(f"daemon: {probe} must GET {path} on port {port}")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    services = [
        s
        for s in find(docs, "Service")
        if s["spec"]["selector"].items() <= labels.items()
        and any(str(ports.get(p["targetPort"], p["targetPort"])) == port for p in s["spec"]["ports"])
    ]
    if not services:
        problems.append(f"daemon: no Service selects the pod and reaches port {port}")
    elif not services[0]["spec"].get("publishNotReadyAddresses"):
        problems.append("daemon: the metrics Service must publish not-ready pods too")
    return problems


OVERLAY_CHECKS: dict[str, Callable[[list[Doc]], list[str]]] = {
    "sharded": check_sharded,
    "vault-kubernetes-auth": check_vault_kubernetes_auth,
    "aws-irsa": check_aws_irsa,
    "pushgateway": check_pushgateway,
    "daemon": check_daemon,
}


def set_path(doc: Doc, path: str, value: Any) -> None:
    """Sets a dotted path in a workload's pod template ("pod." and "container." shortcuts)."""
    pod = pod_spec_of(doc)
    roots = {"pod": pod, "container": pod["containers"][0], "spec": doc["spec"]}
    head, *rest = path.split(".")
    target = roots[head]
    for key in rest[:-1]:
        target = target.setdefault(key, {})
    if value is DELETE:
        target.pop(rest[-1], None)
    else:
        target[rest[-1]] = value


DELETE = object()
# (workload kind, path, value): each must make check_workload report a problem.
BREAKAGES = [
    ("CronJob", "spec.concurrencyPolicy", "Allow"),
    ("CronJob", "spec.startingDeadlineSeconds", DELETE),
    ("CronJob", "spec.jobTemplate.spec.activeDeadlineSeconds", 600),
    ("CronJob", "pod.terminationGracePeriodSeconds", 20),
    ("CronJob", "pod.securityContext.runAsNonRoot", False),
    ("CronJob", "pod.securityContext.runAsUser", 0),
    ("CronJob", "pod.securityContext.fsGroupChangePolicy", "Always"),
    ("CronJob", "pod.securityContext.seccompProfile", {"type": "Unconfined"}),
    ("CronJob", "pod.automountServiceAccountToken", True),
    ("CronJob", "container.securityContext.readOnlyRootFilesystem", False),
    ("CronJob", "container.securityContext.allowPrivilegeEscalation", True),
    ("CronJob", "container.securityContext.capabilities", {"drop": ["NET_RAW"]}),
    ("CronJob", "container.resources", {}),
    ("CronJob", "container.volumeMounts", "config-writable"),
    ("CronJob", "pod.volumes", "escrow-on-emptydir"),
    ("Deployment", "spec.strategy", {"type": "RollingUpdate"}),
    ("Deployment", "spec.replicas", 2),
    ("Deployment", "pod.terminationGracePeriodSeconds", 5),
]


def break_copy(workload: Doc, path: str, value: Any) -> Doc:
    broken = copy.deepcopy(workload)
    if value == "config-writable":
        for mount in pod_spec_of(broken)["containers"][0]["volumeMounts"]:
            if mount["mountPath"] == "/etc/alation-rotator":
                mount["readOnly"] = False
    elif value == "escrow-on-emptydir":
        for volume in pod_spec_of(broken)["volumes"]:
            if "persistentVolumeClaim" in volume:
                del volume["persistentVolumeClaim"]
                volume["emptyDir"] = {}
    elif path.startswith("spec.jobTemplate."):
        target = broken["spec"]["jobTemplate"]["spec"]
        target[path.rsplit(".", 1)[1]] = value
    else:
        set_path(broken, path, value)
    return broken


def run_check_config(binary: str, name: str, text: str) -> str | None:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", prefix=f"{name}-") as file:
        file.write(text)
        file.flush()
        result = subprocess.run(
            [binary, "--config", file.name, "check-config"],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ.get("PATH", ""), "NO_COLOR": "1"},
        )
    if result.returncode != 0:
        return f"{name}: check-config exit {result.returncode}: {result.stdout}{result.stderr}"
    return None


def entrypoint_options() -> list[str]:
    """The options the image's ENTRYPOINT puts before the container's args."""
    final_stage = (ROOT / "deploy" / "Dockerfile").read_text().split("\nFROM ")[-1]
    for line in final_stage.splitlines():
        if line.startswith("ENTRYPOINT "):
            return yaml.safe_load(line.removeprefix("ENTRYPOINT "))[1:]
    raise SystemExit("deploy/Dockerfile: the final stage has no ENTRYPOINT")


def accepts_command_line(binary: str, args: list[str]) -> str | None:
    """None when the binary parses these arguments; else why not."""
    concrete = [re.sub(r"\$\(([A-Z_]+)\)", r"sample-\1", arg) for arg in args]
    result = subprocess.run(
        [binary, *concrete, "--help"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["no output"])[0]
        return f"the binary refuses `{' '.join(args)}`: {first}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubectl", required=True)
    parser.add_argument("--binary", required=True)
    options = parser.parse_args()

    renderings = {"base (deploy/kubernetes)": KUSTOMIZE_ROOT}
    for overlay in sorted((KUSTOMIZE_ROOT / "overlays").iterdir()):
        renderings[overlay.name] = overlay
    missing = set(OVERLAY_CHECKS) - set(renderings)
    if missing:
        raise SystemExit(f"overlays missing: {sorted(missing)}")

    passed = failed = 0
    rendered: dict[str, list[Doc]] = {}
    for name, directory in renderings.items():
        started = time.monotonic()
        docs = render(options.kubectl, directory)
        rendered[name] = docs
        problems: list[str] = []
        for doc in docs:
            for version in SCHEMA_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    problems.append(
                        f"{doc['kind']}/{doc['metadata']['name']} against {version}: "
                        f"{error.message}"
                    )
        workloads = find(docs, "CronJob") + find(docs, "Deployment")
        if len(workloads) != 1:
            problems.append(f"expected one CronJob or Deployment, found {len(workloads)}")
        for workload in workloads:
            problems += check_workload(docs, workload)
            _, _, text = config_of(docs, workload)
            error = run_check_config(options.binary, name.split()[0], text)
            if error:
                problems.append(error)
            container = pod_spec_of(workload)["containers"][0]
            error = accepts_command_line(options.binary, entrypoint_options() + container["args"])
            if error:
                problems.append(error)
        if name in OVERLAY_CHECKS:
            problems += OVERLAY_CHECKS[name](docs)
        kinds = ", ".join(sorted(d["kind"] for d in docs))
        elapsed = time.monotonic() - started
        if problems:
            failed += 1
            print(f"FAIL {name}: {len(docs)} objects ({kinds})")
            for problem in problems:
                print(f"     - {problem}")
        else:
            passed += 1
            print(
                f"ok   {name}: {len(docs)} objects ({kinds}) valid against "
                f"{' and '.join(SCHEMA_VERSIONS)}, settings checked, check-config and "
                f"command line accepted "
                f"({elapsed:.1f}s)"
            )

    # The checks must be able to fail: each breakage must be reported.
    samples = {
        "CronJob": find(rendered["base (deploy/kubernetes)"], "CronJob")[0],
        "Deployment": find(rendered["daemon"], "Deployment")[0],
    }
    caught = 0
    for kind, path, value in BREAKAGES:
        docs = rendered["daemon"] if kind == "Deployment" else rendered["base (deploy/kubernetes)"]
        broken = break_copy(samples[kind], path, value)
        others = [d for d in docs if d is not samples[kind]]
        if check_workload(others + [broken], broken):
            caught += 1
        else:
            failed += 1
            print(f"FAIL the check misses a broken {kind}: {path} = {value!r}")
    if caught == len(BREAKAGES):
        passed += 1
        print(f"ok   self-test: all {caught} deliberately broken workloads were caught")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
