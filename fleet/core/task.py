"""Tasks: the Python files that `fleet run NAME` runs.

A task is a file NAME.py in a tasks directory. It defines

    async def run(host: HostRun) -> nornir Result     required: the work on one host
    def add_arguments(parser) -> None                 optional: the task's own options
    def prepare(context: TaskContext) -> None         optional: check options before any host is
                                                      touched (raise UsageError)
    def report(context: TaskContext, outcome: RunOutcome) -> int
                                                      optional: print the outcome, return the exit
                                                      code (default: a line per host)

and its docstring's first line describes it. Directories are searched in order: each
`--tasks-dir`, then ./tasks, then the tasks that ship with fleet; ./tasks never replaces a built-in
task (a --tasks-dir may, and is then named). Tasks are loaded from their file path, so no generic
package name is installed or imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from fleet.core.errors import TaskError, error_kind, failure_reason
from fleet.core.output import render_host_table
from fleet.core.runner import RunOutcome
from fleet.inventory import FleetHost

TASK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class TaskContext:
    """What a task's prepare() and report() see of the run."""

    name: str
    hosts: Sequence[FleetHost]
    options: argparse.Namespace
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    json_documents: list[Any] = field(default_factory=list)

    def emit_json(self, document: Any) -> None:
        """Hand the task's JSON report to the CLI, which writes it where --json says: a plain
        value, or an object with `write_json(stream)` that streams itself."""
        self.json_documents.append(document)


@dataclass(frozen=True)
class Task:
    name: str
    path: Path
    module: ModuleType

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.module) or ""
        return doc.splitlines()[0] if doc else ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        hook = getattr(self.module, "add_arguments", None)
        if hook is not None:
            hook(parser)

    def prepare(self, context: TaskContext) -> None:
        hook = getattr(self.module, "prepare", None)
        if hook is not None:
            hook(context)

    @property
    def run(self) -> Any:
        return self.module.run

    def report(self, context: TaskContext, outcome: RunOutcome) -> int:
        hook = getattr(self.module, "report", None) or default_report
        return int(hook(context, outcome))


def search_path(extra: Sequence[Path] = ()) -> list[Path]:
    dirs = [*extra, Path.cwd() / "tasks"]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def _tasks_in(directory: Path) -> dict[str, Path]:
    return {path.stem: path for path in sorted(directory.glob("*.py")) if TASK_NAME.match(path.stem)}


TaskSource = Path | str  # a task file, or the module name of a built-in task


def resolve_tasks(extra: Sequence[Path] = (), builtins: Mapping[str, str] | None = None,
                  ) -> tuple[dict[str, TaskSource], dict[str, str]]:
    """Every task name and where it comes from (a file, or a built-in's module name), and for some
    names a note: a file that was passed over, or one that overrides a built-in.

    A `--tasks-dir` comes first and may override a built-in (the notes say so). ./tasks adds
    tasks but never replaces a built-in: a `tasks/setup.py` that happens to lie in the working
    directory must not run in place of fleet's own setup unnoticed.
    """
    builtins = dict(builtins or {})
    found: dict[str, TaskSource] = {}
    notes: dict[str, str] = {}
    for directory in search_path(extra):
        explicit = any(directory.resolve() == Path(d).resolve() for d in extra)
        for name, path in _tasks_in(directory).items():
            if name in found:
                continue
            if name in builtins:
                if not explicit:
                    notes[name] = (f"{path} ignored: {name!r} is a built-in task (to run this "
                                   f"file instead, pass --tasks-dir {directory})")
                    continue
                notes[name] = f"task {name!r} from {path} overrides the built-in"
            found[name] = path
    for name, module in builtins.items():
        found.setdefault(name, module)
    return found, notes


def available_tasks(extra: Sequence[Path] = (), builtins: Mapping[str, str] | None = None,
                    ) -> dict[str, TaskSource]:
    """Every task name on the search path and where it comes from."""
    return resolve_tasks(extra, builtins)[0]


def load_task(name: str, extra: Sequence[Path] = (), builtins: Mapping[str, str] | None = None) -> Task:
    if not TASK_NAME.match(name):
        raise TaskError(f"invalid task name {name!r}: letters, digits, '-' and '_' only")
    tasks = available_tasks(extra, builtins)
    if name not in tasks:
        where = ", ".join(str(d) for d in search_path(extra)) or "no tasks directory"
        known = ", ".join(sorted(tasks)) or "none"
        raise TaskError(f"no task {name!r} (searched {where} and the built-ins; available: {known})")
    source = tasks[name]
    module = _import_task(source) if isinstance(source, Path) else importlib.import_module(source)
    if not inspect.iscoroutinefunction(getattr(module, "run", None)):
        raise TaskError(f"{source}: a task must define `async def run(host)`")
    return Task(name, Path(module.__file__ or source), module)


def _import_task(path: Path) -> ModuleType:
    """A task file loaded by its path: no generic package name is installed or imported."""
    module_name = f"fleet._loaded_tasks.{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TaskError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise TaskError(f"{path}: failed to load: {type(exc).__name__}: {exc}") from exc
    return module


def host_error(result: Any) -> str:
    """The reason a failed Nornir Result failed, in one line."""
    exc = getattr(result, "exception", None)
    return failure_reason(exc) if exc is not None else str(result.result)


def host_error_kind(result: Any) -> str | None:
    """The kind of a failed Nornir Result's failure (fleet.core.errors), None when it did not fail."""
    if not result.failed:
        return None
    return error_kind(getattr(result, "exception", None)) or "error"


def default_report(context: TaskContext, outcome: RunOutcome) -> int:
    """One line per host (ok / changed / failed and why) and a recap."""
    rows, counts = [], {"ok": 0, "changed": 0, "failed": 0}
    documents = []
    for host in context.hosts:
        result = outcome.results[host.name][0]
        if result.failed:
            status, detail = "failed", f"{host_error_kind(result)}: {host_error(result)}"
        else:
            status = "changed" if result.changed else "ok"
            detail = result.result.get("summary", "") if isinstance(result.result, dict) else \
                str(result.result or "")
        counts[status] += 1
        rows.append((host.name, status, detail))
        documents.append({"name": host.name, "status": status, "changed": bool(result.changed),
                          "failed": bool(result.failed),
                          "error": host_error(result) if result.failed else None,
                          "error_kind": host_error_kind(result),
                          "result": result.result if isinstance(result.result, dict) else None})
    print(render_host_table(context.name, rows, counts, outcome.elapsed,
                            interrupted=outcome.interrupted), file=context.out)
    context.emit_json({"task": context.name, "hosts": documents, "summary": {
        "hosts": len(context.hosts), **counts}, "interrupted": outcome.interrupted})
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if counts["failed"] else EXIT_OK


__all__ = ["Task", "TaskContext", "available_tasks", "default_report", "host_error",
           "host_error_kind", "load_task"]
