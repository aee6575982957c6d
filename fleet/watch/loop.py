"""The rounds: the prepared mesh run again and again over kept connections, each round judged
and written to the history before the next begins.

A round is what `fleet run mesh` does once (fleet.api.execute: the same task, the same report,
the same verdict, fleet.mesh.verdict.judge), over a KeptTransport instead of fresh connections.
Rounds start every `every` seconds (a round longer than that is followed at once by the next);
`rounds` stops after that many, `stop` (set by SIGTERM or Ctrl-C) at once: a round it
interrupts (some host had not finished) is not written at all, a round that had finished is.
What is kept in memory is the round before (its states, to find the changes) and the current
round, never the history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fleet import api
from fleet.core.results import EXIT_FAILED, EXIT_INTERRUPTED
from fleet.core.runner import RunLimits
from fleet.mesh.report import MeshReport
from fleet.watch.changes import RoundSnapshot, changes, snapshot
from fleet.watch.history import History, RoundRecord
from fleet.watch.keep import KeptTransport


@dataclass(frozen=True)
class Round:
    """A round done and written: its record (with its id in the history), the task's outcome
    (the report the formats render) and its number in this watch (from 1)."""

    number: int
    record: RoundRecord
    outcome: api.TaskOutcome
    logins: int  # connections opened in this round (0: every session was kept)


@dataclass(frozen=True)
class WatchEnd:
    rounds: int
    interrupted: bool
    last_exit_code: int | None  # the last round's verdict's; None: no round finished

    @property
    def exit_code(self) -> int:
        """130 when stopped (the command line's interrupted: Ctrl-C; stopped by SIGTERM the
        command line ends by that signal instead), else the last round's verdict: 0 ok, 1 not
        ok or could not tell (1 too when no round finished)."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.last_exit_code is None else self.last_exit_code


async def watch(prepared: api.PreparedRun, transport: KeptTransport, history: History, *,
                every: float, rounds: int | None = None, limits: RunLimits | None = None,
                stop: asyncio.Event | None = None, options: Mapping[str, Any] | None = None,
                on_round: Callable[[Round], None] | None = None,
                clock: Callable[[], float] = time.time) -> WatchEnd:
    """Run rounds until `rounds` are done or `stop` is set; each round is written to `history`
    (one transaction) and then given to `on_round`."""
    stop = stop or asyncio.Event()
    previous = _last_snapshot(history)
    done, last_code = 0, None
    while rounds is None or done < rounds:
        began, started = time.monotonic(), clock()
        transport.start_round()
        logins_before = transport.logins
        outcome = await api.execute(prepared, transport, limits=limits, stop=stop)
        if outcome.interrupted or not outcome.tasks:  # a partial round: not written
            return WatchEnd(done, True, last_code)
        task = outcome.tasks[0]
        report: MeshReport = task.report  # type: ignore[assignment]  # the mesh task's report
        current = snapshot(report.mesh)
        verdict = report.verdict
        record = RoundRecord(started, clock(), verdict.status.value, verdict.text, current,
                             tuple(changes(previous, current)), dict(options or {}))
        record = replace(record, id=history.record(record))
        done, last_code, previous = done + 1, verdict.exit_code, current
        await transport.drop([name for name, multi in task.results.items() if multi.failed])
        if on_round is not None:
            on_round(Round(done, record, task, transport.logins - logins_before))
        del outcome, task, report, record, current
        if stop.is_set():  # after the round ended whole, which is written
            return WatchEnd(done, True, last_code)
        if rounds is not None and done >= rounds:
            break
        if await _stopped_within(stop, every - (time.monotonic() - began)):
            return WatchEnd(done, True, last_code)
    return WatchEnd(done, False, last_code)


def _last_snapshot(history: History) -> RoundSnapshot | None:
    """The last round of the history (of an earlier watch too): the changes go on from it."""
    last = history.last_round()
    return None if last is None else history.snapshot(last.id)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    if seconds <= 0:
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


__all__ = ["Round", "WatchEnd", "watch"]
