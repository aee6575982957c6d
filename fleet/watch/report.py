"""`fleet report --history DB`: what a watch's history says about a window of time: its rounds
and their verdicts, when each pair or host broke and recovered, which flap, and the timeline
(fleet.formats.timeline) to draw. Reads the history; writes nothing.

Exit code: 0 when the window's last round is ok, 1 when it is not or the window holds no round
(nothing verified is not green).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleet.core.results import EXIT_FAILED, EXIT_OK
from fleet.formats.timeline import MAX_ROWS, Timeline, TimelineRound, TimelineRow
from fleet.mesh.verdict import Status
from fleet.watch.history import History, RoundRow
from fleet.watch.incidents import DEFAULT_FLAPPING, Flapping, Incident, flapping, incidents


def _day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat().replace(
        "+00:00", "Z")


@dataclass(frozen=True)
class HistoryReport:
    path: str
    rounds: list[RoundRow]
    incidents: list[Incident]
    flapping: list[Flapping]
    threshold: int
    since: float | None = None
    until: float | None = None

    @property
    def last(self) -> RoundRow | None:
        return self.rounds[-1] if self.rounds else None

    @property
    def exit_code(self) -> int:
        last = self.last
        return EXIT_OK if last is not None and last.status == Status.OK.value else EXIT_FAILED

    def render(self) -> str:
        if not self.rounds and not self.incidents:
            return f"history {self.path}: no round in the window (nothing verified)"
        ongoing = sum(1 for i in self.incidents if i.ongoing)
        lines = self._rounds_lines()
        lines.append(f"incidents: {len(self.incidents)}" + (f" ({ongoing} ongoing)" if ongoing else ""))
        kept_from = self.rounds[0].started if self.rounds else None
        if any(i.broke_at is not None and (kept_from is None or i.broke_at < kept_from)
               for i in self.incidents):
            lines.append("  (the rounds of incidents before " + (
                _day(kept_from) if kept_from is not None else "the window's end")
                + " were deleted by fleet watch --keep; their changes are kept)")
        width = max((len(i.name) for i in self.incidents), default=0)
        for i in self.incidents:
            broke = ("broken before the window" if i.broke_at is None
                     else f"broke {_day(i.broke_at)} (round {i.broke_round})")
            back = ("ongoing" if i.recovered_at is None
                    else f"recovered {_day(i.recovered_at)} (round {i.recovered_round})")
            took = "" if i.seconds is None else f", {i.seconds:.0f} s"
            lines.append(f"  {i.name:<{width}}  {i.kind:<12}  {i.state:<12}  {broke}  {back}{took}")
        lines.append(f"flapping ({self.threshold} or more changes in the window): "
                     + ("none" if not self.flapping else str(len(self.flapping))))
        for f in self.flapping:
            lines.append(f"  {f.name}  {f.changes} changes, rounds {f.first_round}-{f.last_round}")
        return "\n".join(lines)

    def _rounds_lines(self) -> list[str]:
        if not self.rounds:
            return [f"history {self.path}: no round in the window (nothing verified)"]
        first, last = self.rounds[0], self.rounds[-1]
        statuses = Counter(r.status for r in self.rounds)
        return [f"history {self.path}: {len(self.rounds)} round(s), {_day(first.started)} to "
                f"{_day(last.ended)}",
                "rounds: " + ", ".join(f"{statuses[s.value]} {s.value}" for s in Status
                                       if statuses[s.value])
                + f"; last: round {last.id}: {last.verdict}"]

    def to_json(self) -> dict[str, Any]:
        statuses = Counter(r.status for r in self.rounds)
        last = self.last
        return {
            "history": self.path, "since": _iso(self.since), "until": _iso(self.until),
            "rounds": {"count": len(self.rounds), "first": None if not self.rounds else self.rounds[0].id,
                       "last": None if last is None else last.id,
                       "statuses": {s.value: statuses[s.value] for s in Status}},
            "last_round": None if last is None else {
                "id": last.id, "started": _iso(last.started), "ended": _iso(last.ended),
                "status": last.status, "verdict": last.verdict, "counts": last.counts,
                "hosts_down": last.hosts_down},
            "incidents": [{**i.as_dict(), "broke_at": _iso(i.broke_at),
                           "recovered_at": _iso(i.recovered_at)} for i in self.incidents],
            "flapping_threshold": self.threshold,
            "flapping": [f.as_dict() for f in self.flapping],
            "ok": self.exit_code == EXIT_OK,
        }


def history_report(history: History, *, since: float | None = None, until: float | None = None,
                   threshold: int = DEFAULT_FLAPPING) -> HistoryReport:
    changes = history.changes(since, until)
    return HistoryReport(str(history.path), history.rounds(since, until), incidents(changes),
                         flapping(changes, threshold), threshold, since, until)


def timeline(history: History, rounds: list[RoundRow], title: str) -> Timeline:
    """The rows of the timeline: every host and pair not ok in some round of `rounds`."""
    columns = tuple(TimelineRound(r.id, r.started, r.status) for r in rounds)
    if not rounds:
        return Timeline(title, columns, ())
    subjects = history.failing_subjects(rounds[0].id, rounds[-1].id)
    drawn, left_out = subjects[:MAX_ROWS], max(0, len(subjects) - MAX_ROWS)
    at = {r.id: i for i, r in enumerate(rounds)}
    states: dict[tuple[str, str | None], list[str | None]] = {s: [None] * len(rounds) for s in drawn}
    for round_id, src, dst, state in history.states([r.id for r in rounds], drawn):
        if round_id in at:
            states[(src, dst)][at[round_id]] = state
    rows = tuple(TimelineRow("host" if dst is None else "pair",
                             src if dst is None else f"{src} -> {dst}", tuple(states[(src, dst)]))
                 for src, dst in drawn)
    return Timeline(title, columns, rows, left_out)


__all__ = ["HistoryReport", "history_report", "timeline"]
