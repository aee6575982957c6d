"""`fleet persist status|stop`: look at or stop the process keeping connections (like `ssh -O`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, TextIO

from fleet.persist import wire
from fleet.persist.client import reach


async def _ask(directory: Path, op: str) -> dict[str, Any] | None:
    try:
        link = await reach(directory)
    except wire.PersistError:
        return None
    try:
        return await link.request({"op": op}, timeout=10)
    finally:
        await link.close()


def status(directory: Path, out: TextIO, *, as_json: bool) -> int:
    """Print what is kept; 0 when a process runs, 1 when none does (as `ssh -O check`)."""
    answer = asyncio.run(_ask(directory, "status"))
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
        state = "open" if c["open"] else "closed"
        out.write(f"  {c['host']:<16} {c['target']:<32} {state:<6} age {c['age']:>7.1f} s  "
                  f"idle {c['idle']:>7.1f} s  runs {c['runs']}\n")
    return 0


def stop(directory: Path, out: TextIO) -> int:
    """Close every kept connection and stop the process."""
    answer = asyncio.run(_ask(directory, "stop"))
    out.write("stopped persistent connections\n" if answer else
              "no persistent connections to stop\n")
    return 0
