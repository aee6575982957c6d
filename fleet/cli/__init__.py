# PYTHON_ARGCOMPLETE_OK  (argcomplete: this console script completes itself; fleet.cli.completion)
"""The `fleet` command line: a thin layer over fleet.api, one module per command.

    run_tasks.py   fleet run TASK...        report.py   fleet report      aws.py      fleet aws check
    inventory.py   fleet inventory          tasks.py    fleet tasks       lab.py      fleet lab ...
    persist.py     fleet persist ...            watch.py    fleet watch (the mesh, round after round)
    parser.py      the parsers: errors answered by the command they belong to, with a close match
    options.py     what they share: value types, the inventory options, --json and the report files
    task_options.py  each task's parameters as options of `fleet run`
    display.py     the live line and the colours of `fleet run` on a terminal
    completion.py  shell completion (argcomplete): eval "$(register-python-argcomplete fleet)"

Each command module has add_parser(commands) and run(options) -> exit code, and loads its
feature (the mesh, the lab, AWS, the formats) only when it runs: `import fleet.cli` loads none.

Exit codes: 0 everything succeeded (for mesh: every pair ok); 1 some host or pair did not;
2 usage or inventory error; 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from fleet import __version__
from fleet.cli import aws, completion, inventory, lab, persist, report, run_tasks, watch
from fleet.cli import tasks as tasks_command
from fleet.cli.parser import CommandParser
from fleet.cli.task_options import TaskOptions
from fleet.core.errors import InventoryError, LocalError, TaskError, UsageError
from fleet.core.results import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from fleet.core.task import Task

# The commands after `run` (which also takes the tasks' options), in the order --help lists them.
COMMANDS: dict[str, ModuleType] = {"inventory": inventory, "tasks": tasks_command, "lab": lab,
                                   "report": report, "aws": aws, "persist": persist}


def build_parser(tasks: Sequence[Task] = (), tasks_dirs: Sequence[Path] = (),
                 watched: Task | None = None) -> tuple[CommandParser, TaskOptions]:
    """The whole command line, with the options of `tasks` added to `run` (whose --help lists the
    tasks found in `tasks_dirs`, ./tasks and the built-ins), and those of `watched` (the mesh
    task, when the command is `watch`) to `watch`."""
    parser = CommandParser(
        prog="fleet", description="Configure ISATAP (IPv6 over IPv4) tunnels on a fleet of Linux "
        "hosts over SSH and measure the full IPv6 mesh between them.",
        epilog="exit codes: 0 all ok, 1 some host or pair not ok, 2 usage or inventory error, "
               "130 interrupted")
    parser.add_argument("-V", "--version", action="version", version=f"fleet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    task_options = run_tasks.add_parser(commands, tasks, tasks_dirs)
    for command in COMMANDS.values():
        command.add_parser(commands)
    watch.add_parser(commands, watched)
    return parser, task_options


def main(argv: Sequence[str] | None = None) -> int:
    completing = argv is None and completion.requested()
    argv = completion.words() if completing else list(sys.argv[1:] if argv is None else argv)
    try:
        parser, task_options = build_parser(run_tasks.tasks_named(argv), run_tasks.tasks_dirs(argv),
                                            watch.mesh_task(argv))
        if completing:
            completion.complete(parser)  # writes the candidates for the shell and exits
        options = parser.parse_args(argv)
        if options.command == "run":
            return run_tasks.run(options, task_options)
        if options.command == "watch":
            return watch.run(options)
        code: int = COMMANDS[options.command].run(options)
        return code
    except (InventoryError, UsageError, TaskError) as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LocalError as exc:
        print(f"fleet lab: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("fleet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED


def run() -> None:
    """The console script `fleet` (and `python -m fleet`)."""
    sys.exit(main())


__all__ = ["build_parser", "main", "run"]
