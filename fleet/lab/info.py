"""What the lab API reports: frozen snapshots of a lab and its guests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GuestInfo:
    name: str  # h1, h2, ... (the inventory's host name)
    ipv4: str  # the guest's private address inside the lab, e.g. 172.31.0.11
    ssh_port: int  # forwarded port on 127.0.0.1 (0 while not yet known)
    pid: int | None  # QEMU's PID
    running: bool


@dataclass(frozen=True)
class LabInfo:
    name: str
    workdir: Path
    netns: str
    inventory_dir: Path
    guests: tuple[GuestInfo, ...]
    forwarder_pid: int | None
