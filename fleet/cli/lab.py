"""`fleet lab up|status|stop|reset|down`: the local test bed of QEMU guests (fleet.lab), loaded only
when the command runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fleet.cli.options import Commands, positive_int
from fleet.core.output import write_json
from fleet.core.results import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from fleet.lab import LabInfo

DEFAULT_LAB_DIR = Path(".fleet-lab")


def add_parser(commands: Commands) -> argparse.ArgumentParser:
    lab = commands.add_parser("lab", help="a local test bed of QEMU guests with real kernels",
                              description="N small QEMU guests with a kernel that has ISATAP, "
                              "each with sshd, on a private network, and an inventory for them.")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up = lab_commands.add_parser("up", help="build (cached) and boot the guests")
    up.add_argument("--hosts", type=positive_int, default=4, metavar="N",
                    help="number of guests (default 4)")
    status = lab_commands.add_parser("status", help="show the lab's guests")
    status.add_argument("--json", action="store_true")
    down = lab_commands.add_parser("down", help="stop every guest and remove the lab")
    stop = lab_commands.add_parser("stop", help="stop one guest (to see a failure)")
    stop.add_argument("guest", help="guest name, e.g. h2")
    reset = lab_commands.add_parser(
        "reset", help="put every guest back as booted (a stopped one is started again)",
        description="Without booting the lab again: guests that are gone or whose sshd does not "
        "answer are booted again; on the others every process, link, address and file "
        "that was not there at boot is removed (sit1 included); the lab's own nftables "
        "rules and queueing disciplines are removed and the inventory is written again.")
    for sub in (up, status, down, stop, reset):
        sub.add_argument("--workdir", type=Path, default=DEFAULT_LAB_DIR, metavar="DIR",
                         help="where the lab keeps its state and inventory (default ./.fleet-lab)")
    return lab


def run(options: argparse.Namespace) -> int:
    from fleet import lab

    workdir = options.workdir.resolve()
    if options.lab_command == "up":
        problems = lab.check_prerequisites()
        if problems:
            from fleet.lab.errors import LabError

            raise LabError("the lab cannot start here:\n  " + "\n  ".join(problems))
        info = lab.up(options.hosts, workdir=workdir,
                      progress=lambda line: print(f"lab: {line}", file=sys.stderr, flush=True))
        _print_lab(info)
        inv = _relative(info.inventory_dir)
        print(f"\nnext: fleet run setup mesh -i {inv}\n      fleet lab down"
              + (f" --workdir {_relative(workdir)}" if workdir != DEFAULT_LAB_DIR.resolve() else ""))
        return EXIT_OK
    if options.lab_command == "status":
        found = lab.status(workdir=workdir)
        if found is None:
            print(f"no lab in {_relative(workdir)}", file=sys.stderr)
            return EXIT_FAILED
        info = found
        if options.json:
            write_json({"name": info.name, "netns": info.netns,
                        "inventory": str(info.inventory_dir),
                        "guests": [{"name": g.name, "ipv4": g.ipv4, "ssh_port": g.ssh_port,
                                    "pid": g.pid, "running": g.running} for g in info.guests]},
                       sys.stdout)
        else:
            _print_lab(info)
        return EXIT_OK if all(g.running for g in info.guests) else EXIT_FAILED
    if options.lab_command == "reset":
        info = lab.reset(workdir=workdir,
                         progress=lambda line: print(f"lab: {line}", file=sys.stderr, flush=True))
        _print_lab(info)
        return EXIT_OK
    if options.lab_command == "stop":
        lab.stop_guest(options.guest, workdir=workdir)
        print(f"lab: stopped {options.guest}", file=sys.stderr)
        return EXIT_OK
    lab.down(workdir=workdir)
    print("lab: down", file=sys.stderr)
    return EXIT_OK


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _print_lab(info: LabInfo) -> None:
    print(f"lab {info.name}: {len(info.guests)} guests in network namespace {info.netns}; "
          f"inventory {_relative(info.inventory_dir)}")
    for g in info.guests:
        state = "running" if g.running else "STOPPED"
        print(f"  {g.name:<6} {g.ipv4:<15} ssh 127.0.0.1:{g.ssh_port:<6} {state}")
