"""The no-SSH floor: the same command run in every host's namespace at once, without SSH.

`ip netns exec hN sh -c CMD` for every host, all started together from one event loop. What it
measures is the probe itself (and process start-up); its CPU column includes the probes' own CPU,
which for the SSH tools is on the target side instead.
"""

from __future__ import annotations

import asyncio

from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation, driver_invocation, load_spec, write_results

NAME = "no-SSH floor"
JOBS = BED_JOBS


def missing() -> str | None:
    return None


def invocation(ctx: Context) -> Invocation:
    return driver_invocation(ctx, "floor", local=True)


async def _one(host: dict) -> tuple[str, dict]:
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", host["netns"], "sh", "-c", host["command"],
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    return host["name"], {"exit": process.returncode, "output": output.decode(errors="replace"),
                          "error": None}


async def _all(spec: dict) -> dict:
    return dict(await asyncio.gather(*(_one(h) for h in spec["hosts"])))


def main() -> None:
    spec = load_spec()
    write_results(spec, asyncio.run(_all(spec)))


if __name__ == "__main__":
    main()
