"""Checks the ECS files offline.

  1. task-definition.json, schedule.json and efs-access-point.json are valid input of
     `aws ecs register-task-definition`, `aws scheduler create-schedule` and
     `aws efs create-access-point` (`--cli-input-json`): validated against the service models
     that botocore ships (the same validation the AWS CLI runs before it sends anything);
  2. the task has the settings that matter (non-root fixed uid/gid, read-only root file
     system, stopTimeout above shutdown_grace, logs, the config read-only, the escrow on EFS
     through an access point owned by the same uid/gid, encrypted in transit);
  3. the "config" container's command, run by a real shell with the configuration in its
     environment, writes a file that `alation-rotator check-config` accepts;
  4. the binary accepts the rotator container's command line (`--help` appended);
  5. the schedule starts that task definition every 30 minutes.

Usage: check_ecs.py --binary PATH
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

ROOT = Path(__file__).resolve().parents[2]
ECS = ROOT / "deploy" / "ecs"


def validate_input(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        return [f"{service} {operation}: {report.generate_report()}"]
    return []


def seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)\s*([smhd])", text))


def check_task(task: dict[str, Any], access_point: dict[str, Any], binary: str) -> list[str]:
    problems: list[str] = []

    def expect(condition: bool, message: str) -> None:
        if not condition:
            problems.append(f"task-definition.json: {message}")

    containers = {c["name"]: c for c in task["containerDefinitions"]}
    volumes = {v["name"]: v for v in task["volumes"]}
    rotator = containers.get("alation-rotator")
    if rotator is None:
        return ["task-definition.json: no container named alation-rotator"]
    env = {e["name"]: e["value"] for e in rotator.get("environment", [])}
    config_path = env.get("ALATION_ROTATOR_CONFIG", "")
    expect(config_path.startswith("/"), "ALATION_ROTATOR_CONFIG must name the config file")
    config_dir = os.path.dirname(config_path)

    expect(rotator.get("essential") is True, "the rotator container is essential")
    user = rotator.get("user", "")
    expect(re.fullmatch(r"[1-9]\d*:[1-9]\d*", user) is not None, f"user {user!r}: fixed uid:gid, not root")
    expect(rotator.get("readonlyRootFilesystem") is True, "readonlyRootFilesystem must be true")
    expect(not rotator.get("privileged"), "the rotator must not be privileged")
    expect(
        rotator.get("linuxParameters", {}).get("capabilities", {}).get("drop") == ["ALL"],
        "the rotator drops all capabilities",
    )
    expect(rotator.get("logConfiguration", {}).get("logDriver") == "awslogs", "logs go to CloudWatch")
    expect(rotator.get("command", [])[:1] == ["run"], "the task runs one pass (`run`)")

    ecs_config = tomllib.loads((ECS / "alation-rotator.toml").read_text())
    grace = seconds(ecs_config.get("policy", {}).get("shutdown_grace", "20s"))
    expect(
        rotator.get("stopTimeout", 0) >= grace + 10,
        f"stopTimeout ({rotator.get('stopTimeout')}) must exceed shutdown_grace ({grace}s) by 10s",
    )

    mounts = {m["containerPath"]: m for m in rotator.get("mountPoints", [])}
    config_mount = mounts.get(config_dir)
    expect(config_mount is not None and config_mount.get("readOnly") is True,
           f"{config_dir} must be mounted read-only")
    escrow = ecs_config.get("escrow", {}).get("directory", "/var/lib/alation-rotator/escrow")
    state = [m for path, m in mounts.items() if escrow == path or escrow.startswith(path + "/")]
    expect(len(state) == 1 and not state[0].get("readOnly"), f"the escrow {escrow} must be on a writable mount")
    if state:
        efs = volumes[state[0]["sourceVolume"]].get("efsVolumeConfiguration")
        expect(efs is not None, "the escrow must be on EFS")
        if efs:
            expect(efs.get("transitEncryption") == "ENABLED", "EFS transit encryption must be on")
            auth = efs.get("authorizationConfig", {})
            expect(auth.get("accessPointId", "").startswith("fsap-"), "EFS through an access point")
            expect(auth.get("iam") == "ENABLED", "EFS IAM authorization must be on")
            expect(efs.get("fileSystemId") == access_point["FileSystemId"],
                   "the access point belongs to the task's file system")
        posix = access_point["PosixUser"]
        creation = access_point["RootDirectory"]["CreationInfo"]
        expect(user == f"{posix['Uid']}:{posix['Gid']}",
               f"the access point's PosixUser must be the container user {user}")
        expect((creation["OwnerUid"], creation["OwnerGid"]) == (posix["Uid"], posix["Gid"]),
               "the access point's root directory belongs to that user")
        expect(creation["Permissions"] == "0700", "the access point's root directory is 0700")

    # The configuration arrives through the "config" container, before the rotator starts.
    writer = containers.get("config")
    if writer is None:
        problems.append("task-definition.json: no container delivers the configuration")
        return problems
    expect(writer.get("essential") is False, "the config container must not be essential")
    expect({"containerName": "config", "condition": "SUCCESS"} in rotator.get("dependsOn", []),
           "the rotator must wait for the config container's success")
    expect(writer.get("readonlyRootFilesystem") is True, "the config container's root is read-only")
    expect(
        writer.get("linuxParameters", {}).get("capabilities", {}).get("drop") == ["ALL"],
        "the config container drops all capabilities",
    )
    expect("@sha256:" in writer["image"], "the config container's image is pinned by digest")
    writer_mounts = {m["containerPath"]: m for m in writer.get("mountPoints", [])}
    expect(config_dir in writer_mounts and
           writer_mounts[config_dir]["sourceVolume"] == (config_mount or {}).get("sourceVolume"),
           "the config container writes the volume the rotator reads")
    secrets = {s["name"]: s["valueFrom"] for s in writer.get("secrets", [])}
    expect(len(secrets) == 1, "the config container gets the configuration as one secret")
    for value in secrets.values():
        expect(re.fullmatch(r"arn:aws:(ssm|secretsmanager):[a-z0-9-]+:\d{12}:.+", value) is not None,
               f"{value} must be an SSM parameter or Secrets Manager ARN")

    # Run the container's command with a real shell, as busybox would, on the example config.
    with tempfile.TemporaryDirectory() as scratch:
        command = [part.replace(config_dir, scratch) for part in writer["command"]]
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for name in secrets:
            environment[name] = (ECS / "alation-rotator.toml").read_text()
        result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
        expect(result.returncode == 0, f"the config command failed: {result.stderr}")
        written = Path(scratch) / os.path.basename(config_path)
        if written.exists():
            expect(
                tomllib.loads(written.read_text()) == ecs_config,
                "the written file differs from deploy/ecs/alation-rotator.toml",
            )
            check = subprocess.run([binary, "--config", str(written), "check-config"],
                                   capture_output=True, text=True, check=False)
            expect(check.returncode == 0,
                   f"check-config refused the written file: {check.stdout}{check.stderr}")
        else:
            expect(False, f"the config command wrote no {os.path.basename(config_path)}")
    help_run = subprocess.run(
        [binary, "--log-format", "json", *rotator.get("command", []), "--help"],
        capture_output=True, text=True, check=False,
    )
    expect(help_run.returncode == 0,
           f"the binary refuses the command {rotator.get('command')}: {help_run.stderr.strip()}")
    return problems


def check_schedule(schedule: dict[str, Any], task: dict[str, Any]) -> list[str]:
    problems = []
    target = schedule["Target"]
    arn = target["EcsParameters"]["TaskDefinitionArn"]
    if not re.fullmatch(rf"arn:aws:ecs:[a-z0-9-]+:\d{{12}}:task-definition/{task['family']}(:\d+)?", arn):
        problems.append(f"schedule.json: {arn} is not the task definition {task['family']}")
    if schedule["ScheduleExpression"] not in ("cron(0/30 * * * ? *)", "rate(30 minutes)"):
        problems.append("schedule.json: the schedule must run every 30 minutes")
    window = schedule["FlexibleTimeWindow"]
    if window["Mode"] == "FLEXIBLE" and window.get("MaximumWindowInMinutes", 0) > 10:
        problems.append("schedule.json: a flexible window above 10 minutes crowds the next run")
    if target["EcsParameters"].get("LaunchType") != "FARGATE":
        problems.append("schedule.json: the task definition is for Fargate")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    options = parser.parse_args()

    task = json.loads((ECS / "task-definition.json").read_text())
    schedule = json.loads((ECS / "schedule.json").read_text())
    access_point = json.loads((ECS / "efs-access-point.json").read_text())
    checks = {
        "task-definition.json is RegisterTaskDefinition input": validate_input("ecs", "RegisterTaskDefinition", task),
        "schedule.json is CreateSchedule input": validate_input("scheduler", "CreateSchedule", schedule),
        "efs-access-point.json is CreateAccessPoint input": validate_input("efs", "CreateAccessPoint", access_point),
        "the task's settings and its config delivery": check_task(task, access_point, options.binary),
        "the schedule starts the task every 30 minutes": check_schedule(schedule, task),
    }
    # The model validation must be able to fail.
    broken = json.loads(json.dumps(task))
    broken["containerDefinitions"][1]["stopTimeOut"] = 30
    checks["self-test: a misspelt key is refused"] = (
        [] if validate_input("ecs", "RegisterTaskDefinition", broken) else ["a misspelt key passed"]
    )
    failed = 0
    for name, problems in checks.items():
        print(("ok   " if not problems else "FAIL ") + name)
        for problem in problems:
            print(f"     - {problem}")
        failed += bool(problems)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
