"""fleet.watch.history: the schema written and read back (an in-memory database and a file), one
transaction per round, and files that are not a history refused with their name."""

import sqlite3

import pytest

from fleet.core.errors import UsageError
from fleet.watch.changes import Change, HostSample, PairSample, RoundSnapshot, changes
from fleet.watch.history import APPLICATION_ID, RoundRecord, open_history

HOSTS = (HostSample("h1", "ok"), HostSample("h2", "down", "unreachable", "cannot connect"))
PAIRS = (PairSample("h1", "h2", "unreachable", 100.0, None, None, "ok", "unknown"),
         PairSample("h2", "h1", "not-measured"))


def record(started, snap, before=None, status="not-ok"):
    return RoundRecord(started, started + 1.5, status, "NOT OK: ...", snap,
                       tuple(changes(before, snap)), {"count": 3, "every_s": 30.0})


def test_a_round_written_is_read_back_whole():
    with open_history(":memory:", create=True) as history:
        snap = RoundSnapshot(HOSTS, PAIRS)
        first = history.record(record(1000.0, snap))
        assert first == 1
        assert history.snapshot(first) == snap
        [row] = history.rounds()
        assert (row.id, row.started, row.ended, row.status, row.hosts, row.pairs, row.hosts_down) == (
            1, 1000.0, 1001.5, "not-ok", 2, 2, 1)
        assert row.counts["unreachable"] == 1 and row.counts["not-measured"] == 1
        assert row.options == {"count": 3, "every_s": 30.0}
        assert [c.change for c in history.changes()] == [
            Change("host", "h2", None, "host-down", None, "down"),
            Change("pair", "h1", "h2", "host-down", None, "unreachable"),  # h2 is down
            Change("pair", "h2", "h1", "not-measured", None, "not-measured")]
        fine = RoundSnapshot((HostSample("h1", "ok"), HostSample("h2", "ok")),
                             (PairSample("h1", "h2", "ok", 0.0, 0.4, 0.5), PairSample("h2", "h1", "ok")))
        history.record(record(1030.0, fine, snap, status="ok"))
        assert history.last_round().id == 2
        assert [r.id for r in history.rounds(since=1010.0)] == [2]
        assert [c.round for c in history.changes(until=1010.0)] == [1, 1, 1]
        assert history.failing_subjects(1, 2) == [("h2", None), ("h1", "h2"), ("h2", "h1")]
        assert sorted(history.states([1, 2], [("h2", None), ("h1", "h2")])) == [
            (1, "h1", "h2", "unreachable"), (1, "h2", None, "down"),
            (2, "h1", "h2", "ok"), (2, "h2", None, "ok")]


def test_a_round_that_fails_to_be_written_leaves_nothing_of_itself(tmp_path):
    path = tmp_path / "h.sqlite"
    with open_history(path, create=True) as history:
        history.record(record(1000.0, RoundSnapshot(HOSTS, PAIRS)))
        twice = RoundSnapshot(HOSTS, PAIRS + PAIRS[:1])  # a pair twice breaks its primary key
        with pytest.raises(sqlite3.IntegrityError):
            history.record(record(1030.0, twice))
    with open_history(path, create=False) as again:
        assert [r.id for r in again.rounds()] == [1]
        count = again.connection.execute("SELECT count(*) FROM pair_results").fetchone()[0]
        assert count == 2 and len(again.changes()) == 3


def test_a_history_file_is_marked_as_fleets(tmp_path):
    path = tmp_path / "h.sqlite"
    open_history(path, create=True).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_files_that_are_not_a_history_are_refused_naming_them(tmp_path):
    missing = tmp_path / "none.sqlite"
    with pytest.raises(UsageError, match=f"--history {missing}: no such file"):
        open_history(missing, create=False)
    assert not missing.exists()
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 40)
    with pytest.raises(UsageError, match="not an SQLite file of fleet watch"):
        open_history(text, create=True)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE rounds (x)")
    with pytest.raises(UsageError, match="an SQLite file of another program \\(tables: rounds\\)"):
        open_history(other, create=False)
    newer = tmp_path / "newer.sqlite"
    open_history(newer, create=True).close()
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(UsageError, match="schema version 99"):
        open_history(newer, create=False)
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(UsageError, match="an empty file"):
        open_history(empty, create=False)
