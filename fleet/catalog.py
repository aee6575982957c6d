"""The tasks fleet ships, by name, and the catalogue of every task a run can find.

Built-in tasks live in their feature packages and are imported only when a run asks for them, so
listing or running one task never loads another feature's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fleet.core.task import Task, TaskSource, load_task, resolve_tasks

BUILTIN_TASKS = {
    "setup": "fleet.tunnel.setup_task",
    "mesh": "fleet.mesh.task",
    "teardown": "fleet.tunnel.teardown_task",
}


def find_tasks(dirs: Sequence[Path] = ()) -> tuple[dict[str, TaskSource], dict[str, str]]:
    """Every task on the search path (each --tasks-dir, ./tasks, the built-ins) and the notes."""
    return resolve_tasks(dirs, BUILTIN_TASKS)


def task(name: str, dirs: Sequence[Path] = ()) -> Task:
    """Load task NAME from the search path."""
    return load_task(name, dirs, BUILTIN_TASKS)
