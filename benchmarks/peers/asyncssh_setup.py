"""The setup job's baseline: a hand-written asyncssh script sending the commands `fleet run setup`
sends to a fresh guest: one command that reads the facts and the tunnel's state, then the apply
script (create sit1, address, MTU, up, read back). No planning, no parsing beyond exit statuses.

Run as `python -m benchmarks.peers.asyncssh_setup SPEC.json`; the spec carries each host's
address, port and both commands (generated from fleet's own tunnel module, so the text is
identical), the key and known_hosts.
"""

from __future__ import annotations

import asyncio

from benchmarks.peers import load_spec, write_results
from benchmarks.peers.asyncssh_baseline import connect, on_every_host

CONNECTING = 20


async def _one(spec: dict, host: dict, connecting: asyncio.Semaphore) -> dict:
    conn = await connect(spec, host, connecting, 60)
    async with conn:
        read = await conn.run(host["read"], check=False, timeout=120)
        if read.exit_status != 0:
            return {"exit": read.exit_status, "output": str(read.stderr), "error": "reading the state failed"}
        applied = await conn.run(host["apply"], check=False, timeout=120)
    return {"exit": applied.exit_status, "output": str(applied.stdout),
            "error": None if applied.exit_status == 0 else str(applied.stderr)[-300:]}


def main() -> None:
    spec = load_spec()
    write_results(spec, asyncio.run(on_every_host(spec, _one, CONNECTING)))


if __name__ == "__main__":
    main()
