"""Remove the ISATAP tunnel sit1 and nothing else."""

from __future__ import annotations

from nornir.core.task import Result

from fleet.runner import HostRun
from fleet.tunnel import TUNNEL_NAME, teardown_script


async def run(host: HostRun) -> Result:
    present = (await host.run(f"ip link show dev {TUNNEL_NAME} >/dev/null 2>&1 && echo present "
                              "|| echo absent", check=True)).stdout.strip() == "present"
    if not present:
        return host.result({"removed": False, "summary": f"no {TUNNEL_NAME}"})
    if host.dry_run:
        return host.result({"removed": False, "dry_run": True,
                            "summary": f"would remove {TUNNEL_NAME}"}, changed=True)
    done = await host.run(teardown_script(), as_root=True, check=True)
    removed = done.stdout.strip() == "removed"
    return host.result({"removed": removed,
                        "summary": f"removed {TUNNEL_NAME}" if removed else f"no {TUNNEL_NAME}"},
                       changed=removed)
