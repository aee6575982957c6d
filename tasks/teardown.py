"""Remove the ISATAP tunnel sit1 that fleet manages, and nothing else.

A sit1 that carries fleet's mark (or an unmarked ISATAP sit1 with this host's local, which setup
would adopt) is removed; any other sit1 is refused and left untouched unless --replace is given.
"Removed" is said only after reading the state again.
"""

from __future__ import annotations

from nornir.core.task import Result

from fleet.core.errors import CommandError
from fleet.core.runner import HostRun, host_task
from fleet.core.sections import split_sections
from fleet.inventory import FleetHost
from fleet.tunnel.failures import host_failures
from fleet.tunnel.params import TunnelParams
from fleet.tunnel.plan import TUNNEL_NAME, DesiredTunnel, StateUnreadable, removal
from fleet.tunnel.scripts import parse_state, read_state_script, remove_script, went_stale

Params = TunnelParams


@host_task
async def run(host: HostRun[FleetHost]) -> Result:
    desired = DesiredTunnel.for_host(host.host)
    # routes matter only to name what goes with an existing sit1
    probe = await host.run(read_state_script(routes_when_absent=False), check=True)
    with host_failures(host.name, probe):
        before = parse_state(split_sections(probe.stdout))
        step = removal(before, desired, replace=host.params.replace)
    if step is None:
        return host.result({"removed": False, "before": "absent", "summary": f"no {TUNNEL_NAME}"})
    if host.dry_run:
        return host.result({"removed": False, "dry_run": True, "before": before.describe(),
                            "summary": f"would {step.description}"}, changed=True,
                           diff=step.command)
    done = await host.run(remove_script(step, before), as_root=True)
    if went_stale(done):
        raise CommandError(host.name, f"{TUNNEL_NAME} changed between reading and removing it; "
                           "nothing done, run again", command=done.command,
                           exit_status=done.exit_status)
    try:
        after = parse_state(split_sections(done.stdout))
    except StateUnreadable as exc:
        raise CommandError(host.name, f"removing {TUNNEL_NAME}: {exc}", command=done.command,
                           exit_status=done.exit_status, stderr=done.stderr) from None
    if after.exists:
        raise CommandError(host.name, f"{TUNNEL_NAME} is still there after removing it "
                           f"({done.last_words}): {after.describe()}", command=done.command,
                           exit_status=done.exit_status, stderr=done.stderr)
    return host.result({"removed": True, "before": before.describe(),
                        "summary": f"removed {TUNNEL_NAME} (read again: absent)"}, changed=True)
