"""`fleet aws check`: does EC2 let protocol 41 through between the inventory's instances? A thin
layer over fleet.aws.check; boto3 is loaded only when the command runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fleet.cli.options import Commands, add_inventory_options, selected_hosts
from fleet.core.output import write_json
from fleet.core.results import EXIT_FAILED, EXIT_OK, EXIT_USAGE

EPILOG = """\
what is judged: every ordered pair of the inventory's instances, for the inventory's data.ipv4
(the tunnel's address). A pair it cannot judge (an instance not found, not running, in another
region, or whose data.ipv4 is not one of its private addresses) is listed with the reason and
makes the check fail, as does a check that judged no pair.

where --fix puts a rule (least privilege): on a security group every instance shares and
nothing outside the inventory is in, one rule letting 41 in from that group itself; otherwise
one rule per peer, from its data.ipv4/32, on a destination group only inventory instances are
in. A rule on a group that also holds others (instances or interfaces outside the inventory)
lets protocol 41 reach them too: --fix names them and changes nothing unless --yes is given.
If a rule fails (a group at its rule limit ...), --fix stops there and lists what it added.

exit codes: 0 every pair judged and allowed (after --fix: read again), 1 something blocked,
not judged, not fixed or refused, 2 usage, inventory or AWS error"""


def add_parser(commands: Commands) -> argparse.ArgumentParser:
    aws = commands.add_parser("aws", help="check AWS for what ISATAP needs (protocol 41)")
    actions = aws.add_subparsers(dest="aws_command", required=True, metavar="ACTION")
    checking = actions.add_parser(
        "check", help="do the security groups and network ACLs allow protocol 41 between the hosts?",
        description="Describe the inventory's EC2 instances (data.ec2.instance_id, data.ec2.region) "
        "with their security groups and network ACLs, and say for every pair what blocks "
        "protocol 41, with the aws command that fixes it. With an EC2 source (-i FILE.yaml) the "
        "calls use its profile and iam_role_arn, as the inventory did; otherwise boto3's "
        "default credentials (AWS_PROFILE ...).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inventory_options(checking)
    checking.add_argument("--fix", action="store_true", help="add the missing security group "
                          "rules, narrowest first (network ACL entries are only printed)")
    checking.add_argument("--yes", action="store_true", help="with --fix: also add rules to "
                          "groups that hold members outside the inventory (they are named)")
    checking.add_argument("--json", action="store_true", help="print JSON instead of text")
    return aws


def run(options: argparse.Namespace) -> int:
    inventory = selected_hosts(options)
    from fleet.aws.check import (
        AwsError,
        FixOutcome,
        apply_security_group_fixes,
        inventory_clients,
        run_check,
    )

    if options.yes and not options.fix:
        print("fleet aws: error: --yes only goes with --fix", file=sys.stderr)
        return EXIT_USAGE
    where = inventory.files.where
    outcome: FixOutcome | None = None
    refused: list[Any] = []
    clients = inventory_clients(inventory)  # an EC2 source's profile and role, as it was read
    try:
        result = run_check(inventory, clients)
        if options.fix:
            fixes = list(result.security_group_fixes)
            refused = [f for f in fixes if f.widens] if not options.yes else []
            if not refused and fixes:
                outcome = apply_security_group_fixes(fixes, clients)
                if outcome.changed or outcome.failed is not None:
                    result = run_check(inventory, clients)  # what it says now, read again
    except AwsError as exc:
        if outcome is not None:  # never silent about what was changed before the failure
            for line in outcome.lines():
                print(line, file=sys.stderr)
        print(f"fleet aws: error: {where}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fix_failed = outcome is not None and outcome.failed is not None
    ok = result.ok and not fix_failed and not refused
    if options.json:
        document = result.as_dict()
        document["ok"] = ok
        if options.fix:
            document["fix"] = {**(outcome.as_dict() if outcome else
                                  {"applied": [], "failed": None, "not_tried": []}),
                               "refused": [f.as_dict() for f in refused]}
        write_json(document, sys.stdout)
    else:
        if options.fix:
            for line in _fix_lines(result, outcome, refused):
                print(line)
        print(result.render())
    return EXIT_OK if ok else EXIT_FAILED


def _fix_lines(result: Any, outcome: Any, refused: list[Any]) -> list[str]:
    if refused:
        lines = []
        for fix in result.security_group_fixes:
            lines.append(f"would add inbound protocol 41 from {fix.source} on {fix.group_id} "
                         f"({fix.region})" + (f"; {fix.outsiders_line()}" if fix.widens else ""))
        lines.append(f"nothing changed: {len(refused)} rule(s) would widen a group that holds "
                     "members outside the inventory; add --yes to apply them all, or put the "
                     "instances in a group of their own")
        return lines
    if outcome is None:
        return ["nothing to add: no judged pair is blocked by its security groups"]
    return list(outcome.lines())
