"""Nornir's threaded runner with nornir-paramiko's `paramiko_command`, as a Nornir user would.

50 worker threads; SimpleInventory generated from the bed; key authentication with the bed's key.
nornir-paramiko sets paramiko's AutoAddPolicy: host keys are NOT checked (the plugin has no option
for it). Key exchange: paramiko's own preference (curve25519 first where available).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation, driver_invocation, load_spec, write_results

NAME = "Nornir+paramiko"
JOBS = BED_JOBS
WORKERS = 50


def missing() -> str | None:
    try:
        import nornir  # noqa: F401
        import nornir_paramiko  # noqa: F401
    except ImportError:
        return "nornir-paramiko is not installed (benchmarks/install)"
    return None


def invocation(ctx: Context) -> Invocation:
    return driver_invocation(ctx, "nornir_paramiko", workers=WORKERS)


def main() -> None:
    from nornir import InitNornir
    from nornir.core.task import Result, Task
    from nornir_paramiko.plugins.tasks import paramiko_command

    spec = load_spec()
    directory = Path(spec["results"]).parent / "nornir-inventory"
    directory.mkdir(exist_ok=True)
    hosts = {h["name"]: {"hostname": h["address"], "port": h["port"], "username": spec["user"],
                         "data": {"command": h["command"]}} for h in spec["hosts"]}
    (directory / "hosts.yaml").write_text(json.dumps(hosts))
    (directory / "defaults.yaml").write_text(json.dumps({"connection_options": {"paramiko": {
        "extras": {"key_filename": spec["key"], "look_for_keys": False, "allow_agent": False,
                   "timeout": 30}}}}))
    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": spec["workers"]}},
        inventory={"plugin": "SimpleInventory", "options": {
            "host_file": str(directory / "hosts.yaml"),
            "defaults_file": str(directory / "defaults.yaml")}},
        logging={"enabled": False})

    def command(task: Task) -> Result:
        return paramiko_command(task, task.host.data["command"])

    outcome = nr.run(task=command)
    nr.close_connections()
    results = {}
    for name, multi in outcome.items():
        result = multi[0]
        if result.failed:
            exc = result.exception
            stdout = getattr(exc, "stdout", None)
            results[name] = {"exit": getattr(exc, "exit_status", None), "output": stdout,
                             "error": f"{type(exc).__name__}: {exc}"}
        else:
            results[name] = {"exit": 0, "output": (result.stdout or "") + (result.stderr or ""),
                             "error": None}
    write_results(spec, results)


if __name__ == "__main__":
    main()
