"""Tasks: what `fleet run NAME` and `fleet.run(["NAME"])` run.

A task is a module (a built-in, or a file NAME.py in a tasks directory). It defines

    async def run(host: HostRun) -> nornir Result     required: the work on one host
    Params                                            optional: a frozen dataclass of the task's
                                                      parameters (fleet.core.params.option fields
                                                      become command-line options)
    def add_arguments(parser) -> None                 optional, instead of Params: argparse options
                                                      (their values reach the task as host.params)
    def prepare(context: TaskContext) -> None         optional: check the parameters against the
                                                      hosts before any host is touched (raise
                                                      UsageError)
    def report(context: TaskContext, outcome: RunOutcome) -> Report
                                                      optional: the outcome as a Report (default:
                                                      a line per host, fleet.core.results)
    def warnings(context: TaskContext) -> list[str]   optional: what the run should hear before it
                                                      starts, from outside the hosts (warnings
                                                      only: the run goes on)

and its docstring's first line describes it. Directories are searched in order: each
`--tasks-dir`, then ./tasks, then the built-ins (modules, by name: the caller reads them from
the `fleet.tasks` entry points); ./tasks never replaces a built-in task (a --tasks-dir may, and
is then named), and a built-in's own file met in a directory (./tasks in fleet's source tree) is
that built-in, loaded once under its module name. Task files are loaded from their path, so no
generic package name is installed or imported.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from fleet.core import params as task_params
from fleet.core.errors import TaskError, UsageError
from fleet.core.results import Report, RunOutcome, hosts_report
from fleet.core.runner import HostTask
from fleet.core.transport import RunTarget

TASK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class TaskContext:
    """What a task's prepare() and report() see of the run."""

    name: str
    hosts: Sequence[RunTarget]
    params: Any
    dry_run: bool = False
    inventory: Any = None  # what the hosts were selected from (fleet.api's Inventory), if known


@dataclass(frozen=True)
class Task:
    name: str
    path: Path
    module: ModuleType

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.module) or ""
        return doc.splitlines()[0] if doc else ""

    @property
    def params_class(self) -> type | None:
        """The task's Params dataclass, None for a task without one."""
        found = getattr(self.module, "Params", None)
        return found if isinstance(found, type) and dataclasses.is_dataclass(found) else None

    @property
    def argument_hook(self) -> Callable[[Any], None] | None:
        """An argparse `add_arguments(parser)` of a task without Params (the command line's)."""
        return getattr(self.module, "add_arguments", None) if self.params_class is None else None

    def make_params(self, given: Any = None) -> Any:
        """The task's parameters from what a caller gave: a Params instance, a mapping of its
        fields, or None for the defaults. A task without Params gets a plain namespace."""
        cls = self.params_class
        try:
            if cls is not None:
                return task_params.coerce(cls, given)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"task {self.name!r}: {exc}") from None
        if given is None or isinstance(given, types.SimpleNamespace):
            return given or types.SimpleNamespace()
        if isinstance(given, Mapping):
            return types.SimpleNamespace(**given)
        return given

    def prepare(self, context: TaskContext) -> None:
        hook = getattr(self.module, "prepare", None)
        if hook is not None:
            hook(context)

    @property
    def run(self) -> HostTask:
        run: HostTask = self.module.run
        return run

    def warnings(self, context: TaskContext) -> list[str]:
        """The task's own warnings before the run (its `warnings(context)`), [] without one."""
        hook = getattr(self.module, "warnings", None)
        if hook is None:
            return []
        found = hook(context)
        return [str(warning) for warning in found or ()]

    def report(self, context: TaskContext, outcome: RunOutcome) -> Report:
        hook = getattr(self.module, "report", None)
        if hook is None:
            return hosts_report(context.name, [h.name for h in context.hosts], outcome)
        report: Report = hook(context, outcome)
        if isinstance(report, int) or not hasattr(report, "exit_code"):
            raise TaskError(f"{self.path}: report() must return a Report (see fleet.core.results), "
                            f"not {type(report).__name__}")
        return report


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
            if name in found or (name in builtins and _is_module_file(builtins[name], path)):
                continue  # the built-in's own source (./tasks in fleet's source tree): no shadow
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


def _is_module_file(module: str, path: Path) -> bool:
    """Whether `path` is the source of `module` (found, not imported: only its package is): the
    same file (./tasks in fleet's source tree), or the same text (a clone of fleet's repository
    while fleet is installed from its wheel)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    if origin is None:
        return False
    if origin.resolve() == path.resolve():
        return True
    try:
        return origin.read_bytes() == path.read_bytes()
    except OSError:
        return False


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
    return task_from_source(name, tasks[name])


def task_from_source(name: str, source: TaskSource) -> Task:
    """Task NAME from where the search found it: a task file's path, or a built-in's module (a
    cluster's worker loads the parent's tasks again this way)."""
    module = _import_task(source) if isinstance(source, Path) else importlib.import_module(source)
    if not is_host_task(getattr(module, "run", None)):
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


def is_host_task(run: object) -> bool:
    """An `async def run(host)`, or one wrapped by fleet.core.runner.host_task."""
    return inspect.iscoroutinefunction(run) or bool(getattr(run, "__fleet_host_task__", False))


__all__ = ["Task", "TaskContext", "TaskSource", "available_tasks", "is_host_task", "load_task",
           "resolve_tasks", "task_from_source"]
