"""`fleet watch`: the mesh again and again, as Pingmesh and Goldpinger run it: a round every
--every, over SSH connections kept open between rounds, each round with the verdict a single
`fleet run mesh` would give, written to an SQLite history (--history), its Prometheus metrics
served over HTTP (--metrics-port) and/or rewritten to a textfile (--prometheus), and a line on
the terminal per round. `fleet report --history DB` reads the history back.

A command of its own rather than `fleet run mesh --every`: `run` runs any tasks in order once,
with outputs made for one run (--junit, --heatmap, --dry-run, --persist across processes); a
watch runs the mesh alone, for as long as it is left running, and its outputs are per round.
It takes the mesh task's options (--count, --underlay, --mtu, --peers ...) from the task's
Params, as `fleet run mesh` does, and `fleet run`'s inventory, limit and host-key options.

Exit codes: 0 the last round was ok, 1 it was not (or no round finished), 2 usage, inventory or
history error, 130 stopped by Ctrl-C. Stopped by SIGTERM (`systemctl stop`, `kill`, `docker
stop`), the watch closes its history and connections and then ends by SIGTERM itself, as
systemd.service(5) asks of a program with a handler: a shell sees 143 (128 + 15), systemd a clean
stop (SIGTERM is one of its clean ends; an exit(143) would mark the unit failed). Either way every
round finished before the stop is in the history, and the round it interrupted is not.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fleet.catalog import task as load_task
from fleet.cli.options import (
    Commands,
    add_inventory_options,
    files_read,
    positive_int,
    selected_hosts,
    text_stream,
    warn,
)
from fleet.cli.parser import CommandParser
from fleet.cli.run_tasks import (
    add_host_key_options,
    add_limit_options,
    run_limits,
)
from fleet.cli.signals import end_by
from fleet.cli.task_options import TaskOptions
from fleet.cluster.choice import open_files_warning
from fleet.core.errors import UsageError
from fleet.core.oslimits import open_file_limit, raise_open_file_limit
from fleet.core.output_files import STDOUT, check_outputs
from fleet.core.task import Task
from fleet.ssh.persist import wire

if TYPE_CHECKING:
    from fleet.watch.retention import Retention

DEFAULT_EVERY = 30.0
DEFAULT_HISTORY = Path("fleet-history.sqlite")
DEFAULT_KEEP = "7d"  # fleet.watch.retention.DEFAULT_KEEP_ROUNDS, read lazily with the rest of it
MESH = "mesh"


def duration(text: str) -> float:
    """--every: 30, 30s, 2m, 1h (more than 0)."""
    try:
        seconds = wire.parse_persist(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return seconds


def kept(text: str) -> float:
    """--keep, --keep-changes: 7d, 24h, 90m, 2w; 0 or forever: math.inf (fleet.watch.retention
    reads it)."""
    from fleet.watch.retention import parse_keep

    try:
        seconds = parse_keep(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return math.inf if seconds is None else seconds


def retention(options: argparse.Namespace) -> Retention:
    """The history's fleet.watch.retention.Retention from --keep and --keep-changes; changes
    kept for less than the rounds are a usage error."""
    from fleet.watch.retention import Retention

    def finite(seconds: float) -> float | None:
        return None if math.isinf(seconds) else seconds

    if options.keep_changes is None:
        return Retention.of(finite(options.keep))
    try:
        return Retention(finite(options.keep), finite(options.keep_changes))
    except ValueError as exc:
        raise UsageError(f"--keep-changes: {exc}") from None


def add_parser(commands: Commands, mesh: Task | None = None) -> argparse.ArgumentParser:
    """The `watch` subcommand; with `mesh` (the mesh task, loaded only when `fleet watch` is the
    command), its options too."""
    watch = commands.add_parser(
        "watch", help="run the mesh again and again, with a history of what changed",
        description="Run the mesh every --every over SSH connections kept open, judge each round "
        "as `fleet run mesh` does, write it to an SQLite history, serve its metrics to Prometheus, "
        "and print a line per round. Stop it with Ctrl-C or SIGTERM.",
        epilog="exit codes: 0 the last round ok, 1 not ok (or no round finished), 2 usage, "
               "inventory or history error, 130 stopped by Ctrl-C; stopped by SIGTERM it ends "
               "by SIGTERM itself (a shell shows 143, systemd a clean stop); finished rounds are "
               "kept either way")
    add_inventory_options(watch)
    group = watch.add_argument_group("watch")
    group.add_argument("--every", type=duration, default=DEFAULT_EVERY, metavar="DURATION",
                       help=f"start a round this often: 30, 30s, 2m, 1h (default {DEFAULT_EVERY:g}s; "
                       "a round that takes longer is followed at once by the next)")
    group.add_argument("--rounds", type=positive_int, metavar="N",
                       help="stop after N rounds (default: run until stopped)")
    group.add_argument("--history", type=Path, default=DEFAULT_HISTORY, metavar="DB",
                       help=f"the SQLite history, created when missing, continued when it holds "
                       f"rounds (default ./{DEFAULT_HISTORY})")
    group.add_argument("--keep", type=kept, default=DEFAULT_KEEP, metavar="DURATION",
                       help="delete the rounds older than this from the history, with their "
                       "per-pair and per-host rows: 7d, 24h, 90m, 2w; 0 or forever keeps them all "
                       f"(default {DEFAULT_KEEP}: ~40 bytes per pair per round, about 8 GB for 100 "
                       "hosts every 30s, 0.3 GB for 20)")
    group.add_argument("--keep-changes", type=kept, metavar="DURATION",
                       help="keep the state changes (the incidents, which `fleet report "
                       "--history` tells) this long, at least --keep (default 30d, or --keep if "
                       "longer); an incident still open is kept whole however old")
    group.add_argument("--json", metavar="FILE", help="also write each round as a line of JSON "
                       "to FILE ('-': stdout, the round lines then go to stderr)")
    group.add_argument("--prometheus", type=Path, metavar="FILE", help="rewrite FILE after each "
                       "round with the Prometheus text `fleet run mesh --prometheus` writes")
    group.add_argument("--prometheus-pairs", action="store_true", help="with --prometheus or "
                       "--metrics-port: also a series per directed pair")
    group.add_argument("--metrics-port", type=int, metavar="PORT", help="serve the last round's "
                       "metrics over HTTP at :PORT/metrics (0: any free port, printed at the "
                       "start); needs prometheus_client (the watch extra)")
    group.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDRESS",
                       help="the address --metrics-port listens on (default 127.0.0.1; 0.0.0.0 "
                       "for every interface)")
    group.add_argument("-q", "--quiet", action="store_true",
                       help="print a line only for rounds that changed something")
    add_limit_options(watch)
    add_host_key_options(watch)
    if mesh is not None:
        TaskOptions(watch).add(mesh)
    return watch


def mesh_task(argv: Sequence[str]) -> Task | None:
    """The mesh task when the command line is `fleet watch ...` (its options join the parser),
    else None: loading the command line loads no feature."""
    return load_task(MESH) if list(argv[:1]) == ["watch"] else None


def run(options: argparse.Namespace) -> int:
    from fleet import api
    from fleet.watch.history import open_history

    raise_open_file_limit()
    if options.metrics_port is not None and not 0 <= options.metrics_port <= 65535:
        raise UsageError(f"--metrics-port {options.metrics_port}: a port is 0 to 65535")
    mesh = load_task(MESH)
    # A Params task's options are read from the parse alone: this TaskOptions adds nothing.
    params = TaskOptions(CommandParser()).params(mesh, options)
    inventory = selected_hosts(options)
    prepared = api.prepare([mesh], inventory, params={MESH: params},
                           host_key_checking=options.host_key_checking)
    check_outputs({"--json": options.json, "--prometheus": options.prometheus,
                   "--history": options.history}, files_read(inventory), command="watch")
    if options.prometheus is not None and options.prometheus == options.history:
        raise UsageError(f"--prometheus {options.prometheus}: that is the --history file")
    kept_for = retention(options)
    # a watch runs in this one process: every host's kept connection is one of its files
    too_few_files = open_files_warning(len(prepared.inventory.hosts), None, open_file_limit(),
                                       remedy="watch fewer hosts per process (-l/-g)")
    if too_few_files:
        warn("", too_few_files)
    history = open_history(options.history, create=True, retention=kept_for)
    settings = {"every_s": options.every, "keep_s": kept_for.rounds_s,
                "keep_changes_s": kept_for.changes_s, **dataclasses.asdict(params)}
    stopped_by: list[signal.Signals] = []
    try:
        code = asyncio.run(_watch(prepared, history, options, settings, stopped_by))
    finally:
        history.close()
    if signal.SIGTERM in stopped_by:
        end_by(signal.SIGTERM)
    return code


async def _watch(prepared: Any, history: Any, options: argparse.Namespace,
                 settings: dict[str, Any], stopped_by: list[signal.Signals]) -> int:
    from fleet import api
    from fleet.watch.keep import KeptTransport
    from fleet.watch.loop import watch

    out = text_stream(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = json_out = transport = None

    def interrupted() -> None:
        stopped_by.append(signal.SIGINT)
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C stops at once

    def terminated() -> None:
        stopped_by.append(signal.SIGTERM)
        stop.set()

    def on_round(done: Any) -> None:
        _publish(done, options, server)
        if not options.quiet or done.record.changes:
            print(round_line(done), file=out, flush=True)
        if json_out is not None:
            json_out.write(json.dumps(round_json(done)) + "\n")
            json_out.flush()

    loop.add_signal_handler(signal.SIGINT, interrupted)
    loop.add_signal_handler(signal.SIGTERM, terminated)
    try:
        server = _metrics_server(options)
        json_out = _json_stream(options.json)
        last = history.last_round()
        print(f"fleet watch: {len(prepared.inventory.hosts)} hosts every {options.every:g} s, "
              f"history {options.history}"
              + (f" (after its round {last.id})" if last is not None else "")
              + f", keeping {history.retention.text()}; Ctrl-C or SIGTERM stops", file=sys.stderr, flush=True)
        transport = KeptTransport(await api.open_transport(
            host_key_checking=options.host_key_checking, on_warning=warn))
        end = await watch(prepared, transport, history, every=options.every, rounds=options.rounds,
                          limits=run_limits(options), stop=stop, options=settings, on_round=on_round)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
        if transport is not None:
            await transport.close()
        if server is not None:
            server.close()
        if json_out is not None and json_out is not sys.stdout:
            json_out.close()
    if end.interrupted:
        by = f" by {stopped_by[0].name}" if stopped_by else ""
        print(f"fleet watch: stopped{by} after {end.rounds} round(s); the history "
              f"{options.history} holds every round that finished", file=sys.stderr)
    return end.exit_code


def _metrics_server(options: argparse.Namespace) -> Any:
    if options.metrics_port is None:
        return None
    from fleet.watch.metrics_http import MetricsServer

    server = MetricsServer(options.metrics_address, options.metrics_port)
    server.start()
    print(f"fleet watch: metrics at {server.url}", file=sys.stderr, flush=True)
    return server


def _json_stream(path: str | None) -> IO[str] | None:
    if path is None:
        return None
    if path == STDOUT:
        return sys.stdout
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--json {path}: {exc.strerror}") from None


def _publish(done: Any, options: argparse.Namespace, server: Any) -> None:
    """The round's Prometheus text: to the HTTP server and the textfile, the same text."""
    if server is None and options.prometheus is None:
        return
    from fleet import formats
    from fleet.formats import prometheus

    pairs = bool(options.prometheus_pairs)
    if server is not None:
        server.publish(prometheus.render([done.outcome], Path("-"), pairs=pairs) or ())
    if options.prometheus is not None:
        try:
            formats.write([done.outcome], {"prometheus": options.prometheus},
                          {"prometheus": {"pairs": pairs}})
        except OSError as exc:  # a full disk, say: the watch goes on, the history has the round
            warn("", f"--prometheus {options.prometheus}: not rewritten: {exc.strerror or exc}")


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def round_line(done: Any) -> str:
    """`2026-12-06T07:41:03Z round 12  NOT OK  4 hosts (1 down)  12 pairs: 9 ok, 3 not-measured
    1.3 s  2 changes: h3 ok->down (host-down), ...`"""
    from fleet.mesh.verdict import WORDS, Status
    from fleet.watch.changes import summary

    record = done.record
    snap = record.snapshot
    down = snap.hosts_down()
    counts = ", ".join(f"{n} {state}" for state, n in snap.counts().items() if n)
    hosts = f"{len(snap.hosts)} hosts" + (f" ({down} down)" if down else "")
    return (f"{_time(record.started)} round {record.id}  {WORDS[Status(record.status)]}  {hosts}  "
            f"{len(snap.pairs)} pairs: {counts or 'none'}  {record.ended - record.started:.1f} s  "
            f"{summary(record.changes)}")


def round_json(done: Any) -> dict[str, Any]:
    record = done.record
    snap = record.snapshot
    return {"round": record.id, "started": _iso(record.started), "ended": _iso(record.ended),
            "seconds": round(record.ended - record.started, 3), "status": record.status,
            "verdict": record.verdict, "hosts": len(snap.hosts),
            "hosts_down": snap.hosts_down(), "pairs": len(snap.pairs), "counts": snap.counts(),
            "logins": done.logins,
            "changes": [{"subject": c.subject, "src": c.src, "dst": c.dst, "kind": c.kind,
                         "before": c.before, "after": c.after} for c in record.changes]}

