"""The built-in tasks, by name, and the catalogue of every task a run can find.

Built-in tasks are registered under the entry point group `fleet.tasks` (pyproject.toml: `setup =
"fleet.tasks.setup"` ...), fleet's own as any other installed distribution's, and read here with
importlib.metadata. From a source checkout that was not installed the group lacks fleet's own
entries; then fleet's built-ins are the modules of the package `fleet.tasks` (the repository's
tasks/ folder). Only names are read here: a task's module is imported when a run asks for it, so
listing or running one task never loads another feature's code.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from fleet.core.task import TASK_NAME, Task, TaskSource, load_task, resolve_tasks

GROUP = "fleet.tasks"
PACKAGE = "fleet.tasks"


def builtin_tasks() -> dict[str, str]:
    """Every built-in task's name and module: the entry points of the group (the first of a name
    wins), and when fleet's own are not among them (not installed), the modules of fleet.tasks."""
    found: dict[str, str] = {}
    for point in entry_points(group=GROUP):
        found.setdefault(point.name, point.module)
    if not any(module.startswith(PACKAGE + ".") for module in found.values()):
        import fleet.tasks  # the package only: its __init__ imports no task

        for info in pkgutil.iter_modules(fleet.tasks.__path__):
            if not info.ispkg and TASK_NAME.match(info.name):
                found.setdefault(info.name, f"{PACKAGE}.{info.name}")
    return found


def find_tasks(dirs: Sequence[Path] = ()) -> tuple[dict[str, TaskSource], dict[str, str]]:
    """Every task on the search path (each --tasks-dir, ./tasks, the built-ins) and the notes."""
    return resolve_tasks(dirs, builtin_tasks())


def task(name: str, dirs: Sequence[Path] = ()) -> Task:
    """Load task NAME from the search path."""
    return load_task(name, dirs, builtin_tasks())


__all__ = ["GROUP", "builtin_tasks", "find_tasks", "task"]
