"""What a history says happened: when each pair or host broke and recovered, and which flap.
Pure: the changes read back (fleet.watch.history.ChangeRow) in, typed values out.

An incident is a subject (a pair, or a host) leaving ok and coming back: it opens at the change
away from ok (kind: that change's) and closes at the next change back to ok. One still open at
the end of the window is ongoing; one whose break is before the window (the window starts with
the subject broken) has no start. The underlay of a pair is followed apart from its tunnel: it
explains failures and fails nothing by itself, so its incidents are its own.

A flapping subject changed state at least `threshold` times in the window (default 4: broke
and recovered twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleet.watch.changes import OK
from fleet.watch.history import ChangeRow

DEFAULT_FLAPPING = 4


@dataclass(frozen=True)
class Incident:
    subject: str       # pair or host
    name: str          # "h1 -> h2", or the host
    kind: str          # the kind of the change that broke it
    state: str         # the state it broke into
    broke_round: int | None
    broke_at: float | None
    recovered_round: int | None = None
    recovered_at: float | None = None

    @property
    def ongoing(self) -> bool:
        return self.recovered_round is None

    @property
    def seconds(self) -> float | None:
        if self.broke_at is None or self.recovered_at is None:
            return None
        return self.recovered_at - self.broke_at

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "name": self.name, "kind": self.kind, "state": self.state,
                "broke_round": self.broke_round, "broke_at": self.broke_at,
                "recovered_round": self.recovered_round, "recovered_at": self.recovered_at,
                "ongoing": self.ongoing, "seconds": self.seconds}


@dataclass(frozen=True)
class Flapping:
    subject: str
    name: str
    changes: int
    first_round: int
    last_round: int

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "name": self.name, "changes": self.changes,
                "first_round": self.first_round, "last_round": self.last_round}


def incidents(changes: Sequence[ChangeRow]) -> list[Incident]:
    """The incidents of the changes (in the order they were written), in the order they broke."""
    found: list[Incident] = []
    open_: dict[tuple[str, str, bool], int] = {}  # subject, name, underlay -> index in found
    for row in changes:
        change = row.change
        key = (change.subject, change.name, change.kind == "underlay")
        if change.after != OK:
            if key not in open_:  # broke (a change between two failing states is the same one)
                open_[key] = len(found)
                found.append(Incident(change.subject, change.name, change.kind, change.after,
                                      row.round, row.at))
            continue
        at = open_.pop(key, None)
        if at is None:  # broken since before the window
            found.append(Incident(change.subject, change.name, change.kind, change.before or "?",
                                  None, None, row.round, row.at))
            continue
        was = found[at]
        found[at] = Incident(was.subject, was.name, was.kind, was.state, was.broke_round,
                             was.broke_at, row.round, row.at)
    return found


def flapping(changes: Sequence[ChangeRow], threshold: int = DEFAULT_FLAPPING) -> list[Flapping]:
    """Subjects with at least `threshold` changes, the most changes first."""
    counted: dict[tuple[str, str], list[int]] = {}
    for row in changes:
        counted.setdefault((row.change.subject, row.change.name), []).append(row.round)
    return sorted((Flapping(subject, name, len(rounds), rounds[0], rounds[-1])
                   for (subject, name), rounds in counted.items() if len(rounds) >= threshold),
                  key=lambda f: (-f.changes, f.name))


__all__ = ["DEFAULT_FLAPPING", "Flapping", "Incident", "flapping", "incidents"]
