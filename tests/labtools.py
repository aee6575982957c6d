"""Driving the lab's QEMU guests from tests: the `fleet` CLI against a lab, and plain asyncssh
(outside fleet) to look at a guest or to break it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

from ruamel.yaml import YAML

from fleet.lab import LabInfo


def fleet(lab: LabInfo, *args: object, timeout: float = 180, env: dict[str, str] | None = None,
          inventory: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet", *map(str, args), "-i",
                           inventory or lab.inventory_dir, "--connect-timeout", "8"],
                          capture_output=True, text=True, timeout=timeout, env=env)


def fleet_json(lab: LabInfo, tmp_path: Path, *args: object,
               **kwargs: object) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = tmp_path / f"report-{uuid.uuid4().hex[:6]}.json"
    done = fleet(lab, *args, "--json", report, **kwargs)  # type: ignore[arg-type]
    return done, json.loads(report.read_text())


def on_guest(lab: LabInfo, guest: str, command: str) -> object:
    """Run a command on a guest with plain asyncssh, outside fleet, to check or break things."""
    import asyncssh

    inventory = lab.inventory_dir
    yaml = YAML(typ="safe")
    hosts = yaml.load((inventory / "hosts.yaml").read_text())
    extras = yaml.load((inventory / "defaults.yaml").read_text())["connection_options"]["asyncssh"]["extras"]

    async def run():
        async with asyncssh.connect("127.0.0.1", port=hosts[guest]["port"], username="root",
                                    client_keys=extras["client_keys"],
                                    known_hosts=extras["known_hosts"]) as conn:
            return await conn.run(command, check=False)

    return asyncio.run(run())


def link_json(lab: LabInfo, guest: str) -> dict | None:
    """The guest's sit1 as the kernel shows it (`ip -j -d link`), None when there is none."""
    done = on_guest(lab, guest, "ip -j -d link show dev sit1")
    return json.loads(done.stdout)[0] if done.exit_status == 0 else None  # type: ignore[attr-defined]


def global_addresses(lab: LabInfo, guest: str) -> set[str]:
    done = on_guest(lab, guest, "ip -j addr show dev sit1")
    return {f"{a['local']}/{a['prefixlen']}" for d in json.loads(done.stdout or "[]")  # type: ignore[attr-defined]
            for a in d.get("addr_info", []) if a.get("scope") == "global"}
