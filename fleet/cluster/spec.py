"""What a shard's worker is given: the run's tasks and parameters, every host, and its own share.

Built once in the parent from a checked run (fleet.api.PreparedRun). The hosts travel without
their Nornir host (which holds the whole inventory): a worker needs where to log in and every
host's addresses (the mesh's targets), and gives its results back as plain data. A task's
parameters are pickled apart and read after the task is loaded on the worker, so a task file's
own Params class (a module loaded by path) can be rebuilt there.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from fleet.core.runner import RunLimits
from fleet.core.task import Task, task_from_source
from fleet.inventory import FleetHost


@dataclass(frozen=True)
class TaskRef:
    """A task as a worker finds it again: its name, its module or file, and its dry-run flag."""

    name: str
    source: str  # a module name (a built-in), or a task file's path
    is_file: bool
    dry_run: bool


@dataclass(frozen=True)
class ShardSpec:
    tasks: tuple[TaskRef, ...]
    params: bytes  # pickle of a tuple: each task's parameters, in order
    hosts: tuple[FleetHost, ...]  # the whole fleet, in inventory order
    shard: range  # indexes of this shard's hosts
    limits: RunLimits
    host_key_checking: str


def task_ref(task: Task, dry_run: bool) -> TaskRef:
    module = task.module.__name__
    is_file = module.startswith("fleet._loaded_tasks.")
    return TaskRef(task.name, str(task.path) if is_file else module, is_file, dry_run)


def portable(host: FleetHost) -> FleetHost:
    """The host without its Nornir host (it stays in the parent)."""
    return dataclasses.replace(host, nornir_host=cast(Any, None))


def shard_specs(tasks: Sequence[Task], params: Sequence[Any], dry_run: bool,
                hosts: Sequence[FleetHost], shards: Sequence[range], limits: RunLimits,
                host_key_checking: str) -> list[ShardSpec]:
    refs = tuple(task_ref(task, dry_run) for task in tasks)
    packed = pickle.dumps(tuple(params))
    every = tuple(portable(h) for h in hosts)
    return [ShardSpec(refs, packed, every, shard, limits, host_key_checking) for shard in shards]


def load_spec_tasks(spec: ShardSpec) -> tuple[list[Task], tuple[Any, ...]]:
    """The spec's tasks, loaded on this worker, then their parameters."""
    tasks = [task_from_source(ref.name, Path(ref.source) if ref.is_file else ref.source)
             for ref in spec.tasks]
    params: tuple[Any, ...] = pickle.loads(spec.params)  # noqa: S301  # the parent's own pickle
    return tasks, params


__all__ = ["ShardSpec", "TaskRef", "load_spec_tasks", "shard_specs"]
