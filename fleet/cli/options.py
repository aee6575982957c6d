"""What the commands share: argparse value types, the inventory options, and the outputs.

The outputs are --json (a file, or '-': standard output, the text then on stderr) and the report
files (--junit, --prometheus, --heatmap); each command checks them before it reads or touches
anything, through one call to fleet.core.output_files.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeAlias

from fleet import api
from fleet.cli.parser import CommandParser
from fleet.core.errors import UsageError
from fleet.core.output_files import STDOUT, ReadFile, check_outputs
from fleet.core.terminal import printable
from fleet.inventory import DEFAULTS_FILE, GROUPS_FILE, HOSTS_FILE, Inventory
from fleet.ssh.persist import wire
from fleet.ssh.persist.trust import login_files

# Where each command module adds its subcommand: what `fleet`'s add_subparsers() returned.
Commands: TypeAlias = "argparse._SubParsersAction[CommandParser]"

DEFAULT_INVENTORY = Path("inventory")
REPORT_FILES = ("junit", "prometheus", "heatmap")  # the formats of fleet.formats, by option
OUTPUTS = ("json", *REPORT_FILES)


# --- argparse value types: a bad value is argparse's usage error, naming the option

def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def percent(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, not {text}")
    return value


def names(text: str) -> list[str]:
    return [part for part in (p.strip() for p in text.split(",")) if part]


def rtt_thresholds(text: str) -> tuple[float, ...]:
    """--heatmap-rtt-ms's value: the ok colours' band limits in ms, e.g. 1,5,20,100."""
    from fleet.formats.heatmap_cells import check_thresholds  # only when the option is given

    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a number of ms; give "
                                             "increasing limits, e.g. 1,5,20,100") from None
        if not math.isfinite(values[-1]):
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a finite number of ms")
    try:
        return check_thresholds(values)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 to 8 increasing limits above 0 ms, "
                                         "e.g. 1,5,20,100") from None


def persist_seconds(text: str) -> float:
    """--persist's value: 60, 10m ... (fleet.ssh.persist.wire's reading of it)."""
    try:
        return wire.parse_persist(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --- the inventory

def add_inventory_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inventory")
    group.add_argument("-i", "--inventory", type=Path, default=DEFAULT_INVENTORY, metavar="DIR|FILE",
                       help="Nornir inventory directory: hosts.yaml, groups.yaml, defaults.yaml "
                            "(default: ./inventory); or a YAML file with `plugin: fleet.aws_ec2`, "
                            "whose hosts are the running EC2 instances matching its filters "
                            "(needs the aws extra)")
    group.add_argument("-l", "--limit", type=names, action="extend", default=[], metavar="HOSTS",
                       help="only these hosts: comma-separated names or glob patterns; repeatable")
    group.add_argument("-g", "--groups", type=names, action="extend", default=[], metavar="GROUPS",
                       help="only hosts in these groups (directly or through a parent group)")


def selected_hosts(options: argparse.Namespace) -> Inventory:
    """The inventory's hosts that --limit and --groups select (none is a usage error)."""
    return api.select(options.inventory, options.limit, options.groups)


# --- messages on stderr

def print_notes(notes: Sequence[str]) -> None:
    for note in notes:
        print(f"fleet: note: {note}", file=sys.stderr)


def warn(host: str, text: str) -> None:
    """A warning on stderr, as the transports' `on_warning` takes it: a host's (a changed key
    accepted under --host-key-checking no) stands out; the command's own (host "") is plain."""
    line = f"WARNING: {host}: {text}" if host else f"warning: {text}"
    print(f"fleet: {printable(line)}", file=sys.stderr, flush=True)


# --- the outputs

def text_stream(options: argparse.Namespace) -> TextIO:
    """Where the text goes: stdout, or stderr when `--json -` takes stdout."""
    return sys.stderr if options.json == STDOUT else sys.stdout


def files_read(inventory: Inventory) -> list[ReadFile]:
    """What a command that logs into the inventory's hosts reads, which no output file may be:
    the inventory's three files (or an EC2 source file and the defaults.yaml beside it) and
    every login's known_hosts, keys and ssh config, defaults included."""
    reads = [ReadFile(Path(inventory.files.path(name)), f"the inventory's {name}")
             for name in (HOSTS_FILE, GROUPS_FILE, DEFAULTS_FILE)]
    reads.append(ReadFile(inventory.directory / DEFAULTS_FILE, f"the inventory's {DEFAULTS_FILE}"))
    cwd = os.getcwd()
    for host in inventory.hosts:
        reads += [ReadFile(Path(path), role) for path, role in
                  login_files(host.ssh_options, environ=os.environ, cwd=cwd)]
    return reads


def check_output_files(options: argparse.Namespace, reads: Iterable[ReadFile], *,
                       command: str) -> None:
    """No output file asked for is a file the command reads (`reads`), and each can be written."""
    check_outputs({f"--{name}": getattr(options, name) for name in OUTPUTS}, reads, command=command)


def report_files(options: argparse.Namespace, tasks: Sequence[str]) -> dict[str, Path]:
    """The report files asked for (format -> path), each format checked against the tasks
    reported (fleet.formats.problems) before anything is read or written."""
    asked = {name: getattr(options, name) for name in REPORT_FILES
             if getattr(options, name) is not None}
    if getattr(options, "heatmap_rtt_ms", None) is not None and "heatmap" not in asked:
        raise UsageError("--heatmap-rtt-ms sets the colours of --heatmap's page: give --heatmap FILE too")
    if not asked:
        return {}
    from fleet import formats  # the formats' modules themselves load only when writing

    found = formats.problems(asked, tasks)
    if found:
        raise UsageError("; ".join(found))
    return asked


def write_report_files(files: dict[str, Path], outcomes: Sequence[Any],
                       options: argparse.Namespace | None = None) -> None:
    """Write the report files of `outcomes` (each with .task and .report); none asked, no import.
    `options`: --prometheus-pairs and --heatmap-rtt-ms, when the command has them."""
    if files:
        from fleet import formats

        pairs = bool(getattr(options, "prometheus_pairs", False))
        thresholds = getattr(options, "heatmap_rtt_ms", None)
        formats.write(outcomes, files, {"prometheus": {"pairs": pairs},
                                        "heatmap": {} if thresholds is None else
                                        {"rtt_thresholds_ms": thresholds}})


def write_json_output(path: str | None, write: Callable[[TextIO], None]) -> None:
    """--json: `write(stream)` to stdout for '-', into the file otherwise (not at all for None);
    a file that cannot be written is a usage error naming it."""
    if path is None:
        return
    if path == STDOUT:
        write(sys.stdout)
        return
    try:
        with open(path, "w", encoding="utf-8") as stream:
            write(stream)
    except OSError as exc:
        raise UsageError(f"--json {path}: {exc.strerror}") from None
