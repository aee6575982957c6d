"""How long a watch's history keeps what (`fleet watch --keep`, `--keep-changes`), and the
deletions that keep it so, run inside the transaction that writes each round.

    rounds   a round, its per-host and per-pair results: ~40 bytes per pair per round, so
             about 1.1 GB a day at 100 hosts (9,900 pairs) every 30 s. Kept --keep (default 7
             days: a weekend's failures are still there on Monday and a week of rounds can be
             compared day by day; 100 hosts every 30 s then need ~8 GB, 20 hosts ~0.3 GB).
    changes  the state changes, which are the incidents (when a pair or host broke and when it
             recovered): one row per change, nothing while the mesh is steady. Kept
             --keep-changes (default 30 days, and never less than the rounds): `fleet report
             --history` tells when a pair broke long after that round's rows are gone. An
             incident is deleted whole, once it recovered before the cutoff: one still open at
             the cutoff keeps every change since it broke, however old, so the report never
             loses when an ongoing failure began.

Rounds older than the cutoff are deleted oldest first, at most ROUNDS_AT_ONCE per round written
(bounded work: a --keep shortened on a large history drains over the next rounds, not in one
long transaction), and never the last one written (round numbers are never given twice, and a
watch restarted after a pause longer than --keep still finds the round the changes go on from).

The file stops growing: SQLite reuses the pages a round's deletions free for the next round's
rows. A history created by this fleet is in `auto_vacuum = INCREMENTAL` mode, so when more than
a quarter of the file is free (the history got smaller: a shorter --keep, fewer hosts), up to
VACUUM_PAGES_AT_ONCE pages are given back to the file system after each round.

Pure but for the functions that take the sqlite3 connection; "now" is always given (the round's
own time), never read from a clock here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

DAY = 86400.0
DEFAULT_KEEP_ROUNDS = 7 * DAY
DEFAULT_KEEP_CHANGES = 30 * DAY
ROUNDS_AT_ONCE = 20
VACUUM_PAGES_AT_ONCE = 2048  # 8 MB of 4 KiB pages
FOREVER_WORDS = ("0", "forever")
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_keep(text: str) -> float | None:
    """--keep's value: 7d, 24h, 90m, 2w, 3600s (a number needs its unit: a bare 7 is not taken
    for seconds, or days); 0 or forever: None, keep everything. ValueError says what to give."""
    word = text.strip().lower()
    if word in FOREVER_WORDS:
        return None
    found = _DURATION.fullmatch(word)
    if found is None:
        raise ValueError(f"{text!r}: give a duration with its unit (7d, 24h, 90m, 2w), or "
                         "0/forever to keep everything")
    seconds = float(found.group(1)) * UNITS[found.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r}: more than 0 (0 or forever keeps everything)")
    return seconds


def describe(seconds: float | None) -> str:
    """A kept duration as --keep takes it: 7d, 36h, 90m; forever."""
    if seconds is None:
        return "forever"
    for unit in ("d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds / UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Retention:
    """How long the rounds and the changes are kept, in seconds (None: forever). The changes
    are kept at least as long as the rounds."""

    rounds_s: float | None = DEFAULT_KEEP_ROUNDS
    changes_s: float | None = DEFAULT_KEEP_CHANGES

    def __post_init__(self) -> None:
        if self.changes_s is not None and (self.rounds_s is None or self.changes_s < self.rounds_s):
            raise ValueError(f"the changes (kept {describe(self.changes_s)}) are kept at least as "
                             f"long as the rounds (kept {describe(self.rounds_s)})")

    @classmethod
    def of(cls, rounds_s: float | None, changes_s: float | None = None) -> Retention:
        """Rounds kept `rounds_s`; changes `changes_s`, or by default 30 days or as long as the
        rounds, whichever is longer."""
        if changes_s is None:
            changes_s = None if rounds_s is None else max(DEFAULT_KEEP_CHANGES, rounds_s)
        return cls(rounds_s, changes_s)

    @property
    def forever(self) -> bool:
        return self.rounds_s is None and self.changes_s is None

    def text(self) -> str:
        return f"rounds {describe(self.rounds_s)}, changes {describe(self.changes_s)}"


KEEP_ALL = Retention(None, None)


@dataclass(frozen=True)
class Pruned:
    rounds: int = 0
    changes: int = 0


def prune(db: sqlite3.Connection, retention: Retention, now: float) -> Pruned:
    """Delete what `retention` no longer keeps at `now` (Unix time): the oldest rounds that
    started before its cutoff (ROUNDS_AT_ONCE at most) with their results, and the incidents
    that recovered before the changes' cutoff. Inside the caller's transaction."""
    rounds = changes = 0
    if retention.rounds_s is not None:
        # never the last round: the next round's number follows it, so no number is given twice
        # (an emptied table would start again at 1, and the changes name rounds by number)
        old = ("SELECT id FROM rounds WHERE started < ? AND id < (SELECT max(id) FROM rounds) "
               "ORDER BY id LIMIT ?", (now - retention.rounds_s, ROUNDS_AT_ONCE))
        db.execute(f"DELETE FROM pair_results WHERE round IN ({old[0]})", old[1])
        db.execute(f"DELETE FROM host_results WHERE round IN ({old[0]})", old[1])
        rounds = db.execute(f"DELETE FROM rounds WHERE id IN ({old[0]})", old[1]).rowcount
    if retention.changes_s is not None:
        cutoff = now - retention.changes_s
        # per subject (a pair's underlay apart from its tunnel, as fleet.watch.incidents reads
        # them), its last recovery before the cutoff; every change of it up to that one goes
        changes = db.execute(
            "DELETE FROM changes WHERE id IN (SELECT c.id FROM changes c JOIN ("
            "  SELECT subject, src, ifnull(dst, '') AS dst, kind = 'underlay' AS underlay, "
            "         max(id) AS closed FROM changes WHERE at < ? AND after = 'ok' "
            "  GROUP BY 1, 2, 3, 4) k "
            "ON c.subject = k.subject AND c.src = k.src AND ifnull(c.dst, '') = k.dst "
            "AND (c.kind = 'underlay') = k.underlay AND c.id <= k.closed WHERE c.at < ?)",
            (cutoff, cutoff)).rowcount
    return Pruned(rounds, changes)


def give_back_free_pages(db: sqlite3.Connection) -> int:
    """When more than a quarter of the file is free pages, give up to VACUUM_PAGES_AT_ONCE of
    them back to the file system (auto_vacuum INCREMENTAL only; otherwise SQLite reuses them
    and nothing is done). Outside a transaction; the number of pages given back."""
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # 2: incremental
        return 0
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    if free * 4 <= pages:
        return 0
    wanted = min(free, VACUUM_PAGES_AT_ONCE)
    # executescript: sqlite3's execute() steps this pragma once, which frees a single page
    db.executescript(f"PRAGMA incremental_vacuum({wanted});")
    return wanted


__all__ = ["DEFAULT_KEEP_CHANGES", "DEFAULT_KEEP_ROUNDS", "KEEP_ALL", "Pruned", "Retention",
           "describe", "give_back_free_pages", "parse_keep", "prune"]
