"""`fleet aws check`: does EC2 let protocol 41 through between the inventory's instances? A thin
layer over fleet.aws.check; boto3 is loaded only when the command runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fleet.core.output import write_json
from fleet.core.results import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def add_parser(commands: Any, add_inventory_options: Any) -> argparse.ArgumentParser:
    aws = commands.add_parser("aws", help="check AWS for what ISATAP needs (protocol 41)")
    actions = aws.add_subparsers(dest="aws_command", required=True, metavar="ACTION")
    checking = actions.add_parser(
        "check", help="do the security groups and network ACLs allow protocol 41 between the hosts?",
        description="Describe the inventory's EC2 instances (data.ec2.instance_id, data.ec2.region) "
        "with their security groups and network ACLs, and say for every pair what blocks "
        "protocol 41, with the aws command that fixes it.",
        epilog="exit codes: 0 every pair allowed (after --fix: everything fixed), 1 something "
        "missing, 2 usage, inventory or AWS error")
    add_inventory_options(checking)
    checking.add_argument("--fix", action="store_true", help="add the missing security group "
                          "rules (network ACL entries are only printed)")
    checking.add_argument("--json", action="store_true", help="print JSON instead of text")
    return aws


def run(options: argparse.Namespace, inventory: Any) -> int:
    from fleet.aws.check import AwsError, apply_security_group_fixes, run_check

    try:
        result = run_check(inventory)
        applied = []
        if options.fix:
            applied = apply_security_group_fixes(result.security_group_fixes)
            if applied:
                result = run_check(inventory)  # what it says now, read again
    except AwsError as exc:
        print(f"fleet aws: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if options.json:
        document = result.as_dict()
        if options.fix:
            document["applied"] = [{"group_id": a.fix.group_id, "source": a.fix.source,
                                    "added": a.added} for a in applied]
        write_json(document, sys.stdout)
    else:
        if options.fix:
            for done in applied:
                print(done.line())
            if not applied:
                print("nothing to fix: every security group already allows protocol 41")
        print(result.render())
    return EXIT_OK if result.ok else EXIT_FAILED
