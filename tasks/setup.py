"""Configure the ISATAP tunnel sit1 on every host, changing only what differs.

sit1: mode isatap, local = the host's ipv4, its ISATAP address /64, MTU 1480, link up, marked as
fleet's (its alias). An ISATAP sit1 made by hand with the right local is adopted in place; any
other sit1 is refused and left untouched unless --replace is given.
"""

from __future__ import annotations

from typing import Any

from nornir.core.task import Result

from fleet.core.errors import (
    CommandError,
    CommandTimeoutError,
    HostError,
    PreflightError,
    PrivilegeError,
)
from fleet.core.runner import HostRun, host_task
from fleet.core.sections import section, split_sections
from fleet.core.task import TaskContext
from fleet.inventory import FleetHost
from fleet.tunnel.failures import host_failures
from fleet.tunnel.iproute import TunnelState
from fleet.tunnel.params import TunnelParams
from fleet.tunnel.plan import (
    DesiredTunnel,
    ForeignTunnel,
    Ownership,
    StateUnreadable,
    creates_tunnel,
    ownership,
    plan,
    skipped_routes,
)
from fleet.tunnel.preflight import FACTS_SCRIPT, parse_facts, preflight_error, preflight_problems
from fleet.tunnel.scripts import (
    apply_script,
    compared,
    failure_account,
    parse_apply,
    parse_state,
    read_state_script,
    went_stale,
)

KERNEL_LACKS_SIT = ("No such device", "Unknown device type")


Params = TunnelParams  # shared with teardown (its --replace), so it lives with the planner


def warnings(context: TaskContext) -> list[str]:
    """Before setup on an inventory from EC2: what blocks IP protocol 41 between its instances
    (fleet.aws.check, the same check as `fleet aws check`). Never raises: AWS trouble is a
    warning that the check could not run."""
    inventory: Any = context.inventory
    if inventory is None:
        return []
    from fleet.aws.check import has_ec2, protocol41_warnings  # no boto3 until AWS is asked

    return protocol41_warnings(inventory) if has_ec2(inventory) else []


@host_task
async def run(host: HostRun[FleetHost]) -> Result:
    desired = DesiredTunnel.for_host(host.host)
    probe = await host.run("\n".join([section("facts"), FACTS_SCRIPT, read_state_script()]),
                           check=True)
    parts = split_sections(probe.stdout)
    facts = parse_facts(parts.get("facts", ""))
    with host_failures(host.name, probe):
        before = parse_state(parts)
        steps = plan(before, desired, replace=host.params.replace)
    kept = [f"kept the host's own route {r.describe()}; not routing {r.dst} through "
            f"{desired.routers[0]} (set data.isatap_routes to choose prefixes)"
            for r in skipped_routes(before, desired)]
    problems = preflight_problems(facts, need_sit=creates_tunnel(steps), need_ping=True,
                                  need_root=bool(steps))
    if problems:
        raise preflight_error(host.name, problems)

    details = {"ipv4": str(host.host.ipv4), "address": str(desired.address),
               "before": before.describe(), "owner": ownership(before, desired).value,
               "changes": [s.description for s in steps], "commands": [s.command for s in steps],
               "routers": [str(r) for r in desired.routers],
               "routes": [str(r) for r in desired.routes], "kept_routes": kept}
    if not steps:
        return host.result({**details, "after": before.describe(),
                            "summary": "; ".join([f"sit1 {before.describe()}", *kept])})
    if host.dry_run:
        return host.result({**details, "after": None, "dry_run": True,
                            "summary": "would " + "; ".join(s.description for s in steps)},
                           changed=True, diff="\n".join(s.command for s in steps))

    try:
        applied = await host.run(apply_script(steps, before), as_root=True)
    except CommandTimeoutError as exc:  # stopped on the host: the script undid what it could
        raise CommandTimeoutError(host.name, f"configuring sit1: {exc.reason}; "
                                  f"{await _state_again(host, before)}", command=exc.command,
                                  stdout=exc.stdout, stderr=exc.stderr) from exc
    if went_stale(applied):
        raise CommandError(host.name, "sit1 changed between reading and changing it (another run "
                           "or another inventory name for this host?); nothing done, run again",
                           command=applied.command, exit_status=applied.exit_status)
    try:
        outcome = parse_apply(split_sections(applied.stdout))
    except StateUnreadable as exc:
        raise CommandError(host.name, f"configuring sit1: {exc}; its state is unknown",
                           command=applied.command, exit_status=applied.exit_status,
                           stdout=applied.stdout, stderr=applied.stderr) from None
    if not applied.ok:
        account = failure_account(steps, before, outcome)
        reason = applied.last_words
        if any(marker in applied.stderr for marker in KERNEL_LACKS_SIT) and creates_tunnel(steps):
            raise PreflightError(host.name, f"the kernel lacks sit/ISATAP support ({reason}); "
                                 f"{account}")
        if "Operation not permitted" in applied.stderr:
            raise PrivilegeError(host.name, f"no privilege to configure the tunnel ({reason}); "
                                 f"{account}")
        raise CommandError(host.name, f"configuring sit1 {account}: {reason}",
                           command=applied.command, exit_status=applied.exit_status,
                           stdout=applied.stdout, stderr=applied.stderr)
    try:
        left = plan(outcome.after, desired)
    except ForeignTunnel:
        left = ()
    if left or ownership(outcome.after, desired) is not Ownership.FLEETS:
        raise CommandError(host.name, "sit1 still differs after the change: "
                           + ("; ".join(s.description for s in left) or outcome.after.describe()),
                           command=applied.command)
    return host.result({**details, "after": outcome.after.describe(),
                        "summary": "; ".join([*(s.description for s in steps), *kept])},
                       changed=True, diff="\n".join(s.command for s in steps))


async def _state_again(host: HostRun[FleetHost], before: TunnelState) -> str:
    """What sit1 is now compared with before, read from the host again (never assumed)."""
    try:
        again = await host.run(read_state_script(), check=True)
        now = parse_state(split_sections(again.stdout))
    except (HostError, StateUnreadable) as exc:
        return f"its state could not be read again ({exc})"
    return compared(before, now)
