"""fleet.watch.retention through fleet.watch.history: rounds at synthetic times (no clock, no
sleeping), the old rounds deleted with their rows, the incidents still told after them, the
file's size bounded over many rounds and given back when the history shrinks, and a version 1
history upgraded."""

import sqlite3

import pytest

from fleet.watch.changes import HostSample, PairSample, RoundSnapshot, changes
from fleet.watch.history import SCHEMA_VERSION, RoundRecord, open_history
from fleet.watch.report import history_report
from fleet.watch.retention import (
    DAY,
    DEFAULT_KEEP_CHANGES,
    KEEP_ALL,
    ROUNDS_AT_ONCE,
    Retention,
    describe,
    parse_keep,
)

T0 = 1_800_000_000.0
HOUR = 3600.0


def mesh(hosts=2, broken=(), seed=0):
    """A full mesh of `hosts` hosts; the pairs in `broken` unreachable."""
    names = [f"h{i}" for i in range(1, hosts + 1)]
    return RoundSnapshot(tuple(HostSample(n, "ok") for n in names),
                         tuple(PairSample(a, b, "unreachable" if (a, b) in broken else "ok",
                                          0.0, 0.4 + seed % 7 / 100, 0.5)
                               for a in names for b in names if a != b))


class Writer:
    """Rounds written one after another at synthetic times, each with its changes."""

    def __init__(self, history, every):
        self.history, self.every, self.previous, self.n = history, every, None, 0

    def round(self, snap):
        started = T0 + self.every * self.n
        self.n += 1
        record = RoundRecord(started, started + 1.0, "ok", "ALL OK", snap,
                             tuple(changes(self.previous, snap)))
        self.previous = snap
        return self.history.record(record)

    def count(self, table):
        return self.history.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def file_bytes(history):
    history.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return history.path.stat().st_size


@pytest.mark.parametrize(("text", "seconds"), [
    ("7d", 7 * DAY), ("24h", DAY), ("90m", 5400.0), ("2w", 14 * DAY), ("3600s", HOUR),
    ("1.5h", 5400.0), (" 7D ", 7 * DAY), ("0", None), ("forever", None)])
def test_keep_durations(text, seconds):
    assert parse_keep(text) == seconds


@pytest.mark.parametrize("text", ["7", "30", "-1d", "0d", "7 days", "d", ""])
def test_keep_durations_refused(text):
    with pytest.raises(ValueError, match="give a duration with its unit|more than 0"):
        parse_keep(text)


def test_the_changes_are_kept_at_least_as_long_as_the_rounds():
    assert Retention.of(7 * DAY) == Retention(7 * DAY, DEFAULT_KEEP_CHANGES)
    assert Retention.of(60 * DAY) == Retention(60 * DAY, 60 * DAY)
    assert Retention.of(None) == KEEP_ALL and KEEP_ALL.forever
    assert Retention(7 * DAY, None).text() == "rounds 7d, changes forever"
    with pytest.raises(ValueError, match=r"changes \(kept 1d\) are kept at least as long"):
        Retention(7 * DAY, DAY)
    with pytest.raises(ValueError, match="kept forever"):
        Retention(None, 30 * DAY)
    assert [describe(s) for s in (90.0, 5400.0, 36 * HOUR, 45.5)] == ["90s", "90m", "36h", "45.5s"]


def test_old_rounds_go_with_their_rows_and_the_incidents_are_still_told(tmp_path):
    """Rounds every 10 min, kept 1 h; changes kept 1 day. h1 -> h2 breaks at round 10 and
    recovers at round 20; h2 -> h1 breaks at round 30 for good."""
    keep = Retention(HOUR, DAY)
    with open_history(tmp_path / "h.sqlite", create=True, retention=keep) as history:
        w = Writer(history, every=600.0)
        for n in range(1, 301):  # two days and more
            broken = {("h1", "h2")} if 10 <= n < 20 else set()
            broken |= {("h2", "h1")} if n >= 30 else set()
            w.round(mesh(broken=broken))
            if n == 40:  # 6 h 40 min in: rounds of the last hour only, every change
                held = [r.id for r in history.rounds()]
                assert held == list(range(35, 41))  # started within the hour before round 40 ended
                assert w.count("pair_results") == 2 * len(held) and w.count("host_results") == 2 * len(held)
                report = history_report(history)
                assert [(i.name, i.broke_round, i.recovered_round) for i in report.incidents] == [
                    ("h1 -> h2", 10, 20), ("h2 -> h1", 30, None)]
                assert report.incidents[0].broke_at == T0 + 9 * 600 + 1.0  # its round's end
                text = report.render()
                assert "the rounds of incidents before" in text and "deleted by fleet watch --keep" in text
        # after two days, the incident over a day ago is gone whole; the one still open at the
        # cutoff is kept whole (when it broke is still told)
        assert len(history.rounds()) == 6
        assert [(c.round, c.change.src, c.change.after) for c in history.changes()] == [
            (30, "h2", "unreachable")]
        [ongoing] = history_report(history).incidents
        assert (ongoing.name, ongoing.broke_round, ongoing.ongoing) == ("h2 -> h1", 30, True)
        # and every result row left belongs to a round held
        assert history.connection.execute(
            "SELECT count(*) FROM pair_results WHERE round NOT IN (SELECT id FROM rounds)").fetchone() == (0,)


def test_an_incident_over_before_the_cutoff_goes_whole_and_the_underlay_is_its_own():
    with open_history(":memory:", create=True, retention=Retention(HOUR, 2 * HOUR)) as history:
        w = Writer(history, every=600.0)
        w.round(mesh())
        snap = mesh(broken={("h1", "h2")})
        w.round(snap)  # h1 -> h2 ok -> unreachable
        lossy = RoundSnapshot(snap.hosts, (PairSample("h1", "h2", "lossy", 30.0, underlay="unreachable"),
                                           PairSample("h2", "h1", "ok", underlay="ok")))
        w.round(lossy)  # still broken (unreachable -> lossy); no underlay change yet (none before)
        back = RoundSnapshot(snap.hosts, (PairSample("h1", "h2", "ok", underlay="unreachable"),
                                          PairSample("h2", "h1", "ok", underlay="ok")))
        w.round(back)  # the tunnel recovers; the underlay stays broken
        assert [(c.change.kind, c.change.after) for c in history.changes()] == [
            ("tunnel", "unreachable"), ("tunnel", "lossy"), ("tunnel", "ok")]
        w.round(RoundSnapshot(snap.hosts, (PairSample("h1", "h2", "ok", underlay="ok"),
                                           PairSample("h2", "h1", "ok", underlay="ok"))))
        while w.n < 20:  # past the changes' cutoff of every change above
            w.round(mesh())
        assert history.changes() == []  # both incidents recovered before the cutoff: gone whole


def test_a_round_deletes_at_most_a_batch_of_old_rounds(tmp_path):
    path = tmp_path / "h.sqlite"
    with open_history(path, create=True) as history:  # keeps everything
        w = Writer(history, every=30.0)
        for _ in range(100):
            w.round(mesh(hosts=4))
    with open_history(path, create=True, retention=Retention(60.0, 60.0)) as history:
        assert history.prune(now=T0 + 30 * 99 + 1).rounds == ROUNDS_AT_ONCE  # a time given
        w = Writer(history, every=30.0)
        w.n, w.previous = 100, mesh(hosts=4)
        deleted = []
        for _ in range(6):
            w.round(mesh(hosts=4))
            deleted.append(history.pruned.rounds)
        # the backlog drains a batch a round; then each round deletes the one that aged out
        assert deleted == [ROUNDS_AT_ONCE] * 4 + [3, 1], deleted
        assert [r.id for r in history.rounds()] == [105, 106]  # started in the last minute


def test_the_last_round_is_never_deleted_and_no_round_number_is_given_twice():
    with open_history(":memory:", create=True, retention=Retention(1.0, 1.0)) as history:
        w = Writer(history, every=30.0)  # each round older than --keep when the next ends
        assert [w.round(mesh(broken={("h1", "h2")} if n == 1 else ())) for n in range(4)] == [1, 2, 3, 4]
        assert [r.id for r in history.rounds()] == [4]
        assert history.prune(now=T0 + 86400).rounds == 0  # a day later: still the last one
        assert history.snapshot(4) == mesh()


def test_the_file_stays_the_same_size_over_many_rounds(tmp_path):
    """20 hosts (380 pairs), a round every 30 s kept 25 min (50 rounds), changes 50 min: from
    round 100 on the file no longer grows; without retention it grows ~40 bytes per pair per
    round."""
    sizes, everything = {}, {}
    for retention, found in ((Retention(1500.0, 3000.0), sizes), (KEEP_ALL, everything)):
        with open_history(tmp_path / f"{id(found)}.sqlite", create=True,
                          retention=retention) as history:
            w = Writer(history, every=30.0)
            for n in range(1, 401):
                flapping = {("h1", "h2"), ("h3", "h4")} if n % 5 == 0 else set()
                w.round(mesh(hosts=20, broken=flapping, seed=n))
                if n % 100 == 0:
                    found[n] = file_bytes(history)
    per_pair_round = (everything[400] - everything[100]) / 300 / 380
    assert 25 < per_pair_round < 60, per_pair_round
    assert sizes[400] <= sizes[100] * 1.05, sizes
    assert sizes[400] * 4 < everything[400], (sizes, everything)


def test_a_history_that_gets_smaller_gives_its_pages_back(tmp_path):
    path = tmp_path / "h.sqlite"
    with open_history(path, create=True) as history:
        w = Writer(history, every=30.0)
        for n in range(300):
            w.round(mesh(hosts=20, seed=n))
        big = file_bytes(history)
        assert history.connection.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental
    with open_history(path, create=True, retention=Retention(300.0, 300.0)) as history:
        w = Writer(history, every=30.0)
        w.n, w.previous = 300, mesh(hosts=20)
        for n in range(30):
            w.round(mesh(hosts=20, seed=n))
        assert len(history.rounds()) <= 11
        small = file_bytes(history)
    assert small * 5 < big, (small, big)


V1_CHANGES = """CREATE TABLE changes (
    id INTEGER PRIMARY KEY,
    round INTEGER NOT NULL REFERENCES rounds (id),
    at REAL NOT NULL, subject TEXT NOT NULL, src TEXT NOT NULL, dst TEXT, kind TEXT NOT NULL,
    before TEXT, after TEXT NOT NULL)"""


def version_1(path):
    """A history as the first fleet watch wrote it: changes referencing the rounds, no
    auto_vacuum, user_version 1."""
    with open_history(path, create=True) as history:
        w = Writer(history, every=30.0)
        w.round(mesh())
        w.round(mesh(broken={("h1", "h2")}))
    db = sqlite3.connect(path)
    with db:
        db.execute("ALTER TABLE changes RENAME TO old")
        db.execute(V1_CHANGES)
        db.execute("INSERT INTO changes SELECT * FROM old")
        db.execute("DROP TABLE old")
        db.execute("CREATE INDEX changes_at ON changes (at)")
        db.execute("PRAGMA user_version = 1")
    db.execute("PRAGMA auto_vacuum = NONE")
    db.execute("VACUUM")
    db.close()


def test_a_version_1_history_is_read_as_it_is_and_upgraded_when_continued(tmp_path):
    path = tmp_path / "v1.sqlite"
    version_1(path)
    with open_history(path, create=False) as history:  # fleet report: reads, changes nothing
        assert [c.change.after for c in history.changes()] == ["unreachable"]
        assert history.connection.execute("PRAGMA user_version").fetchone() == (1,)
    with open_history(path, create=True, retention=Retention(60.0, 60.0)) as history:
        db = history.connection
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)
        assert db.execute("PRAGMA foreign_key_list(changes)").fetchall() == []
        assert [(c.round, c.change.after) for c in history.changes()] == [(2, "unreachable")]
        w = Writer(history, every=30.0)
        w.n, w.previous = 10, mesh(broken={("h1", "h2")})
        w.round(mesh(broken={("h1", "h2")}))  # 5 min later: rounds 1 and 2 are deleted ...
        assert [r.id for r in history.rounds()] == [3]
        assert [c.round for c in history.changes()] == [2]  # ... the open incident is not
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
