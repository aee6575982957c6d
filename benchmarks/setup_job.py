"""The setup job: `fleet run setup` on the QEMU lab's guests (real kernels with sit) against a
hand-written asyncssh script sending the same commands (peers/asyncssh_setup.py).

The lab comes up once (`fleet.lab.up`); before every measured run `fleet run teardown` removes
sit1 again (not timed), so each run configures fresh tunnels. The lab goes down at the end, also on
failure and Ctrl-C. Both tools reach the guests the same way: the lab's forwarder on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.measure import run_measured
from benchmarks.peers import REPO, python_env

TOOLS = ("fleet", "asyncssh script")


def unavailable() -> str | None:
    from fleet.lab import check_prerequisites

    problems = check_prerequisites()
    return "; ".join(problems) if problems else None


def _commands(inventory_dir: Path) -> tuple[list[dict], dict]:
    from fleet.core.privilege import privileged
    from fleet.core.sections import section
    from fleet.inventory import load_inventory
    from fleet.tunnel.iproute import ABSENT
    from fleet.tunnel.plan import DesiredTunnel, plan
    from fleet.tunnel.preflight import FACTS_SCRIPT
    from fleet.tunnel.scripts import apply_script, read_state_script

    inventory = load_inventory(inventory_dir)
    read = "\n".join([section("facts"), FACTS_SCRIPT, read_state_script()])
    hosts, auth = [], {}
    for host in inventory.hosts:
        steps = plan(ABSENT, DesiredTunnel.for_host(host))
        hosts.append({"name": host.name, "address": host.ssh_host, "port": host.ssh_port,
                      "read": read, "apply": privileged(apply_script(steps, ABSENT))})
        options = dict(host.ssh_options)
        auth = {"user": host.username or "root", "key": str(options["client_keys"][0]),
                "known_hosts": str(options["known_hosts"])}
    return hosts, auth


def run_setup_job(*, guests: int, runs: int, workdir: Path, rss_interval: float,
                  record: Callable[[dict], None], say: Callable[[str], None]) -> None:
    from fleet import lab

    labdir = workdir / "lab"
    say(f"setup: booting {guests} QEMU guests (software emulation; not timed)")
    started = time.monotonic()
    info = lab.up(guests, workdir=labdir, name="bench")
    say(f"setup: lab up in {time.monotonic() - started:.1f} s")
    try:
        hosts, auth = _commands(info.inventory_dir)
        env = python_env()
        # Untimed warm-up: right after boot the emulated guests are still settling.
        subprocess.run([sys.executable, "-m", "fleet", "run", "setup", "-i", str(info.inventory_dir),
                        "--no-progress"], capture_output=True, env=env, cwd=REPO, timeout=300)
        for run in range(runs):
            order = TOOLS if run % 2 == 0 else TOOLS[::-1]
            for tool in order:
                rundir = workdir / f"setup-{run}-{tool.replace(' ', '_')}"
                rundir.mkdir(parents=True)
                teardown = subprocess.run(
                    [sys.executable, "-m", "fleet", "run", "teardown", "-i",
                     str(info.inventory_dir), "--no-progress"],
                    capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
                if teardown.returncode != 0:
                    raise RuntimeError(f"teardown between runs failed: {teardown.stdout[-500:]}"
                                       f"{teardown.stderr[-500:]}")
                if tool == "fleet":
                    report = rundir / "fleet.json"
                    argv = [sys.executable, "-m", "fleet", "run", "setup", "-i",
                            str(info.inventory_dir), "--json", str(report), "--no-progress"]
                else:
                    report = rundir / "results.json"
                    spec = rundir / "spec.json"
                    spec.write_text(json.dumps({"hosts": hosts, **auth, "results": str(report)}))
                    argv = [sys.executable, "-m", "benchmarks.peers.asyncssh_setup", str(spec)]
                measured = run_measured(argv, cwd=REPO, env=env, timeout=600,
                                        rss_interval=rss_interval, stdout_file=rundir / "stdout")
                ok, errors = _count(tool, report)
                record({"job": "setup", "tool": tool, "run": run + 1, "wall_s": measured.wall_s,
                        "cpu_s": measured.cpu_s, "rss_tree_mb": measured.rss_tree_mb,
                        "rss_one_mb": measured.rss_one_mb, "target_cpu_s": None,
                        "relay_cpu_s": None, "ok": ok, "expected": guests,
                        "returncode": measured.returncode, "note": "QEMU guests, forwarder",
                        "errors": errors[:5]})
    finally:
        say("setup: bringing the lab down")
        lab.down(workdir=labdir)


def _count(tool: str, report: Path) -> tuple[int, list[str]]:
    try:
        document = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        return 0, [f"no report: {exc}"]
    if tool == "fleet":
        summary = document.get("summary", {})
        errors = [f"{h['name']}: {h['error']}" for h in document.get("hosts", []) if h.get("error")]
        return int(summary.get("changed", 0)), errors
    ok = sum(1 for r in document.values() if r.get("exit") == 0)
    errors = [f"{name}: {r['error']}" for name, r in document.items() if r.get("error")]
    return ok, errors
