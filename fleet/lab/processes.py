"""Processes the lab started: liveness and stopping, always by PID, guarded by a marker in the command line.

The marker (a path unique to the lab's workdir) keeps a recycled PID from ever being
mistaken for one of ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OwnedProcess:
    pid: int
    marker: str  # a string that the process's command line must contain


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _is_zombie(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rpartition(")")[2].split()[0] in ("Z", "X")


def is_alive(process: OwnedProcess) -> bool:
    """True when the PID runs and is still the process we started (its command line has the marker)."""
    cmdline = _cmdline(process.pid)
    return cmdline is not None and process.marker in cmdline and not _is_zombie(process.pid)


def _reap(pid: int) -> None:
    # ChildProcessError: not our child (a daemonized QEMU, or started by another process's `up`)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(processes: Iterable[OwnedProcess], *, grace: float = 10.0) -> list[OwnedProcess]:
    """SIGTERM every live one, wait up to `grace` seconds, then SIGKILL the rest and wait for them.

    Returns the ones still alive after all that (normally none).
    """
    live = [process for process in processes if is_alive(process)]
    stopping = list(live)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
        deadline = time.monotonic() + wait
        while live and time.monotonic() < deadline:
            for process in live:
                _reap(process.pid)
            live = [process for process in live if is_alive(process)]
            if live:
                time.sleep(0.05)
        if not live:
            break
    if not live:
        _await_reaping(stopping, timeout=2.0)
    return live


def _await_reaping(processes: list[OwnedProcess], *, timeout: float) -> None:
    """Give init a moment to reap our dead daemons, so no zombie of ours lingers in `ps`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p.pid}").exists() for p in processes):
        time.sleep(0.05)
