"""What a task's run comes to: per-host outcomes, a report with its exit code, and the exit codes.

The runner gives Nornir Results (an AggregatedResult of one MultiResult per host); a task's
`report` turns them into a Report: typed data a Python caller reads, a table `render()` prints, a
document `to_json()` hands to the JSON writer, and the `exit_code` the command line returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nornir.core.task import AggregatedResult, Result

from fleet.core.errors import error_kind, failure_reason
from fleet.core.output import host_recap, render_host_table

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class RunOutcome:
    """The results of one task on every selected host, and whether the run was interrupted."""

    results: AggregatedResult
    interrupted: bool
    elapsed: float


class Report(Protocol):
    """A task's outcome as people and programs read it.

    Two optional members (see `headline` and `highlights` below): `headline`, the one line that
    gives the verdict (`fleet run -q` prints only it); `highlights(text)`, where a text the report
    rendered shows a state, for a terminal to colour.
    """

    @property
    def exit_code(self) -> int: ...

    def render(self) -> str: ...

    def to_json(self) -> Any: ...  # a plain value, or an object with write_json(stream)


Highlight = tuple[int, int, str]  # start, end (offsets in a rendered text), state it shows
# The states of a verdict, which every report may show; a report names its own states besides
# (a feature's, such as the mesh's pair states), and a display styles those it knows.
VERDICT_STATES = ("good", "bad")


def headline(report: Report) -> str:
    """The report's verdict line: its `headline` when it has one, else the first line it renders."""
    line = getattr(report, "headline", None)
    if isinstance(line, str):
        return line
    return next((text for text in report.render().splitlines() if text.strip()), "")


def highlights(report: Report, text: str) -> list[Highlight]:
    """Where `text` (the report's render() or headline) shows a state; none for a report without
    `highlights`."""
    find = getattr(report, "highlights", None)
    return list(find(text)) if callable(find) else []


def host_error(result: Result) -> str:
    """The reason a failed Nornir Result failed, in one line."""
    exc = result.exception
    return failure_reason(exc) if exc is not None else str(result.result)


def host_error_kind(result: Result) -> str | None:
    """The kind of a failed Nornir Result's failure (fleet.core.errors), None when it did not fail."""
    if not result.failed:
        return None
    return error_kind(result.exception) or "error"


def failed_result(host: Any, name: str, exception: BaseException, result: object = None) -> Result:
    """A failed Nornir Result: with no result of its own it carries the failure's kind and
    reason, at ERROR level, as Nornir's own failed tasks do (so that nornir-utils' print_result
    shows why, not an empty block)."""
    if result is None:
        result = f"{error_kind(exception)}: {failure_reason(exception)}"
    return Result(host=host, result=result, failed=True, exception=exception, name=name,
                  severity_level=logging.ERROR)


@dataclass(frozen=True)
class HostOutcome:
    """One host's outcome of a task like setup or teardown."""

    name: str
    status: str                      # ok, changed or failed
    error: str | None
    error_kind: str | None
    result: dict[str, Any] | None    # the task's own data (None when it failed)
    detail: str                      # one line for the table: the summary, or the kind and why

    @property
    def changed(self) -> bool:
        return self.status == "changed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class HostsReport:
    """The default report: one line per host (ok / changed / failed and why) and a recap."""

    task: str
    hosts: tuple[HostOutcome, ...]
    elapsed: float
    interrupted: bool

    @property
    def counts(self) -> dict[str, int]:
        counts = {"ok": 0, "changed": 0, "failed": 0}
        for host in self.hosts:
            counts[host.status] += 1
        return counts

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.counts["failed"] else EXIT_OK

    def __getitem__(self, name: str) -> HostOutcome:
        return next(h for h in self.hosts if h.name == name)

    def render(self) -> str:
        return render_host_table(self.task, [(h.name, h.status, h.detail) for h in self.hosts],
                                 self.counts, self.elapsed, interrupted=self.interrupted)

    @property
    def headline(self) -> str:
        """The recap, the table's last line."""
        return host_recap(self.task, self.counts, self.elapsed, interrupted=self.interrupted)

    def highlights(self, text: str) -> list[Highlight]:
        """The recap's verdict: its `N failed` bad when N > 0, good otherwise."""
        recap = self.headline
        start = text.rfind(recap)
        if start < 0:
            return []
        word = f"{self.counts['failed']} failed"
        at = start + recap.find(f", {word}") + 2
        bad = self.counts["failed"] > 0 or self.interrupted
        return [(at, at + len(word), "bad" if bad else "good")]

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task,
                "hosts": [{"name": h.name, "status": h.status, "changed": h.changed,
                           "failed": h.failed, "error": h.error, "error_kind": h.error_kind,
                           "result": h.result} for h in self.hosts],
                "summary": {"hosts": len(self.hosts), **self.counts},
                "interrupted": self.interrupted}


def host_outcome(name: str, result: Result) -> HostOutcome:
    if result.failed:
        error, kind = host_error(result), host_error_kind(result)
        return HostOutcome(name, "failed", error, kind, None, f"{kind}: {error}")
    data = result.result if isinstance(result.result, dict) else None
    detail = data.get("summary", "") if data is not None else str(result.result or "")
    return HostOutcome(name, "changed" if result.changed else "ok", None, None, data, detail)


def hosts_report(task: str, host_names: Sequence[str], outcome: RunOutcome) -> HostsReport:
    """The default report of a task's run, hosts in inventory order."""
    return HostsReport(task, tuple(host_outcome(n, outcome.results[n][0]) for n in host_names),
                       outcome.elapsed, outcome.interrupted)


__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Highlight",
           "HostOutcome", "HostsReport", "Report", "RunOutcome", "VERDICT_STATES", "failed_result",
           "headline", "highlights", "host_error", "host_error_kind", "host_outcome", "hosts_report"]
