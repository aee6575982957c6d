"""A plain asyncssh script: the baseline fleet should beat or match.

One event loop; every host at once, at most `connecting` (20, fleet's default) SSH handshakes in
flight; curve25519 key exchange; host keys checked against the bed's known_hosts; one command per
host; no inventory, no Nornir, no reporting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation, driver_invocation, load_spec, write_results

NAME = "asyncssh script"
JOBS = BED_JOBS
CONNECTING = 20


def missing() -> str | None:
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        return "asyncssh is not installed"
    return None


def invocation(ctx: Context) -> Invocation:
    return driver_invocation(ctx, "asyncssh_baseline", connecting=CONNECTING)


async def connect(spec: dict, host: dict, connecting: asyncio.Semaphore, timeout: float) -> Any:
    """Log in as every asyncssh baseline does: the bed's key, host keys checked, curve25519."""
    import asyncssh

    async with connecting:
        return await asyncio.wait_for(asyncssh.connect(
            host["address"], port=host["port"], username=spec["user"],
            client_keys=[spec["key"]], known_hosts=spec["known_hosts"],
            kex_algs=["curve25519-sha256"], agent_path=None), timeout)


async def _one(spec: dict, host: dict, connecting: asyncio.Semaphore) -> dict:
    conn = await connect(spec, host, connecting, 30)
    async with conn:
        done = await conn.run(host["command"], check=False, timeout=120)
    return {"exit": done.exit_status, "output": str(done.stdout) + str(done.stderr), "error": None}


async def on_every_host(spec: dict, one: Callable[[dict, dict, asyncio.Semaphore], Awaitable[dict]],
                        connecting: int) -> dict:
    """`one(spec, host, handshakes)` on every host of the spec at once, at most `connecting`
    handshakes in flight: host name -> its result, or the error that stopped it."""
    handshakes = asyncio.Semaphore(connecting)

    async def guarded(host: dict) -> tuple[str, dict]:
        try:
            return host["name"], await one(spec, host, handshakes)
        except Exception as exc:  # a failure belongs to one host
            return host["name"], {"exit": None, "output": None, "error": f"{type(exc).__name__}: {exc}"}

    return dict(await asyncio.gather(*(guarded(h) for h in spec["hosts"])))


def main() -> None:
    spec = load_spec()
    write_results(spec, asyncio.run(on_every_host(spec, _one, spec["connecting"])))


if __name__ == "__main__":
    main()
