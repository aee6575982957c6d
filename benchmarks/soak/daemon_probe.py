"""fleet's persistent-connection daemon, unchanged, with a window for the soak to look through.

`python -m benchmarks.soak.daemon_probe --dir DIR --idle SECONDS --report FILE` runs
`fleet.ssh.persist.daemon.serve(DIR, SECONDS)` exactly as `fleet run --persist` would start it, and on
SIGUSR1 writes what only the process itself can see to FILE (atomically, with a sequence number):
its asyncio tasks, and for each kept connection the SSH channels asyncssh still has open on it
besides the shell kept for the mesh's probe.
Started before the first run, it is the daemon every `fleet run --persist` of DIR then uses.

The channel count reads asyncssh's connection table (`_channels`), a private attribute: a
measuring instrument's licence, guarded so that a change in asyncssh shows as `null`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from fleet.core.oslimits import raise_open_file_limit
from fleet.ssh.persist import daemon as fleet_daemon


def _channels(pooled: Any) -> int | None:
    """The channels open on a kept connection besides its kept shell's (fleet.ssh.kept_shell:
    one a connection, open between runs by design)."""
    session = getattr(pooled, "session", None)
    table = getattr(getattr(session, "_connection", None), "_channels", None)
    if not isinstance(table, dict):
        return None
    shell = getattr(session, "_shell", None)
    return len(table) - (1 if shell is not None and shell.alive else 0)


def snapshot(sequence: int) -> dict[str, Any]:
    daemons = [o for o in gc.get_objects() if isinstance(o, fleet_daemon.Daemon)]
    pool = list(daemons[0].pool.values()) if daemons else []
    channels = [_channels(p) for p in pool]
    return {"sequence": sequence, "pid": os.getpid(),
            "tasks": len(asyncio.all_tasks()),
            "clients": daemons[0]._clients if daemons else None,
            "pooled": len(pool), "open": sum(1 for p in pool if not p.session.closed),
            "channels": None if None in channels else sum(c or 0 for c in channels),
            "channels_per_host": {p.spec.name: c for p, c in zip(pool, channels) if c}}


async def _serve(directory: Path, idle: float, report: Path) -> int:
    loop = asyncio.get_running_loop()
    sequence = 0

    def write() -> None:
        nonlocal sequence
        sequence += 1
        temporary = report.with_name(report.name + ".tmp")
        temporary.write_text(json.dumps(snapshot(sequence)))
        os.replace(temporary, report)

    loop.add_signal_handler(signal.SIGUSR1, write)
    return await fleet_daemon.serve(directory, idle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak.daemon_probe")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--idle", type=float, default=600.0)
    parser.add_argument("--report", type=Path, required=True)
    options = parser.parse_args(argv)
    raise_open_file_limit()
    return asyncio.run(_serve(options.dir, options.idle, options.report))


if __name__ == "__main__":
    sys.exit(main())
