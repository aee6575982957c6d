"""The lab's state file (<workdir>/lab.json): what `up` started, so `status` and `down` can find it.

Written before anything starts and updated as things start, so a half-failed `up` (or one
killed outright) still leaves enough behind for `down` to clean up.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fleet.lab.errors import LabError

STATE_FILE = "lab.json"
FORMAT = 1
# Everything the lab writes in a workdir; `down` removes exactly these.
OWNED_ENTRIES = (STATE_FILE, "keys", "guests", "forwarder", "inventory")


@dataclass(frozen=True)
class GuestRecord:
    name: str
    ipv4: str  # with prefix length, e.g. 172.31.0.11/24
    ssh_port: int = 0
    pid: int | None = None  # QEMU's, once started (QEMU deletes its PID file when it exits)


@dataclass(frozen=True)
class LabState:
    name: str
    netns: str
    guests: tuple[GuestRecord, ...]
    netns_owned: bool = False  # set once `up` itself created the namespace: only then may `down` delete it
    forwarder_pid: int | None = None
    kernel_version: str = ""
    format: int = field(default=FORMAT)


def state_path(workdir: Path) -> Path:
    return workdir / STATE_FILE


def _encode(state: LabState) -> str:
    return json.dumps(asdict(state), indent=1) + "\n"


def claim(workdir: Path, state: LabState) -> None:
    """Write the first state of a new lab; LabError if a lab already lives in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with open(state_path(workdir), "x") as handle:
            handle.write(_encode(state))
    except FileExistsError:
        existing = load_state(workdir)
        label = f" ({existing.name!r})" if existing else ""
        raise LabError(f"a lab{label} is already up in {workdir}: bring it down first "
                       "(fleet lab down)") from None


def save_state(workdir: Path, state: LabState) -> None:
    temporary = state_path(workdir).with_name(STATE_FILE + ".tmp")
    temporary.write_text(_encode(state))
    os.replace(temporary, state_path(workdir))


def load_state(workdir: Path) -> LabState | None:
    """The lab recorded in `workdir`, or None when there is none."""
    path = state_path(workdir)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"{path}: unreadable lab state: {exc}") from exc
    try:
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        guests = tuple(GuestRecord(**guest) for guest in raw.pop("guests"))
        return LabState(guests=guests, **raw)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise LabError(f"{path}: invalid lab state: {exc}") from exc
