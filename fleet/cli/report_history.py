"""`fleet report --history DB`: a `fleet watch` history read back (fleet.watch.report): when each
pair or host broke and recovered, which flap, in a --since/--until window; text, --json, and
--heatmap FILE drawing the timeline (fleet.formats.timeline) instead of a matrix.

A history that is missing, not SQLite or not fleet watch's is exit 2 with a message naming it;
so are the options of a saved mesh report (the gates, --junit, --heatmap-rtt-ms ...), which
--history has no use for.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from fleet.cli.options import positive_int, text_stream, write_json_output
from fleet.core.errors import UsageError
from fleet.core.output import write_json
from fleet.core.output_files import ReadFile, check_outputs
from fleet.ssh.persist import wire

FILE_OPTIONS = ("baseline", "max_loss_pct", "max_rtt_ms", "max_rtt_increase_pct", "junit",
                "prometheus")


def add_options(report: argparse.ArgumentParser) -> None:
    group = report.add_argument_group(
        "history", "a `fleet watch` history instead of FILE.json (--heatmap then draws the "
        "timeline: rows the hosts and pairs that failed, columns the rounds)")
    group.add_argument("--history", type=Path, metavar="DB", help="the SQLite history of `fleet watch`")
    group.add_argument("--since", metavar="TIME", help="only rounds from TIME: an ISO date and time "
                       "(UTC unless it says), or a duration ago (30m, 2h)")
    group.add_argument("--until", metavar="TIME", help="only rounds up to TIME (as --since)")
    group.add_argument("--flapping", type=positive_int, metavar="N", default=None,
                       help="a pair or host that changed state N times or more in the window "
                       "flaps (default 4)")


def moment(text: str, option: str, now: float) -> float:
    """--since/--until: a duration ago (30m, 2h, 90: seconds), or an ISO time (UTC unless it
    names a zone)."""
    try:
        return now - wire.parse_persist(text)
    except ValueError:
        pass
    try:
        return _iso(text)
    except ValueError:
        raise UsageError(f"{option} {text}: give an ISO time (2026-12-06T07:00:00Z) or a duration "
                         "ago (30m, 2h)") from None


def _iso(text: str) -> float:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def run(options: argparse.Namespace) -> int:
    from fleet.watch.history import open_history
    from fleet.watch.incidents import DEFAULT_FLAPPING
    from fleet.watch.report import history_report, timeline

    if options.history is None:
        raise UsageError("give a mesh report FILE.json, or --history DB")
    if options.file is not None:
        raise UsageError(f"give FILE.json ({options.file}) or --history {options.history}, not both")
    used = [f"--{name.replace('_', '-')}" for name in FILE_OPTIONS
            if getattr(options, name, None) not in (None, False)]
    used += [flag for flag in ("--allow-new-failures", "--allow-mtu-failures", "--allow-unmeasured",
                               "--allow-hosts-gone", "--prometheus-pairs")
             if getattr(options, flag[2:].replace("-", "_"), False)]
    if used:
        raise UsageError(f"{', '.join(used)}: for a mesh report FILE.json, not --history")
    if options.heatmap_rtt_ms is not None:
        raise UsageError("--heatmap-rtt-ms: the RTT bands of a mesh report's matrix (FILE.json); "
                         "the timeline of --history colours each round's states, not RTT")
    if options.heatmap is not None:
        from fleet.formats.timeline import problem

        why = problem(options.heatmap)
        if why:
            raise UsageError(f"--heatmap {options.heatmap}: {why}")
    check_outputs({"--json": options.json, "--heatmap": options.heatmap},
                  [ReadFile(options.history, "the --history file")], command="report")
    now = time.time()
    since = None if options.since is None else moment(options.since, "--since", now)
    until = None if options.until is None else moment(options.until, "--until", now)
    with open_history(options.history, create=False) as history:
        report = history_report(history, since=since, until=until,
                                threshold=options.flapping or DEFAULT_FLAPPING)
        if options.heatmap is not None:
            from fleet.formats import write_atomically
            from fleet.formats.timeline import render

            drawn = timeline(history, report.rounds, f"fleet watch: {options.history.name}")
            write_atomically(options.heatmap, render(drawn, options.heatmap))
    print(report.render(), file=text_stream(options), flush=True)
    write_json_output(options.json, lambda stream: write_json(report.to_json(), stream))
    return report.exit_code
