"""`fleet persist status|stop`: look at or stop the process keeping connections (like `ssh -O`).

They talk to the socket only after the checks a run makes: the directory is this user's and mode
0700, the socket is this user's, and the process answering is this user's (SO_PEERCRED). Anything
else is refused (exit 2) and named, never talked to.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from fleet.core.terminal import printable
from fleet.ssh.persist import wire
from fleet.ssh.persist.client import reach

EXIT_REFUSED = 2


async def _ask(directory: Path, op: str) -> dict[str, Any] | None:
    """The daemon's answer to `op`, None when none runs. Raises PersistRefused."""
    try:
        wire.check_runtime_dir(directory)
    except FileNotFoundError:
        return None
    try:
        link = await reach(directory, any_version=True)
    except wire.PersistRefused:
        raise
    except wire.PersistError:
        return None
    try:
        return await link.request({"op": op}, timeout=10)
    except wire.PersistError:
        return None
    finally:
        await link.close()


def _refused(exc: wire.PersistRefused, err: TextIO) -> int:
    err.write(f"fleet persist: refused: {exc}\n")
    return EXIT_REFUSED


def status(directory: Path, out: TextIO, *, as_json: bool, err: TextIO | None = None) -> int:
    """Print what is kept; 0 when a process runs, 1 when none does (as `ssh -O check`), 2 when the
    directory, socket or process is not this user's alone."""
    try:
        answer = asyncio.run(_ask(directory, "status"))
    except wire.PersistRefused as exc:
        return _refused(exc, err or sys.stderr)
    if as_json:
        out.write(json.dumps(answer or {"running": False, "dir": str(directory)}, indent=1) + "\n")
        return 0 if answer else 1
    if answer is None:
        out.write(f"no persistent connections (nothing running at {directory / wire.SOCKET_NAME})\n")
        return 1
    connections = answer.get("connections", [])
    out.write(f"persistent connections: pid {answer['pid']}, kept {answer['idle']:g} s after the "
              f"last run, {len(connections)} connection(s), socket {directory / wire.SOCKET_NAME}\n")
    for c in sorted(connections, key=lambda c: c["host"]):
        state = "retired" if c.get("retired") else "open" if c["open"] else "closed"
        shell = str(c.get("shell", "none"))  # a daemon of an older fleet does not say
        out.write(f"  {c['host']:<16} {c['target']:<32} {state:<7} age {c['age']:>7.1f} s  "
                  f"idle {c['idle']:>7.1f} s  runs {c['runs']}  shell {printable(shell)}\n")
    return 0


def stop(directory: Path, out: TextIO, *, err: TextIO | None = None) -> int:
    """Close every kept connection and stop the process (2 when refused, as for status)."""
    try:
        answer = asyncio.run(_ask(directory, "stop"))
    except wire.PersistRefused as exc:
        return _refused(exc, err or sys.stderr)
    out.write("stopped persistent connections\n" if answer else
              "no persistent connections to stop\n")
    return 0
