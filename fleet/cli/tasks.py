"""`fleet tasks`: the tasks `fleet run` can run, where each comes from, and what it does."""

from __future__ import annotations

import argparse
from pathlib import Path

from fleet.catalog import find_tasks
from fleet.catalog import task as load_task
from fleet.cli.options import Commands, print_notes
from fleet.core.results import EXIT_OK


def add_parser(commands: Commands) -> argparse.ArgumentParser:
    listing = commands.add_parser("tasks", help="list the tasks `fleet run` can run")
    listing.add_argument("--tasks-dir", type=Path, action="append", default=[], metavar="DIR")
    return listing


def run(options: argparse.Namespace) -> int:
    found, notes = find_tasks(options.tasks_dir)
    print_notes(list(notes.values()))
    for name in sorted(found):
        task = load_task(name, options.tasks_dir)
        print(f"{name:<12} {task.description}  [{task.path}]")
    return EXIT_OK
