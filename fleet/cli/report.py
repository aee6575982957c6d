"""`fleet report`: saved mesh results shown again, compared with a baseline, and gated, without
touching a host. A thin layer over fleet.mesh.saved (reading), fleet.mesh.compare (the
comparison), fleet.mesh.gates (the limits) and fleet.mesh.saved_report (what is shown).

The mesh modules are loaded only when the command runs: loading the command line loads no feature.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.cli import report_history
from fleet.cli.options import (
    Commands,
    check_output_files,
    non_negative,
    percent,
    report_files,
    rtt_thresholds,
    text_stream,
    write_json_output,
    write_report_files,
)
from fleet.core.errors import UsageError
from fleet.core.output import write_json
from fleet.core.output_files import ReadFile

# The failures the gates judge by default, each allowed only by its own option.
ALLOWANCES = (
    ("--allow-new-failures", "pairs reachable in the baseline are unreachable (or could not be "
     "measured) now, new pairs do not answer, or (without --max-loss-pct) pairs ok before lose "
     "pings now (with --baseline)"),
    ("--allow-mtu-failures", "pairs fail the MTU check (with --baseline: pairs that passed it before)"),
    ("--allow-unmeasured", "pairs the run promised were not measured or could not tell (with "
     "--baseline: pairs measured before and not now)"),
    ("--allow-hosts-gone", "hosts of the baseline are not in the run (with --baseline)"),
)


def add_parser(commands: Commands) -> argparse.ArgumentParser:
    """The `report` subcommand on `commands` (the subparsers of `fleet`)."""
    report = commands.add_parser(
        "report", help="show a saved mesh report again, or compare it with a baseline",
        description="Show the mesh saved by `fleet run mesh --json FILE` again (no host is "
        "touched), or compare it with an earlier run (--baseline) and judge it against limits.",
        epilog="exit codes: without gates or --baseline, the saved run's own verdict (0 all ok, 1 "
        "not ok or could not tell, 130 interrupted); with them, 0 every gate passes, 1 one fails; "
        "2 unreadable input. The gates mtu and unmeasured (and with --baseline new-failures and "
        "hosts-gone) are always judged with them: a limit never passes what it does not measure.")
    report.add_argument("file", metavar="FILE.json", nargs="?",
                        help="a mesh report (`fleet run mesh --json`); or give --history")
    report.add_argument("--baseline", metavar="OLD.json",
                        help="an earlier mesh report: show what got worse and what got better")
    report.add_argument("--json", metavar="FILE", help="also write the report (or the "
                        "comparison) as JSON to FILE ('-': stdout, the text then goes to stderr)")
    gates = report.add_argument_group(
        "gates", "limits that decide the exit code (0 all pass, 1 one fails)")
    gates.add_argument("--max-loss-pct", type=percent, metavar="X",
                       help="fail if any pair loses more than X percent of its pings")
    gates.add_argument("--max-rtt-ms", type=non_negative, metavar="X",
                       help="fail if any pair's average RTT is above X ms")
    gates.add_argument("--max-rtt-increase-pct", type=non_negative, metavar="X",
                       help="with --baseline: fail if the mesh's P50 or P99 RTT (over every reply) "
                       "rose more than X percent")
    for flag, what in ALLOWANCES:
        gates.add_argument(flag, action="store_true", help=f"pass even if {what}; they fail by default")
    files = report.add_argument_group("report files", "the files `fleet run` writes, from the "
                                      "saved mesh")
    files.add_argument("--junit", type=Path, metavar="FILE",
                       help="JUnit XML: a test case per directed pair, and one for the verdict")
    files.add_argument("--prometheus", type=Path, metavar="FILE",
                       help="Prometheus gauges (text format, for node_exporter's textfile collector)")
    files.add_argument("--prometheus-pairs", action="store_true",
                       help="with --prometheus: also a series per directed pair (per host by default)")
    files.add_argument("--heatmap", type=Path, metavar="FILE",
                       help="the matrix drawn to FILE.html (a self-contained page) or FILE.svg; "
                       "above 150 hosts a cell is a block: each host's first inventory group, "
                       "when the report has the groups")
    files.add_argument("--heatmap-rtt-ms", type=rtt_thresholds, metavar="MS,MS,...",
                       help="with --heatmap: the ok colours' RTT bands, as 1 to 8 increasing "
                       "limits in ms (default 1,5,20,100: a colour means the same RTT in every run)")
    report_history.add_options(report)
    return report


def run(options: argparse.Namespace) -> int:
    if options.history is not None or options.file is None:
        return report_history.run(options)
    from fleet.mesh.compare import compare
    from fleet.mesh.gates import Gates, Verdict, check_gates
    from fleet.mesh.saved import load_mesh_document
    from fleet.mesh.saved_report import SavedMeshReport

    gates = Gates(max_loss_pct=options.max_loss_pct, max_rtt_ms=options.max_rtt_ms,
                  max_rtt_increase_pct=options.max_rtt_increase_pct,
                  allow_new_failures=options.allow_new_failures,
                  allow_mtu_failures=options.allow_mtu_failures,
                  allow_unmeasured=options.allow_unmeasured,
                  allow_hosts_gone=options.allow_hosts_gone)
    if options.baseline is None:
        for flag, value in (("--max-rtt-increase-pct", gates.max_rtt_increase_pct),
                            ("--allow-new-failures", gates.allow_new_failures or None),
                            ("--allow-hosts-gone", gates.allow_hosts_gone or None)):
            if value is not None:
                raise UsageError(f"{flag} compares with an earlier run: give --baseline OLD.json")
    _refuse_to_overwrite_an_input(options)
    files = report_files(options, ["mesh"])
    current = load_mesh_document(options.file)
    own = current.report().verdict
    if options.baseline is None:
        judged = gates.any_limit or gates.allow_mtu_failures or gates.allow_unmeasured
        report = SavedMeshReport(current, check_gates(gates, current.mesh, verdict=own) if judged
                                 else Verdict(()))
    else:
        baseline = load_mesh_document(options.baseline)
        comparison = compare(baseline.mesh, current.mesh)
        report = SavedMeshReport(current, check_gates(gates, current.mesh, comparison, verdict=own),
                                 baseline=baseline, comparison=comparison)
    # First: a reader of the text that stops early (`| head`) must not cost the files.
    write_report_files(files, [_SavedTask("mesh", current.report())], options)
    print(report.render(), file=text_stream(options), flush=True)
    write_json_output(options.json, lambda stream: write_json(report.to_json(), stream))
    return report.exit_code


@dataclass(frozen=True)
class _SavedTask:
    """A saved mesh as the report files read a task's outcome."""

    task: str
    report: Any


def _refuse_to_overwrite_an_input(options: argparse.Namespace) -> None:
    """No output file is FILE.json or the --baseline, and each can be written: checked before
    anything is read, by the check `fleet run` makes (fleet.core.output_files)."""
    reads = [ReadFile(Path(options.file), "FILE.json")]
    if options.baseline is not None:
        reads.append(ReadFile(Path(options.baseline), "--baseline"))
    check_output_files(options, reads, command="command")
