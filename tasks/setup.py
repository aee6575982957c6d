"""Configure the ISATAP tunnel sit1 on every host, changing only what differs.

sit1: mode isatap, local = the host's ipv4, its ISATAP address /64, MTU 1480, link up.
"""

from __future__ import annotations

from nornir.core.task import Result

from fleet.errors import CommandError, PreflightError
from fleet.hostfacts import FACTS_SCRIPT, parse_facts, preflight_problems
from fleet.iproute import parse_tunnel
from fleet.runner import HostRun
from fleet.sections import section, split_sections
from fleet.tunnel import DesiredTunnel, apply_script, creates_tunnel, plan, read_state_script

KERNEL_LACKS_SIT = ("No such device", "Unknown device type")


async def run(host: HostRun) -> Result:
    desired = DesiredTunnel.for_host(host.host)
    probe = await host.run("\n".join([section("facts"), FACTS_SCRIPT, read_state_script()]),
                           check=True)
    parts = split_sections(probe.stdout)
    facts = parse_facts(parts.get("facts", ""))
    before = parse_tunnel(parts.get("link", ""), parts.get("addr", ""))
    steps = plan(before, desired)
    problems = preflight_problems(facts, need_sit=creates_tunnel(steps), need_ping=True,
                                  need_root=bool(steps))
    if problems:
        raise PreflightError(host.name, "; ".join(problems))

    details = {"ipv4": str(host.host.ipv4), "address": str(desired.address),
               "before": before.describe(), "changes": [s.description for s in steps],
               "commands": [s.command for s in steps]}
    if not steps:
        return host.result({**details, "after": before.describe(),
                            "summary": f"sit1 {before.describe()}"})
    if host.dry_run:
        return host.result({**details, "after": None, "dry_run": True,
                            "summary": "would " + "; ".join(s.description for s in steps)},
                           changed=True, diff="\n".join(s.command for s in steps))

    applied = await host.run(apply_script(steps), as_root=True)
    if not applied.ok:
        reason = applied.last_words
        if any(marker in applied.stderr for marker in KERNEL_LACKS_SIT):
            raise PreflightError(host.name, f"the kernel lacks sit/ISATAP support "
                                 f"({reason})")
        if "Operation not permitted" in applied.stderr:
            raise PreflightError(host.name, f"no privilege to configure the tunnel ({reason})")
        raise CommandError(host.name, f"configuring sit1 failed, changes rolled back: {reason}",
                           command=applied.command, exit_status=applied.exit_status,
                           stdout=applied.stdout, stderr=applied.stderr)
    after_parts = split_sections(applied.stdout)
    after = parse_tunnel(after_parts.get("link", ""), after_parts.get("addr", ""))
    left = plan(after, desired)
    if left:
        raise CommandError(host.name, "sit1 still differs after the change: "
                           + "; ".join(s.description for s in left), command=applied.command)
    return host.result({**details, "after": after.describe(),
                        "summary": "; ".join(s.description for s in steps)},
                       changed=True, diff="\n".join(s.command for s in steps))
