"""Ansible ad-hoc with the `raw` module (ansible-core): `ansible all -m raw -a '{{ bench_cmd }}'`.

The inventory (YAML) is generated from the bed, each host's command a host variable. forks 50;
ssh_args with curve25519 key exchange, no ControlMaster/ControlPersist (persistent masters would
carry connections from one run into the next); host keys checked against the bed's known_hosts;
no tty (`usetty` off: keeps stdout and stderr apart, as the other tools get them). The `oneline`
callback prints one line per host, which is parsed.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation, Outcome, count, python_env

NAME = "Ansible raw"
JOBS = BED_JOBS
FORKS = 50
_LINE = re.compile(r"^(\S+) \| (\S+)(?:!)? \| rc=(-?\d+) \| \(stdout\) ?(.*)$")


def ansible_binary() -> str | None:
    beside = Path(sys.executable).parent / "ansible"
    return str(beside) if beside.exists() else shutil.which("ansible")


def missing() -> str | None:
    if ansible_binary() is None:
        return "ansible-core is not installed (benchmarks/install)"
    return None


def invocation(ctx: Context) -> Invocation:
    return adhoc(ctx, home=None)


def adhoc(ctx: Context, home: Path | None) -> Invocation:
    """`home`: a lasting ANSIBLE_HOME with Ansible's own ControlPersist (its default ssh_args),
    or None for a fresh one per run and no masters."""
    persist = home is not None
    targets = {t.name: t for t in ctx.bench.targets}
    hosts = {s.host: {"ansible_host": targets[s.host].address, "ansible_port": targets[s.host].port,
                      "bench_cmd": s.command} for s in ctx.sources}
    inventory = ctx.rundir / "inventory.yaml"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    if home is None:
        home = ctx.rundir / "ansible-home"
    home.mkdir(exist_ok=True)
    masters = ("-o ControlMaster=auto -o ControlPersist=600s" if persist else
               "-o ControlMaster=no -o ControlPath=none")
    config = ctx.rundir / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = python_env() | {
        "ANSIBLE_CONFIG": str(config), "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_FORKS": str(FORKS),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"),
        "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_REMOTE_USER": ctx.bench.user,
        "ANSIBLE_PRIVATE_KEY_FILE": str(ctx.bench.key), "ANSIBLE_TIMEOUT": "30",
        "ANSIBLE_SSH_ARGS": " ".join([
            masters, "-o KexAlgorithms=curve25519-sha256",
            f"-o UserKnownHostsFile={ctx.bench.known_hosts}",
            "-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes"]),
        "ANSIBLE_SSH_USETTY": "False", "ANSIBLE_STDOUT_CALLBACK": "oneline",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "True", "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_SYSTEM_WARNINGS": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent", "ANSIBLE_RETRY_FILES_ENABLED": "False"}
    binary = ansible_binary() or "ansible"
    argv = [*ctx.bench.prefix, sys.executable, binary, "all", "-i", str(inventory),
            "-m", "raw", "-a", json.dumps({"_raw_params": "{{ bench_cmd }}"}), "-f", str(FORKS)]

    def collect(measured: object) -> Outcome:
        per_host: dict[str, tuple[str | None, int | None, str | None]] = {}
        for line in getattr(measured, "stdout", "").splitlines():
            match = _LINE.match(line)
            if match:
                name, state, rc, stdout = match.groups()
                output = stdout.replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t")
                per_host[name] = (output, int(rc), None if state in ("CHANGED", "SUCCESS")
                                  else f"{state} rc={rc}")
            elif " | UNREACHABLE" in line or " | FAILED" in line:
                name = line.split(" | ", 1)[0]
                per_host[name] = (None, None, line[:300])
        return count(ctx, per_host)

    return Invocation(argv, collect, env)
