"""Run `true` on every host (the benchmark's "one command on every host" job)."""

from __future__ import annotations

from nornir.core.task import Result

from fleet.core.runner import HostRun


async def run(host: HostRun) -> Result:
    await host.run("true", check=True)
    return host.result({"summary": "true"})
