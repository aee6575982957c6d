"""What the runner tells a progress display while a task runs: one small event per step.

Two things happen during a run that a person watching wants to see: an SSH connection was
established (`CONNECTED`), and a host finished the task (`HOST_DONE`). Each event carries the
whole picture at that moment (hosts done, connected, in all), so a display needs no state of its
own to be right, only to sum `count`.

`count` is a number a task may report for each host (`HostRun.tally(n, label)`), summed over the
hosts done so far by a display; the mesh reports the pairs a source got answers from. The engine
knows nothing of what is counted: the label names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

CONNECTED: Literal["connected"] = "connected"
HOST_DONE: Literal["host-done"] = "host-done"


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a task's run, as seen from the whole run."""

    task: str
    kind: Literal["connected", "host-done"]
    host: str              # the host it is about
    done: int              # hosts of this task finished so far
    total: int             # hosts this task runs on
    connected: int         # hosts with an open SSH connection now (the pool's count)
    failed: bool = False   # HOST_DONE: the host's result failed
    count: int | None = None   # HOST_DONE: the task's own count for this host, if it reports one
    count_label: str = ""      # what `count` counts ("pairs answered")


ProgressListener = Callable[[ProgressEvent], None]

__all__ = ["CONNECTED", "HOST_DONE", "ProgressEvent", "ProgressListener"]
