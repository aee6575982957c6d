"""The command line's view of task parameters: each task's options added to `fleet run`, checked
for collisions, and read back into the task's typed parameters.

A task with a Params dataclass gets one option per field (fleet.core.params); two tasks that share
a params class share its options (setup and teardown share `--replace`). A task with an argparse
`add_arguments(parser)` hook gets what it adds, kept under its own name. A flag defined by two
tasks in different ways, or by a task and by `fleet run` itself, is a usage error naming both.
"""

from __future__ import annotations

import argparse
import types
from dataclasses import dataclass
from typing import Any

from fleet.core import params as task_params
from fleet.core.errors import UsageError
from fleet.core.task import Task

FLEET_RUN = "fleet run"


@dataclass(frozen=True)
class _Owner:
    task: str   # the first task that defined the flag
    key: str    # what defines it: a params field's key, or the task's own name for hook options


class TaskOptions:
    """Adds tasks' options to the `run` parser and builds each task's params from the parse."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._parser = parser
        self._owners: dict[str, _Owner] = {}
        self._hook_dests: dict[str, list[str]] = {}

    def add(self, task: Task) -> None:
        cls = task.params_class
        if cls is not None:
            self._add_params(task.name, cls)
        elif task.argument_hook is not None:
            self._hook_dests[task.name] = []
            task.argument_hook(_Recorder(self, task.name, self._parser))

    def params(self, task: Task, namespace: argparse.Namespace) -> Any:
        """The task's parameters from the parsed command line (its checks raise UsageError)."""
        cls = task.params_class
        if cls is not None:
            values = {spec.name: getattr(namespace, spec.key) for spec in task_params.specs(cls)}
            try:
                return task_params.build(cls, values)
            except ValueError as exc:
                raise UsageError(f"{task.name}: {exc}") from None
        dests = self._hook_dests.get(task.name, [])
        return types.SimpleNamespace(**{d: getattr(namespace, _hook_dest(task.name, d)) for d in dests})

    def _claim(self, flag: str, task: str, key: str) -> bool:
        """Whether `flag` still has to be added for `task`; a collision is a UsageError."""
        owner = self._owners.get(flag)
        if owner is None:
            self._owners[flag] = _Owner(task, key)
            return True
        if owner.key == key:
            return False  # the same option, shared through one params class
        raise UsageError(f"tasks {owner.task!r} and {task!r} both define {flag}; run them in "
                         "separate invocations or rename one's option")

    def _add_params(self, name: str, cls: type) -> None:
        group = None
        for spec in task_params.specs(cls):
            if not self._claim(spec.flag, name, spec.key):
                continue
            if group is None:
                group = self._parser.add_argument_group(name)
            kwargs: dict[str, Any] = {"dest": spec.key, "default": spec.default,
                                      "help": spec.option.help}
            if spec.kind is bool:
                kwargs["action"] = "store_true" if spec.default is False else \
                    argparse.BooleanOptionalAction
            else:
                kwargs["type"] = spec.kind
                if spec.option.choices:
                    kwargs["choices"] = spec.option.choices
                else:
                    kwargs["metavar"] = spec.option.metavar or spec.name.upper()
            _add(group, name, (spec.flag,), kwargs)


def _add(group: Any, task: str, flags: tuple[str, ...], kwargs: dict[str, Any]) -> argparse.Action:
    """Add one option; argparse refuses a flag it already has: here, one of fleet run's own."""
    try:
        action: argparse.Action = group.add_argument(*flags, **kwargs)
    except argparse.ArgumentError:
        raise UsageError(f"task {task!r} defines {'/'.join(flags)}, which is an option of "
                         f"{FLEET_RUN} itself; rename the task's option") from None
    return action


def _hook_dest(task: str, dest: str) -> str:
    return f"task:{task}:{dest}"


class _Recorder:
    """What a task's add_arguments(parser) is given: adds to the real parser, with the task's
    options kept under the task's name and every flag checked for collisions."""

    def __init__(self, options: TaskOptions, task: str, target: Any) -> None:
        self._options, self._task, self._target = options, task, target

    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action:
        if not flags or not all(f.startswith("-") for f in flags):
            raise UsageError(f"task {self._task!r}: task options must be flags (--name), "
                             f"not {flags!r}")
        for flag in flags:
            self._options._claim(flag, self._task, f"task:{self._task}")
        long = next((f for f in flags if f.startswith("--")), flags[0])
        dest = kwargs.pop("dest", None) or long.lstrip("-").replace("-", "_")
        self._options._hook_dests[self._task].append(dest)
        if kwargs.get("action", "store") in ("store", "append", "extend"):
            kwargs.setdefault("metavar", dest.upper())  # not the namespaced dest
        return _add(self._target, self._task, flags, {**kwargs, "dest": _hook_dest(self._task, dest)})

    def add_argument_group(self, *args: Any, **kwargs: Any) -> _Recorder:
        return _Recorder(self._options, self._task,
                         self._options._parser.add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _Recorder:
        return _Recorder(self._options, self._task, self._target.add_mutually_exclusive_group(**kwargs))
