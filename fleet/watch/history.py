"""The watch's history: an SQLite file (stdlib sqlite3) of rounds, their per-pair and per-host
states, and the changes between rounds.

    rounds        id, started, ended (Unix time), status (the verdict: ok, not-ok,
                  could-not-tell), verdict (its line), hosts, pairs, one count per pair state,
                  hosts_down, changes, options (the mesh's parameters and --every, as JSON)
    hosts         id, name: every host ever seen, so the rows below hold small integers
    host_results  round, host, state (ok, unconfigured, down, error), error_kind, error
    pair_results  round, src, dst, state, loss_pct, rtt_p50_ms, rtt_avg_ms, underlay, mtu
    changes       id, round, at, subject (pair, host), src, dst, kind, before, after

(fleet.watch.changes defines the states and the kinds.) The file is marked as fleet's with
SQLite's `application_id` and its schema's version with `user_version`: a file that is not
SQLite, or is another program's, or is missing when it is to be read, is a UsageError naming it.

Retention (fleet.watch.retention): the transaction that writes a round also deletes what the
history no longer keeps, the oldest rounds with their results and the incidents long over; the
changes outlive their rounds (`changes.round` is the number of a round that may be gone), so
the incidents are told after the per-round rows are deleted. Schema version 2 is version 1 with
that reference dropped and the file in `auto_vacuum = INCREMENTAL` mode; a version 1 history is
read as it is, and upgraded (its changes table rebuilt, the file vacuumed once) when a watch
continues it.

Each round is written in one transaction: a stop (SIGTERM, Ctrl-C) between or during rounds
leaves every round written before it and no part of another. The watcher only writes rounds
that finished; a round interrupted by the stop is not written at all. The file is in WAL mode,
so `fleet report --history` can read it while a watcher writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.core.errors import UsageError
from fleet.watch.changes import PAIR_STATES, Change, HostSample, PairSample, RoundSnapshot
from fleet.watch.retention import KEEP_ALL, Pruned, Retention, give_back_free_pages, prune

APPLICATION_ID = 0x464C5457  # "FLTW"
SCHEMA_VERSION = 2
UPGRADED = (1,)  # versions read as they are, and upgraded when written to
_COUNTS = tuple(state.replace("-", "_") for state in PAIR_STATES)

# The changes table, as {table}: created with the others, and rebuilt by the upgrade from version 1
# (whose `round` referenced the rounds, which retention deletes while their changes stay).
CHANGES = """
CREATE TABLE {table} (
    id INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    at REAL NOT NULL,
    subject TEXT NOT NULL,
    src TEXT NOT NULL,
    dst TEXT,
    kind TEXT NOT NULL,
    before TEXT,
    after TEXT NOT NULL
);
"""
SCHEMA = f"""
CREATE TABLE rounds (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT NOT NULL,
    hosts INTEGER NOT NULL,
    pairs INTEGER NOT NULL,
    {", ".join(f"{name} INTEGER NOT NULL" for name in _COUNTS)},
    hosts_down INTEGER NOT NULL,
    changes INTEGER NOT NULL,
    options TEXT NOT NULL
);
CREATE INDEX rounds_started ON rounds (started);
CREATE TABLE hosts (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE host_results (
    round INTEGER NOT NULL REFERENCES rounds (id),
    host INTEGER NOT NULL REFERENCES hosts (id),
    state TEXT NOT NULL,
    error_kind TEXT,
    error TEXT,
    PRIMARY KEY (round, host)
) WITHOUT ROWID;
CREATE TABLE pair_results (
    round INTEGER NOT NULL REFERENCES rounds (id),
    src INTEGER NOT NULL REFERENCES hosts (id),
    dst INTEGER NOT NULL REFERENCES hosts (id),
    state TEXT NOT NULL,
    loss_pct REAL,
    rtt_p50_ms REAL,
    rtt_avg_ms REAL,
    underlay TEXT,
    mtu TEXT,
    PRIMARY KEY (round, src, dst)
) WITHOUT ROWID;
{CHANGES.format(table="changes")}CREATE INDEX changes_at ON changes (at);
"""
TABLES = ("rounds", "hosts", "host_results", "pair_results", "changes")


@dataclass(frozen=True)
class RoundRecord:
    """One round as the rounds table holds it (`id` 0: not written yet)."""

    started: float
    ended: float
    status: str
    verdict: str
    snapshot: RoundSnapshot
    changes: tuple[Change, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True)
class RoundRow:
    """A round read back: its figures, without its pairs."""

    id: int
    started: float
    ended: float
    status: str
    verdict: str
    hosts: int
    pairs: int
    counts: dict[str, int]
    hosts_down: int
    changes: int
    options: dict[str, Any]


@dataclass(frozen=True)
class ChangeRow:
    round: int
    at: float
    change: Change


class History:
    """An open history file. `open_history` makes one. `retention`: what writing a round
    deletes (nothing by default); `pruned`: what the last round written deleted."""

    def __init__(self, connection: sqlite3.Connection, path: Path,
                 retention: Retention = KEEP_ALL) -> None:
        self.connection = connection
        self.path = path
        self.retention = retention
        self.pruned = Pruned()
        self._host_ids: dict[str, int] = dict(
            (name, id_) for id_, name in connection.execute("SELECT id, name FROM hosts"))

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- writing

    def record(self, record: RoundRecord) -> int:
        """Write a round, its results and its changes in one transaction, which also deletes
        what the retention no longer keeps at the round's end (the next round reuses the pages
        freed); its id. Afterwards, free pages beyond a quarter of the file go back to the file
        system."""
        snap = record.snapshot
        counts = snap.counts()
        db = self.connection
        with db:  # one transaction: committed whole, or rolled back
            names = [h.name for h in snap.hosts]
            ids = self._ids(db, names)
            cursor = db.execute(
                f"INSERT INTO rounds (started, ended, status, verdict, hosts, pairs, "
                f"{', '.join(_COUNTS)}, hosts_down, changes, options) "
                f"VALUES ({', '.join('?' * (6 + len(_COUNTS) + 3))})",
                (record.started, record.ended, record.status, record.verdict, len(snap.hosts),
                 len(snap.pairs), *(counts[s] for s in PAIR_STATES), snap.hosts_down(),
                 len(record.changes), json.dumps(dict(record.options), sort_keys=True)))
            round_id = int(cursor.lastrowid or 0)
            db.executemany("INSERT INTO host_results VALUES (?, ?, ?, ?, ?)",
                           ((round_id, ids[h.name], h.state, h.error_kind, h.error) for h in snap.hosts))
            db.executemany("INSERT INTO pair_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           ((round_id, ids[p.src], ids[p.dst], p.state, p.loss_pct, p.rtt_p50_ms,
                             p.rtt_avg_ms, p.underlay, p.mtu) for p in snap.pairs))
            db.executemany("INSERT INTO changes (round, at, subject, src, dst, kind, before, after) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           ((round_id, record.ended, c.subject, c.src, c.dst, c.kind, c.before,
                             c.after) for c in record.changes))
            pruned = prune(db, self.retention, record.ended)  # never this round: the last one
        self.pruned = pruned
        give_back_free_pages(db)
        return round_id

    def prune(self, now: float) -> Pruned:
        """Delete, in a transaction of its own, what the retention no longer keeps at `now`
        (Unix time; at most fleet.watch.retention.ROUNDS_AT_ONCE rounds), as writing a round
        does, and give free pages back."""
        with self.connection:
            pruned = prune(self.connection, self.retention, now)
        give_back_free_pages(self.connection)
        return pruned

    def _ids(self, db: sqlite3.Connection, names: Sequence[str]) -> dict[str, int]:
        for name in names:
            if name not in self._host_ids:
                cursor = db.execute("INSERT INTO hosts (name) VALUES (?)", (name,))
                self._host_ids[name] = int(cursor.lastrowid or 0)
        return self._host_ids

    # --- reading

    def last_round(self) -> RoundRow | None:
        rows = self.rounds(last=1)
        return rows[-1] if rows else None

    def snapshot(self, round_id: int) -> RoundSnapshot:
        """A round's states, as the watcher keeps the round before."""
        db = self.connection
        hosts = tuple(HostSample(*row) for row in db.execute(
            "SELECT h.name, r.state, r.error_kind, r.error FROM host_results r "
            "JOIN hosts h ON h.id = r.host WHERE r.round = ? ORDER BY h.id", (round_id,)))
        pairs = tuple(PairSample(*row) for row in db.execute(
            "SELECT s.name, d.name, p.state, p.loss_pct, p.rtt_p50_ms, p.rtt_avg_ms, p.underlay, "
            "p.mtu FROM pair_results p JOIN hosts s ON s.id = p.src JOIN hosts d ON d.id = p.dst "
            "WHERE p.round = ? ORDER BY p.src, p.dst", (round_id,)))
        return RoundSnapshot(hosts, pairs)

    def rounds(self, since: float | None = None, until: float | None = None,
               last: int | None = None) -> list[RoundRow]:
        """The rounds that started within [since, until], in order; `last`: only the last ones."""
        where, values = _window("started", since, until)
        query = (f"SELECT id, started, ended, status, verdict, hosts, pairs, {', '.join(_COUNTS)}, "
                 f"hosts_down, changes, options FROM rounds{where} ORDER BY id")
        if last is not None:
            query = f"SELECT * FROM ({query} DESC LIMIT {int(last)}) ORDER BY id"
        found = []
        for row in self.connection.execute(query, values):
            counts = dict(zip(PAIR_STATES, row[7:7 + len(_COUNTS)]))
            rest = row[7 + len(_COUNTS):]
            found.append(RoundRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], counts,
                                  rest[0], rest[1], json.loads(rest[2])))
        return found

    def changes(self, since: float | None = None, until: float | None = None) -> list[ChangeRow]:
        where, values = _window("at", since, until)
        return [ChangeRow(row[0], row[1], Change(*row[2:])) for row in self.connection.execute(
            f"SELECT round, at, subject, src, dst, kind, before, after FROM changes{where} "
            "ORDER BY id", values)]

    def failing_subjects(self, low: int, high: int) -> list[tuple[str, str | None]]:
        """The hosts (dst None) and pairs not ok in some round from `low` to `high`, hosts first,
        each in the order the history first saw it."""
        db = self.connection
        hosts: list[tuple[str, str | None]] = [(row[0], None) for row in db.execute(
            "SELECT DISTINCT h.name, h.id FROM host_results r JOIN hosts h ON h.id = r.host "
            "WHERE r.round BETWEEN ? AND ? AND r.state != 'ok' ORDER BY h.id", (low, high))]
        pairs: list[tuple[str, str | None]] = [(row[0], row[1]) for row in db.execute(
            "SELECT DISTINCT s.name, d.name, p.src, p.dst FROM pair_results p "
            "JOIN hosts s ON s.id = p.src JOIN hosts d ON d.id = p.dst "
            "WHERE p.round BETWEEN ? AND ? AND p.state != 'ok' ORDER BY p.src, p.dst", (low, high))]
        return [*hosts, *pairs]

    def states(self, round_ids: Sequence[int], subjects: Sequence[tuple[str, str | None]],
               ) -> Iterator[tuple[int, str, str | None, str]]:
        """(round, src, dst, state) of the hosts (dst None) and pairs named, in those rounds."""
        if not round_ids or not subjects:
            return
        low, high = min(round_ids), max(round_ids)
        wanted_hosts = {s for s, d in subjects if d is None}
        wanted_pairs = {(s, d) for s, d in subjects if d is not None}
        db = self.connection
        if wanted_hosts:
            for round_id, name, state in db.execute(
                    "SELECT r.round, h.name, r.state FROM host_results r JOIN hosts h ON h.id = r.host "
                    "WHERE r.round BETWEEN ? AND ?", (low, high)):
                if name in wanted_hosts:
                    yield round_id, name, None, state
        if wanted_pairs:
            for round_id, src, dst, state in db.execute(
                    "SELECT p.round, s.name, d.name, p.state FROM pair_results p "
                    "JOIN hosts s ON s.id = p.src JOIN hosts d ON d.id = p.dst "
                    "WHERE p.round BETWEEN ? AND ?", (low, high)):
                if (src, dst) in wanted_pairs:
                    yield round_id, src, dst, state


def _window(column: str, since: float | None, until: float | None) -> tuple[str, list[float]]:
    parts, values = [], []
    if since is not None:
        parts.append(f"{column} >= ?")
        values.append(since)
    if until is not None:
        parts.append(f"{column} <= ?")
        values.append(until)
    return (" WHERE " + " AND ".join(parts) if parts else ""), values


def open_history(path: Path | str, *, create: bool, retention: Retention = KEEP_ALL) -> History:
    """The history at `path`; with `create`, a new one where there is no file (or an empty one),
    and an older schema upgraded; `retention`: what writing a round deletes. Not SQLite, another
    program's file, a newer schema or (without `create`) no file: a UsageError naming the file."""
    path = Path(path)
    if str(path) != ":memory:" and not create and not path.is_file():
        raise UsageError(f"--history {path}: no such file")
    if str(path) != ":memory:" and path.is_dir():
        raise UsageError(f"--history {path}: is a directory")
    try:
        connection = sqlite3.connect(str(path) if create or str(path) == ":memory:"
                                     else f"{path.resolve().as_uri()}?mode=ro", uri=not create)
    except sqlite3.Error as exc:
        raise UsageError(f"--history {path}: cannot open it: {exc}") from None
    try:
        _check_or_create(connection, path, create)
    except BaseException:
        connection.close()
        raise
    return History(connection, path, retention)


def _check_or_create(db: sqlite3.Connection, path: Path, create: bool) -> None:
    try:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"--history {path}: not an SQLite file of fleet watch ({exc})") from None
    if application_id == 0 and not tables:
        if not create:
            raise UsageError(f"--history {path}: an empty file, not a history of fleet watch")
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table, or not at all
        with db:
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if str(path) != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        return
    if application_id != APPLICATION_ID:
        raise UsageError(f"--history {path}: an SQLite file of another program (tables: "
                         f"{', '.join(sorted(tables)) or 'none'}), not a history of fleet watch")
    if version != SCHEMA_VERSION and version not in UPGRADED:
        raise UsageError(f"--history {path}: schema version {version}; this fleet reads "
                         f"version {SCHEMA_VERSION} (and {', '.join(map(str, UPGRADED))})")
    missing = [t for t in TABLES if t not in tables]
    if missing:
        raise UsageError(f"--history {path}: a damaged history (no table {', '.join(missing)})")
    if version != SCHEMA_VERSION and create:
        try:
            _upgrade(db)
        except sqlite3.Error as exc:
            raise UsageError(f"--history {path}: cannot upgrade it from schema version {version} "
                             f"to {SCHEMA_VERSION}: {exc}") from None


def _upgrade(db: sqlite3.Connection) -> None:
    """Version 1 to 2: the changes table without its reference to the rounds (in one
    transaction), then the file rewritten once (VACUUM) in auto_vacuum INCREMENTAL mode."""
    with db:
        db.execute("BEGIN")
        db.execute(CHANGES.format(table="changes_v2"))
        db.execute("INSERT INTO changes_v2 SELECT id, round, at, subject, src, dst, kind, before, "
                   "after FROM changes")
        db.execute("DROP TABLE changes")
        db.execute("ALTER TABLE changes_v2 RENAME TO changes")
        db.execute("CREATE INDEX changes_at ON changes (at)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    db.execute("VACUUM")


__all__ = ["APPLICATION_ID", "ChangeRow", "History", "RoundRecord", "RoundRow", "SCHEMA_VERSION",
           "open_history"]
