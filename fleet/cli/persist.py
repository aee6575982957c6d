"""`fleet persist status|stop`: the background process that keeps `fleet run --persist`'s SSH
connections (fleet.ssh.persist), shown or stopped."""

from __future__ import annotations

import argparse
import sys

from fleet.cli.options import Commands
from fleet.ssh.persist import wire


def add_parser(commands: Commands) -> argparse.ArgumentParser:
    persist = commands.add_parser("persist", help="show or stop the kept SSH connections (--persist)",
                                  description="The background process of `fleet run --persist`: "
                                  f"its socket is in ${wire.DIR_ENV}, else $XDG_RUNTIME_DIR/fleet, "
                                  "else /tmp/fleet-UID.")
    persist_commands = persist.add_subparsers(dest="persist_command", required=True, metavar="ACTION")
    persist_status = persist_commands.add_parser("status", help="the kept connections "
                                                 "(exit 1 when nothing runs)")
    persist_status.add_argument("--json", action="store_true")
    persist_commands.add_parser("stop", help="close every kept connection and stop the process")
    return persist


def run(options: argparse.Namespace) -> int:
    from fleet.ssh.persist import control

    directory = wire.runtime_dir()
    if options.persist_command == "status":
        return control.status(directory, sys.stdout, as_json=options.json)
    return control.stop(directory, sys.stdout)
