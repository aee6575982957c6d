"""What crosses between the parent and a shard's worker: plain, picklable data.

A worker's Nornir Results hold its own Nornir hosts, which stay on the worker: a host's result
travels as a HostOutcome (its data, flags and failure as a HostError's JSON) and becomes a Result
of the parent's own host again (`to_result`), so the task's report reads what a single-process run
would have given it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from nornir.core.task import Result

from fleet.core.errors import HostError, error_kind, failure_reason, host_error_from_json
from fleet.core.progress import ProgressEvent


@dataclass(frozen=True)
class HostOutcome:
    """One host's Result of one task, without its Nornir host."""

    host: str
    result: Any
    changed: bool
    failed: bool
    diff: str
    error: dict[str, Any] | None  # HostError.to_json(), None without an exception
    severity: int = logging.INFO

    @classmethod
    def of(cls, host: str, result: Result) -> HostOutcome:
        exc = result.exception
        error = None
        if exc is not None:
            error = (exc.to_json() if isinstance(exc, HostError)
                     else {"kind": error_kind(exc), "host": host, "error": failure_reason(exc)})
        return cls(host, result.result, bool(result.changed), bool(result.failed),
                   result.diff or "", error, result.severity_level)

    def to_result(self, nornir_host: Any, task: str) -> Result:
        exception = None if self.error is None else host_error_from_json(self.error)
        return Result(host=nornir_host, result=self.result, changed=self.changed, failed=self.failed,
                      diff=self.diff, exception=exception, name=task, severity_level=self.severity)


@dataclass(frozen=True)
class ShardRun:
    """One shard's run of one task: its hosts' outcomes (in its order) and whether it was stopped."""

    task: str
    hosts: tuple[HostOutcome, ...]
    interrupted: bool
    elapsed: float
    warnings: tuple[tuple[str, str], ...] = ()  # (host or "", text) the transport gave meanwhile


@dataclass
class ShardProgress:
    """What a worker saw since it was last asked: its events, and its connections open now."""

    events: list[ProgressEvent] = field(default_factory=list)
    connected: int = 0


__all__ = ["HostOutcome", "ShardProgress", "ShardRun"]
