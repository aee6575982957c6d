"""Driving the lab's QEMU guests from tests: the `fleet` CLI against a lab, and plain asyncssh
(outside fleet) to look at a guest or to break it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from conftest import load_yaml
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


def lab_view(lab: LabInfo, guests: int, directory: Path) -> LabInfo:
    """The lab seen through an inventory of its first `guests` guests (h1..hN) written in
    `directory`: the lab's own groups and defaults (its key and known_hosts), hosts.yaml cut
    down. The other guests keep running, out of this view's sight."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("groups.yaml", "defaults.yaml"):
        shutil.copy(lab.inventory_dir / name, directory / name)
    seen = lab.guests[:guests]
    hosts = load_yaml(lab.inventory_dir / "hosts.yaml")
    with (directory / "hosts.yaml").open("w") as out:
        YAML(typ="safe").dump({guest.name: hosts[guest.name] for guest in seen}, out)
    return dataclasses.replace(lab, inventory_dir=directory, guests=seen)


def on_guests(lab: LabInfo, guests: list[str], command: str) -> dict[str, object]:
    """Run a command on several guests at once with plain asyncssh, outside fleet:
    {guest: its SSHCompletedProcess}."""
    import asyncssh

    hosts = load_yaml(lab.inventory_dir / "hosts.yaml")
    extras = load_yaml(lab.inventory_dir / "defaults.yaml")["connection_options"]["asyncssh"]["extras"]

    async def run(guest: str) -> object:
        async with asyncssh.connect("127.0.0.1", port=hosts[guest]["port"], username="root",
                                    client_keys=extras["client_keys"],
                                    known_hosts=extras["known_hosts"]) as conn:
            return await conn.run(command, check=False)

    async def run_all() -> list[object]:
        return await asyncio.gather(*(run(guest) for guest in guests))

    return dict(zip(guests, asyncio.run(run_all()), strict=True))


def on_guest(lab: LabInfo, guest: str, command: str) -> object:
    """Run a command on a guest with plain asyncssh, outside fleet, to check or break things."""
    return on_guests(lab, [guest], command)[guest]


def link_json(lab: LabInfo, guest: str) -> dict | None:
    """The guest's sit1 as the kernel shows it (`ip -j -d link`), None when there is none."""
    done = on_guest(lab, guest, "ip -j -d link show dev sit1")
    return json.loads(done.stdout)[0] if done.exit_status == 0 else None  # type: ignore[attr-defined]


def global_addresses(lab: LabInfo, guest: str) -> set[str]:
    done = on_guest(lab, guest, "ip -j addr show dev sit1")
    return {f"{a['local']}/{a['prefixlen']}" for d in json.loads(done.stdout or "[]")  # type: ignore[attr-defined]
            for a in d.get("addr_info", []) if a.get("scope") == "global"}
