"""The `fleet` command line: a thin layer over the inventory, the runner, the tasks and the lab.

Exit codes: 0 everything succeeded (for mesh: every pair ok); 1 some host or pair did not;
2 usage or inventory error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from fleet import __version__, api, cli_aws, cli_report
from fleet.catalog import find_tasks
from fleet.catalog import task as load_task
from fleet.cli_display import LiveDisplay, print_report, stderr_console, terminal_features
from fleet.cli_options import TaskOptions
from fleet.core.errors import InventoryError, LabError, TaskError, UsageError
from fleet.core.oslimits import raise_open_file_limit
from fleet.core.output import columns, write_json, write_json_documents
from fleet.core.output_files import ReadFile, check_outputs
from fleet.core.results import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from fleet.core.runner import RunLimits
from fleet.core.task import Task
from fleet.core.terminal import printable
from fleet.inventory import (
    DEFAULTS_FILE,
    GROUPS_FILE,
    HOSTS_FILE,
    Inventory,
)
from fleet.ssh.hostkeys import HOST_KEY_CHECKING
from fleet.ssh.persist import wire
from fleet.ssh.persist.trust import login_files

if TYPE_CHECKING:
    from fleet.lab import LabInfo

DEFAULT_INVENTORY = Path("inventory")
DEFAULT_LAB_DIR = Path(".fleet-lab")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _names(text: str) -> list[str]:
    return [part for part in (p.strip() for p in text.split(",")) if part]


def add_inventory_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inventory")
    group.add_argument("-i", "--inventory", type=Path, default=DEFAULT_INVENTORY, metavar="DIR|FILE",
                       help="Nornir inventory directory: hosts.yaml, groups.yaml, defaults.yaml "
                            "(default: ./inventory); or a YAML file with `plugin: fleet.aws_ec2`, "
                            "whose hosts are the running EC2 instances matching its filters "
                            "(needs the aws extra)")
    group.add_argument("-l", "--limit", type=_names, action="extend", default=[], metavar="HOSTS",
                       help="only these hosts: comma-separated names or glob patterns; repeatable")
    group.add_argument("-g", "--groups", type=_names, action="extend", default=[], metavar="GROUPS",
                       help="only hosts in these groups (directly or through a parent group)")


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
    group.add_argument("--heatmap", type=Path, metavar="FILE", help="also draw the mesh's matrix "
                       "to FILE.html (a self-contained page) or FILE.svg")
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
    limits = parser.add_argument_group("concurrency and timeouts")
    d = RunLimits()
    limits.add_argument("-w", "--workers", type=_positive_int, default=d.workers,
                        help=f"hosts worked on at once (default {d.workers})")
    limits.add_argument("--connect-workers", type=_positive_int, default=d.connect_workers,
                        help=f"SSH handshakes in flight at once (default {d.connect_workers})")
    limits.add_argument("--connect-timeout", type=_positive_float, default=d.connect_timeout,
                        metavar="S", help=f"seconds to connect and log in (default {d.connect_timeout:g})")
    limits.add_argument("--command-timeout", type=_positive_float, default=d.command_timeout,
                        metavar="S", help=f"seconds for each remote command (default "
                        f"{d.command_timeout:g}; the mesh probe gets what its pings need)")
    limits.add_argument("--host-timeout", type=_positive_float, default=d.host_timeout,
                        metavar="S", help=f"seconds for a task on one host (default {d.host_timeout:g})")
    ssh = parser.add_argument_group("ssh")
    ssh.add_argument("--host-key-checking", choices=HOST_KEY_CHECKING, default="yes",
                     help="as OpenSSH's StrictHostKeyChecking: yes refuses unknown and changed "
                     "keys (default); accept-new records unknown keys in the known_hosts file in "
                     "use and refuses changed ones; no accepts any key, a changed one with a "
                     "warning and without sending a password")
    ssh.add_argument("--no-host-key-checking", dest="host_key_checking", action="store_const",
                     const="no", help="the same as --host-key-checking no")
    ssh.add_argument("--persist", type=_persist, default=None, metavar="SECONDS",
                     help="keep the SSH connections open in a background process for SECONDS "
                     "after the run (60, 10m ...) and reuse them in the next runs, like OpenSSH's "
                     f"ControlPersist; 0 turns it off (default ${wire.PERSIST_ENV} or 0). "
                     "`fleet persist status|stop` shows or closes them")


def build_parser(tasks: Sequence[Task] = ()) -> tuple[argparse.ArgumentParser, TaskOptions]:
    """The whole command line, with the options of `tasks` added to `run`."""
    parser = argparse.ArgumentParser(
        prog="fleet", description="Configure ISATAP (IPv6 over IPv4) tunnels on a fleet of Linux "
        "hosts over SSH and measure the full IPv6 mesh between them.",
        epilog="exit codes: 0 all ok, 1 some host or pair not ok, 2 usage or inventory error, "
               "130 interrupted")
    parser.add_argument("-V", "--version", action="version", version=f"fleet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run tasks on the inventory's hosts",
                              description="Run one or more tasks (setup, mesh, teardown, or your "
                              "own tasks/NAME.py) on every selected host, over shared connections.")
    run.add_argument("tasks", nargs="+", metavar="TASK", help="task names, run in order")
    add_run_options(run)
    task_options = TaskOptions(run)
    for task in tasks:
        task_options.add(task)

    inventory = commands.add_parser("inventory", help="list the hosts and their ISATAP addresses")
    add_inventory_options(inventory)
    inventory.add_argument("--json", action="store_true", help="print JSON instead of a table")

    listing = commands.add_parser("tasks", help="list the tasks `fleet run` can run")
    listing.add_argument("--tasks-dir", type=Path, action="append", default=[], metavar="DIR")

    lab = commands.add_parser("lab", help="a local test bed of QEMU guests with real kernels",
                              description="N small QEMU guests with a kernel that has ISATAP, "
                              "each with sshd, on a private network, and an inventory for them.")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up = lab_commands.add_parser("up", help="build (cached) and boot the guests")
    up.add_argument("--hosts", type=_positive_int, default=4, metavar="N",
                    help="number of guests (default 4)")
    status = lab_commands.add_parser("status", help="show the lab's guests")
    status.add_argument("--json", action="store_true")
    down = lab_commands.add_parser("down", help="stop every guest and remove the lab")
    stop = lab_commands.add_parser("stop", help="stop one guest (to see a failure)")
    stop.add_argument("guest", help="guest name, e.g. h2")
    for sub in (up, status, down, stop):
        sub.add_argument("--workdir", type=Path, default=DEFAULT_LAB_DIR, metavar="DIR",
                         help="where the lab keeps its state and inventory (default ./.fleet-lab)")

    cli_report.add_parser(commands)
    cli_aws.add_parser(commands, add_inventory_options)

    persist = commands.add_parser("persist", help="show or stop the kept SSH connections (--persist)",
                                  description="The background process of `fleet run --persist`: "
                                  f"its socket is in ${wire.DIR_ENV}, else $XDG_RUNTIME_DIR/fleet, "
                                  "else /tmp/fleet-UID.")
    persist_commands = persist.add_subparsers(dest="persist_command", required=True, metavar="ACTION")
    persist_status = persist_commands.add_parser("status", help="the kept connections "
                                                 "(exit 1 when nothing runs)")
    persist_status.add_argument("--json", action="store_true")
    persist_commands.add_parser("stop", help="close every kept connection and stop the process")
    return parser, task_options


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        tasks = _tasks_named(argv)
        parser, task_options = build_parser(tasks)
        options = parser.parse_args(argv)
        if options.command == "inventory":
            return cmd_inventory(options)
        if options.command == "tasks":
            return cmd_tasks(options)
        if options.command == "lab":
            return cmd_lab(options)
        if options.command == "persist":
            return cmd_persist(options)
        if options.command == "report":
            return cli_report.run(options)
        if options.command == "aws":
            return cli_aws.run(options, select_hosts(options))
        return cmd_run(options, task_options)
    except (InventoryError, UsageError, TaskError) as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LabError as exc:
        print(f"fleet lab: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("fleet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED


def _tasks_named(argv: Sequence[str]) -> list[Task]:
    """The tasks named after `run`, loaded before the full parser exists (they add options).

    A parser of fleet run's own options reads the command line first; among what it takes for
    task names, the names of no task are values of task options not added yet (the full parser
    reads them right) or unknown names (loading them later says so).
    """
    if not argv or argv[0] != "run":
        return []
    first = argparse.ArgumentParser(prog="fleet run", add_help=False)
    first.add_argument("tasks", nargs="*")
    add_run_options(first)
    with contextlib.redirect_stderr(io.StringIO()):  # the full parser reports the errors
        try:
            seen, _ = first.parse_known_intermixed_args(argv[1:])
        except SystemExit:
            return []
    found = find_tasks(seen.tasks_dir)[0]
    return [load_task(name, seen.tasks_dir) for name in dict.fromkeys(seen.tasks) if name in found]


def select_hosts(options: argparse.Namespace) -> Inventory:
    return api.select(options.inventory, options.limit, options.groups)


def cmd_inventory(options: argparse.Namespace) -> int:
    inventory = select_hosts(options)
    from fleet.ssh.transport import effective_port  # the ssh config's Port where the inventory has none

    rows: list[dict[str, Any]] = [
        {"name": h.name, "ssh": f"{h.ssh_host}:{effective_port(h)}", "ipv4": str(h.ipv4),
         "address": str(h.address), "groups": list(h.groups)} for h in inventory.hosts]
    if options.json:
        write_json({"hosts": rows}, sys.stdout)
        return EXIT_OK
    table = [["NAME", "SSH", "IPV4", "ISATAP ADDRESS", "GROUPS"]] + [
        [r["name"], r["ssh"], r["ipv4"], r["address"], ",".join(r["groups"])] for r in rows]
    print("\n".join(columns(table)))
    return EXIT_OK


def cmd_tasks(options: argparse.Namespace) -> int:
    found, notes = find_tasks(options.tasks_dir)
    _print_notes(list(notes.values()))
    for name in sorted(found):
        task = load_task(name, options.tasks_dir)
        print(f"{name:<12} {task.description}  [{task.path}]")
    return EXIT_OK


def _print_notes(notes: Sequence[str]) -> None:
    for note in notes:
        print(f"fleet: note: {note}", file=sys.stderr)


@contextlib.contextmanager
def _json_target(path: str | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
    elif path == "-":
        yield sys.stdout
    else:
        with open(path, "w", encoding="utf-8") as stream:
            yield stream


def cmd_run(options: argparse.Namespace, task_options: TaskOptions) -> int:
    raise_open_file_limit()
    if options.persist is None:
        options.persist = _persist_default()  # read here, so a bad value breaks only `run`
    tasks = [load_task(name, options.tasks_dir) for name in options.tasks]
    notes = find_tasks(options.tasks_dir)[1]
    _print_notes([notes[name] for name in dict.fromkeys(options.tasks) if name in notes])
    inventory = select_hosts(options)
    params = {task.name: task_options.params(task, options) for task in tasks}
    prepared = api.prepare(tasks, inventory, params=params, dry_run=options.dry_run,
                           host_key_checking=options.host_key_checking)  # before any host is touched
    _refuse_to_overwrite_an_input(options, inventory)
    if options.json not in (None, "-"):
        try:
            Path(options.json).open("a", encoding="utf-8").close()
        except OSError as exc:
            raise UsageError(f"--json {options.json}: {exc.strerror}") from None
    artifacts = _check_artifacts(options, [t.name for t in tasks])
    for warning in api.preflight_warnings(prepared):
        _warn("", warning)
    outcome = asyncio.run(_execute(prepared, options))
    with _json_target(options.json) as stream:
        if stream is not None and outcome.tasks:
            write_json_documents(outcome.json_documents(), stream)
    if artifacts:
        from fleet import formats

        formats.write(outcome.tasks, artifacts)
    return outcome.exit_code


def _check_artifacts(options: argparse.Namespace, tasks: Sequence[str]) -> dict[str, Path]:
    """The report files asked for (--junit, --prometheus, --heatmap), checked before any host is
    touched: each format fits the tasks (where and whether each can be written, and that none is
    an input, _refuse_to_overwrite_an_input checked)."""
    asked = {name: getattr(options, name) for name in ("junit", "prometheus", "heatmap")
             if getattr(options, name) is not None}
    if not asked:
        return {}
    from fleet import formats  # the formats' modules themselves load only when writing

    found = formats.problems(asked, tasks)
    if found:
        raise UsageError("; ".join(found))
    return asked  # each one checked by _refuse_to_overwrite_an_input, before any host is touched


def _refuse_to_overwrite_an_input(options: argparse.Namespace, inventory: Inventory) -> None:
    """No output file (--json, --junit, --prometheus, --heatmap) is a file this run reads, and each
    can be written: fleet.core.output_files, the one check `fleet report` makes too."""
    # The three files, or an EC2 source file and the defaults.yaml beside it.
    reads = [ReadFile(Path(inventory.files.path(name)), f"the inventory's {name}")
             for name in (HOSTS_FILE, GROUPS_FILE, DEFAULTS_FILE)]
    reads.append(ReadFile(inventory.directory / DEFAULTS_FILE, f"the inventory's {DEFAULTS_FILE}"))
    cwd = os.getcwd()
    for host in inventory.hosts:  # every login's known_hosts, keys and ssh config, defaults included
        reads += [ReadFile(Path(path), role) for path, role in
                  login_files(host.ssh_options, environ=os.environ, cwd=cwd)]
    check_outputs({f"--{name}": getattr(options, name) for name in ("json", "junit", "prometheus",
                                                                    "heatmap")}, reads)


def run_limits(options: argparse.Namespace) -> RunLimits:
    return RunLimits(workers=options.workers, connect_workers=options.connect_workers,
                     connect_timeout=options.connect_timeout, command_timeout=options.command_timeout,
                     host_timeout=options.host_timeout)


async def _execute(prepared: api.PreparedRun, options: argparse.Namespace) -> api.Outcome:
    """The run on one event loop: Ctrl-C or TERM stops it (hosts not finished are reported as
    interrupted; a second Ctrl-C stops at once); each task's report is printed as it ends."""
    limits = run_limits(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C stops at once

    loop.add_signal_handler(signal.SIGINT, interrupted)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    out = sys.stderr if options.json == "-" else sys.stdout
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

    if display is not None:
        display.begin(names[0], hosts)
    try:
        transport = await api.open_transport(host_key_checking=options.host_key_checking,
                                             persist=options.persist, on_warning=_warn)
        try:
            return await api.execute(prepared, transport, limits=limits, stop=stop,
                                     on_progress=display, on_task_done=task_done)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
            await transport.close()
            reused = getattr(transport, "reused", None)
            if options.verbose and reused is not None:
                print(f"fleet: --persist: {reused} connection(s) reused from earlier runs; "
                      f"all kept {options.persist:g} s (`fleet persist status`)", file=sys.stderr)
    finally:
        if display is not None:
            display.pause()  # also when the transport could not be opened


def _warn(host: str, text: str) -> None:
    """A host's warning (a changed key accepted under --host-key-checking no) stands out; the
    run's own (--persist falling back) is a plain warning."""
    line = f"WARNING: {host}: {text}" if host else f"warning: {text}"
    print(f"fleet: {printable(line)}", file=sys.stderr, flush=True)


def _persist(value: str) -> float:
    try:
        return wire.parse_persist(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _persist_default() -> float:
    value = os.environ.get(wire.PERSIST_ENV, "")
    try:
        return wire.parse_persist(value)
    except ValueError as exc:
        raise UsageError(f"${wire.PERSIST_ENV}: {exc}") from None


def cmd_persist(options: argparse.Namespace) -> int:
    from fleet.ssh.persist import control

    directory = wire.runtime_dir()
    if options.persist_command == "status":
        return control.status(directory, sys.stdout, as_json=options.json)
    return control.stop(directory, sys.stdout)


def cmd_lab(options: argparse.Namespace) -> int:
    from fleet import lab

    workdir = options.workdir.resolve()
    if options.lab_command == "up":
        problems = lab.check_prerequisites()
        if problems:
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


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
