"""`fleet run TASK...`: the tasks prepared and checked by fleet.api, then run by api.run_prepared,
with what the terminal shows (fleet.cli.display) and the files asked for.

(Not `run.py`: `fleet.cli.run` is the console script's entry point.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleet import api
from fleet.catalog import find_tasks
from fleet.catalog import task as load_task
from fleet.cli import completion
from fleet.cli.display import LiveDisplay, print_report, stderr_console, terminal_features
from fleet.cli.options import (
    Commands,
    add_inventory_options,
    check_output_files,
    files_read,
    persist_seconds,
    positive_float,
    positive_int,
    print_notes,
    report_files,
    rtt_thresholds,
    selected_hosts,
    text_stream,
    warn,
    write_json_output,
    write_report_files,
)
from fleet.cli.parser import did_you_mean
from fleet.cli.signals import end_by
from fleet.cli.task_options import TaskOptions
from fleet.cluster.choice import AUTO_HOSTS
from fleet.core.errors import UsageError
from fleet.core.oslimits import raise_open_file_limit
from fleet.core.output import write_json_documents
from fleet.core.output_files import STDOUT
from fleet.core.runner import RunLimits
from fleet.core.task import Task
from fleet.core.terminal import printable
from fleet.ssh.hostkeys import HOST_KEY_CHECKING
from fleet.ssh.persist import wire


def add_parser(commands: Commands, tasks: Sequence[Task] = (), tasks_dirs: Sequence[Path] = (),
               ) -> TaskOptions:
    """The `run` subcommand on `commands`, with the options of `tasks`; its --help ends with
    every task found in `tasks_dirs`, ./tasks and the built-ins."""
    run = commands.add_parser("run", help="run tasks on the inventory's hosts",
                              usage="%(prog)s [options] TASK [TASK ...]",  # --help lists them all
                              description="Run one or more tasks (setup, mesh, teardown, or your "
                              "own tasks/NAME.py) on every selected host, over shared connections.",
                              more_help=lambda: task_listing(tasks_dirs, [t.name for t in tasks]),
                              check=lambda options: unknown_task(options, tasks))
    names = run.add_argument("tasks", nargs="+", metavar="TASK", help="task names, run in order")
    completion.set_completer(names, lambda parsed: sorted(
        find_tasks(getattr(parsed, "tasks_dir", None) or [])[0]))  # --tasks-dir's, ./tasks, built-ins
    add_run_options(run)
    task_options = TaskOptions(run)
    for task in tasks:
        task_options.add(task)
    return task_options


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_inventory_options(parser)
    group = parser.add_argument_group("run")
    group.add_argument("--dry-run", "--check", dest="dry_run", action="store_true",
                       help="show what would change and change nothing")
    group.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE "
                       "('-': stdout, the table then goes to stderr)")
    group.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML to FILE: "
                       "a test case per host (setup, teardown) and per directed pair (mesh)")
    group.add_argument("--prometheus", type=Path, metavar="FILE", help="also write Prometheus "
                       "gauges to FILE (text format, for node_exporter's textfile collector)")
    group.add_argument("--prometheus-pairs", action="store_true", help="with --prometheus: also "
                       "a series per directed pair (n(n-1) of them; per host by default)")
    group.add_argument("--heatmap", type=Path, metavar="FILE", help="also draw the mesh's matrix "
                       "to FILE.html (a self-contained page) or FILE.svg; above 150 hosts a cell "
                       "is a block of hosts: each host's first inventory group")
    group.add_argument("--heatmap-rtt-ms", type=rtt_thresholds, metavar="MS,MS,...",
                       help="with --heatmap: the ok colours' RTT bands, as 1 to 8 increasing "
                       "limits in ms (default 1,5,20,100: a colour means the same RTT in every run)")
    group.add_argument("--tasks-dir", type=Path, action="append", default=[], metavar="DIR",
                       help="look for tasks here first (repeatable); then ./tasks, then built-ins")
    group.add_argument("--no-progress", dest="progress", action="store_false",
                       help="plain output: no live display on stderr and no colour (both are "
                       "shown only on a terminal, and not with $NO_COLOR set, anyway)")
    talk = group.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true",
                      help="print only each task's verdict line (--json is still written)")
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="also print every host's full result (nornir-utils print_result)")
    add_limit_options(parser)
    cluster = parser.add_argument_group("cluster (needs the cluster extra: Dask distributed)")
    cluster.add_argument("--cluster", metavar="local|ADDRESS|no",
                         help="shard the run: `local` starts a cluster of processes on this "
                         "machine, ADDRESS (tcp://HOST:8786) uses a running Dask scheduler "
                         "whose workers have fleet installed, `no` runs in this process; each "
                         "shard's hosts are run by one worker over its own connections (default: "
                         f"local with a shard per core from {AUTO_HOSTS} hosts, when installed)")
    cluster.add_argument("--shards", type=positive_int, default=None, metavar="N",
                         help="split the hosts into N shards (default: one per core; alone, "
                         "implies --cluster local); --workers and --connect-workers bound each "
                         "shard")
    ssh = add_host_key_options(parser)
    ssh.add_argument("--persist", type=persist_seconds, default=None, metavar="SECONDS",
                     help="keep the SSH connections open in a background process for SECONDS "
                     "after the run (60, 10m ...) and reuse them in the next runs, like OpenSSH's "
                     f"ControlPersist; 0 turns it off (default ${wire.PERSIST_ENV} or 0). "
                     "`fleet persist status|stop` shows or closes them")


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """--workers, --connect-workers and the timeouts (fleet.core.runner.RunLimits), as `fleet
    run` and `fleet watch` take them."""
    limits = parser.add_argument_group("concurrency and timeouts")
    d = RunLimits()
    limits.add_argument("-w", "--workers", type=positive_int, default=d.workers,
                        help=f"hosts worked on at once (default {d.workers})")
    limits.add_argument("--connect-workers", type=positive_int, default=d.connect_workers,
                        help=f"SSH handshakes in flight at once (default {d.connect_workers})")
    limits.add_argument("--connect-timeout", type=positive_float, default=d.connect_timeout,
                        metavar="S", help=f"seconds to connect and log in (default {d.connect_timeout:g})")
    limits.add_argument("--command-timeout", type=positive_float, default=d.command_timeout,
                        metavar="S", help=f"seconds for each remote command (default "
                        f"{d.command_timeout:g}; the mesh probe gets what its pings need)")
    limits.add_argument("--host-timeout", type=positive_float, default=d.host_timeout,
                        metavar="S", help=f"seconds for a task on one host (default {d.host_timeout:g})")


def add_host_key_options(parser: argparse.ArgumentParser) -> Any:
    """The `ssh` group with --host-key-checking; returned for the command's own SSH options."""
    ssh = parser.add_argument_group("ssh")
    ssh.add_argument("--host-key-checking", choices=HOST_KEY_CHECKING, default="yes",
                     help="as OpenSSH's StrictHostKeyChecking: yes refuses unknown and changed "
                     "keys (default); accept-new records unknown keys in the known_hosts file in "
                     "use and refuses changed ones; no accepts any key, a changed one with a "
                     "warning and without sending a password")
    ssh.add_argument("--no-host-key-checking", dest="host_key_checking", action="store_const",
                     const="no", help="the same as --host-key-checking no")
    return ssh


def task_listing(tasks_dirs: Sequence[Path], named: Sequence[str] = ()) -> str:
    """The end of `fleet run --help`: every task with its description's first line, and how to
    see a task's options. A task that cannot be loaded is listed with the reason."""
    found, _ = find_tasks(tasks_dirs)
    lines = ["tasks (from --tasks-dir, ./tasks and the built-ins; `fleet tasks` says where each "
             "comes from):"]
    width = max((len(name) for name in found), default=0)
    for name in sorted(found):
        try:
            about = load_task(name, tasks_dirs).description
        except Exception as exc:  # a broken task file must not break the help
            about = f"(cannot be loaded: {exc})"
        lines.append(f"  {name:<{width}}  {printable(about)}")
    lines.append("\n`fleet run TASK --help` also lists TASK's own options: "
                 + (f"above, those of {', '.join(named)}." if named else "mesh's --count, --underlay ..."))
    return "\n".join(lines) + "\n"


def unknown_task(options: argparse.Namespace, loaded: Sequence[Task] = ()) -> str | None:
    """What is wrong with the first task name that names no task (neither one `loaded` nor one
    on the search path), None if all do."""
    found = {*find_tasks(options.tasks_dir)[0], *(task.name for task in loaded)}
    for name in options.tasks:
        if name not in found:
            close = did_you_mean(name, found)
            return f"no task {name!r}" + (close or f" (tasks: {', '.join(sorted(found)) or 'none'}; "
                                          "`fleet run --help` lists them)")
    return None


def _first_parse(argv: Sequence[str]) -> argparse.Namespace | None:
    """fleet run's own options read before the full parser exists (the tasks add options)."""
    if not argv or argv[0] != "run":
        return None
    first = argparse.ArgumentParser(prog="fleet run", add_help=False)
    first.add_argument("tasks", nargs="*")
    add_run_options(first)
    with contextlib.redirect_stderr(io.StringIO()):  # the full parser reports the errors
        try:
            seen, _ = first.parse_known_intermixed_args(argv[1:])
        except SystemExit:
            return None
    return seen


def tasks_dirs(argv: Sequence[str]) -> list[Path]:
    """The --tasks-dir of `fleet run` on the command line (for its --help)."""
    seen = _first_parse(argv)
    return list(seen.tasks_dir) if seen is not None else []


def tasks_named(argv: Sequence[str]) -> list[Task]:
    """The tasks named after `run`, loaded before the full parser exists (they add options).

    A parser of fleet run's own options reads the command line first; among what it takes for
    task names, the names of no task are values of task options not added yet (the full parser
    reads them right) or unknown names (checked after the full parse).
    """
    seen = _first_parse(argv)
    if seen is None:
        return []
    found = find_tasks(seen.tasks_dir)[0]
    return [load_task(name, seen.tasks_dir) for name in dict.fromkeys(seen.tasks) if name in found]


def run_limits(options: argparse.Namespace) -> RunLimits:
    return RunLimits(workers=options.workers, connect_workers=options.connect_workers,
                     connect_timeout=options.connect_timeout, command_timeout=options.command_timeout,
                     host_timeout=options.host_timeout)


def run(options: argparse.Namespace, task_options: TaskOptions) -> int:
    raise_open_file_limit()
    if options.persist is None:
        options.persist = _persist_default()  # read here, so a bad value breaks only `run`
    tasks = [load_task(name, options.tasks_dir) for name in options.tasks]
    notes = find_tasks(options.tasks_dir)[1]
    print_notes([notes[name] for name in dict.fromkeys(options.tasks) if name in notes])
    inventory = selected_hosts(options)
    params = {task.name: task_options.params(task, options) for task in tasks}
    prepared = api.prepare(tasks, inventory, params=params, dry_run=options.dry_run,
                           host_key_checking=options.host_key_checking)  # before any host is touched
    check_output_files(options, files_read(inventory), command="run")
    if options.json not in (None, STDOUT):
        try:
            Path(options.json).open("a", encoding="utf-8").close()
        except OSError as exc:
            raise UsageError(f"--json {options.json}: {exc.strerror}") from None
    files = report_files(options, [t.name for t in tasks])
    for warning in api.preflight_warnings(prepared):
        warn("", warning)
    terminated = asyncio.Event()
    outcome = asyncio.run(_run_here(prepared, options, terminated))
    if outcome.tasks:
        write_json_output(options.json,
                          lambda stream: write_json_documents(outcome.json_documents(), stream))
    write_report_files(files, outcome.tasks, options)
    if terminated.is_set():
        end_by(signal.SIGTERM)  # the reports are written: now end as stopped by it
    return outcome.exit_code


async def _run_here(prepared: api.PreparedRun, options: argparse.Namespace,
                    terminated: asyncio.Event) -> api.Outcome:
    """api.run_prepared on this process's event loop: Ctrl-C or TERM stops it (hosts not finished
    are reported as interrupted; a second Ctrl-C stops at once; TERM is remembered in
    `terminated`); each task's report is printed as it ends."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_term() -> None:
        terminated.set()
        stop.set()

    def interrupted() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C stops at once

    out = text_stream(options)
    shows = terminal_features(options.progress, os.environ, sys.stderr, out)
    display = LiveDisplay(stderr_console(sys.stderr)) if shows.live else None
    names, hosts = [t.name for t in prepared.tasks], len(prepared.inventory.hosts)

    def task_done(outcome: api.TaskOutcome) -> None:
        if display is not None:
            display.pause()
        if options.verbose:
            from nornir_utils.plugins.functions import print_result
            print_result(outcome.results)
        print_report(outcome.report, out, quiet=options.quiet, colour=shows.colour)
        following = names.index(outcome.task) + 1
        if display is not None and not outcome.interrupted and following < len(names):
            display.begin(names[following], hosts)

    def closed(transport: Any) -> None:
        reused = getattr(transport, "reused", None)
        if options.verbose and reused is not None:
            print(f"fleet: --persist: {reused} connection(s) reused from earlier runs; "
                  f"all kept {options.persist:g} s (`fleet persist status`)", file=sys.stderr)

    loop.add_signal_handler(signal.SIGINT, interrupted)
    loop.add_signal_handler(signal.SIGTERM, on_term)
    if display is not None:
        display.begin(names[0], hosts)
    try:
        return await api.run_prepared(prepared, limits=run_limits(options),
                                      host_key_checking=options.host_key_checking,
                                      persist=options.persist, stop=stop, on_warning=warn,
                                      on_progress=display, on_task_done=task_done, on_closed=closed,
                                      cluster=options.cluster, shards=options.shards,
                                      on_note=_note if options.verbose else None)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
        if display is not None:
            display.pause()  # also when the transport could not be opened


def _note(text: str) -> None:
    print(f"fleet: {printable(text)}", file=sys.stderr, flush=True)


def _persist_default() -> float:
    value = os.environ.get(wire.PERSIST_ENV, "")
    try:
        return wire.parse_persist(value)
    except ValueError as exc:
        raise UsageError(f"${wire.PERSIST_ENV}: {exc}") from None
