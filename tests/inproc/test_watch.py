"""`fleet watch` against in-process SSH hosts (tests/inprocess.py): rounds over kept connections,
the history in SQLite, a fault that comes and goes, a host that goes away and comes back, the
metrics over HTTP and a stop by SIGTERM that leaves the history whole."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import asyncssh
import pytest
from conftest import wait_for

REPO = Path(__file__).resolve().parents[2]


def rounds(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        try:
            return int(connection.execute("SELECT count(*) FROM rounds").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not written yet
            return 0


def query(db: Path, sql: str, *values: object) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, values).fetchall()
    finally:
        connection.close()


def test_three_rounds_record_a_tunnel_fault_and_its_recovery(inprocess_fleet, tmp_path):
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    h2 = inprocess_fleet.add_host("h2", "172.31.0.12")
    inprocess_fleet.add_host("h3", "172.31.0.13")
    assert inprocess_fleet.run("setup").code == 0  # sit1 with its address on each
    inventory = inprocess_fleet.write_inventory()
    db = tmp_path / "history.sqlite"

    def inject_then_remove() -> None:  # between rounds 1 and 2, then 2 and 3
        wait_for(lambda: rounds(db) >= 1, "round 1", every=0.01)
        h1.stand_in.set_peers(unreachable=(h2.address,))
        wait_for(lambda: rounds(db) >= 2, "round 2", every=0.01)
        h1.stand_in.set_peers()

    injector = threading.Thread(target=inject_then_remove, daemon=True)
    injector.start()
    done = inprocess_fleet.cli("watch", "-i", str(inventory), "--history", str(db), "--rounds", "3",
                               "--every", "1.5", "--count", "2", "--interval", "0.01")
    injector.join(timeout=5)
    assert done.code == 0, done.err  # the last round is ok again
    lines = done.out.splitlines()
    assert len(lines) == 3, done.out
    assert " round 1  ALL OK  3 hosts  6 pairs: 6 ok  " in lines[0] and lines[0].endswith("no change")
    assert " NOT OK  " in lines[1] and "h1 -> h2 ok->unreachable (tunnel)" in lines[1]
    assert "h1 -> h2 unreachable->ok (tunnel)" in lines[2]
    assert query(db, "SELECT id, status, hosts, pairs, ok, unreachable, changes FROM rounds") == [
        (1, "ok", 3, 6, 6, 0, 0), (2, "not-ok", 3, 6, 5, 1, 1), (3, "ok", 3, 6, 6, 0, 1)]
    assert query(db, "SELECT round, subject, src, dst, kind, before, after FROM changes") == [
        (2, "pair", "h1", "h2", "tunnel", "ok", "unreachable"),
        (3, "pair", "h1", "h2", "tunnel", "unreachable", "ok")]
    assert query(db, "SELECT p.state, p.loss_pct FROM pair_results p JOIN hosts s ON s.id = p.src "
                 "JOIN hosts d ON d.id = p.dst WHERE p.round = 2 AND s.name = 'h1' AND d.name = 'h2'") \
        == [("unreachable", 100.0)]
    # one login per host for setup, one for the three rounds: the connections were kept
    assert inprocess_fleet.logins() == {"h1": 2, "h2": 2, "h3": 2}


def test_rounds_past_keep_are_deleted_and_the_break_they_saw_is_still_told(inprocess_fleet,
                                                                          tmp_path, capsys):
    from fleet import cli

    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    h2 = inprocess_fleet.add_host("h2", "172.31.0.12")
    assert inprocess_fleet.run("setup").code == 0
    inventory = inprocess_fleet.write_inventory()
    h1.stand_in.set_peers(unreachable=(h2.address,))  # broken from the first round on
    db = tmp_path / "history.sqlite"
    done = inprocess_fleet.cli("watch", "-i", str(inventory), "--history", str(db), "--rounds", "3",
                               "--every", "1.2", "--keep", "1s", "--count", "1", "--interval", "0.01")
    assert done.code == 1, done.err
    assert "keeping rounds 1s, changes 30d" in done.err
    # each round deleted the one before it (older than 1 s when it ended), with its rows
    assert query(db, "SELECT id FROM rounds") == [(3,)]
    assert query(db, "SELECT DISTINCT round FROM pair_results") == [(3,)]
    assert query(db, "SELECT round, src, dst, before, after FROM changes") == [
        (1, "h1", "h2", None, "unreachable")]
    options = json.loads(query(db, "SELECT options FROM rounds")[0][0])
    assert (options["keep_s"], options["keep_changes_s"]) == (1.0, 30 * 86400.0)
    capsys.readouterr()
    assert cli.main(["report", "--history", str(db)]) == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "1 round(s)" in text and "h1 -> h2 tunnel unreachable broke " in text
    assert "(round 1) ongoing" in text and "deleted by fleet watch --keep" in text


def test_bad_keep_values_are_usage_errors_before_any_login(inprocess_fleet, tmp_path):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    inventory = inprocess_fleet.write_inventory()
    db = tmp_path / "history.sqlite"
    for argv, message in ((["--keep", "7"], "argument --keep: '7': give a duration with its unit"),
                          (["--keep", "2d", "--keep-changes", "1d"],
                           "--keep-changes: the changes (kept 1d) are kept at least as long as the "
                           "rounds (kept 2d)")):
        done = inprocess_fleet.cli("watch", "-i", str(inventory), "--history", str(db), *argv)
        assert done.code == 2 and message in done.err, done.err
    assert inprocess_fleet.logins() == {"h1": 0, "h2": 0} and not db.exists()


def test_a_history_of_another_program_is_refused_before_any_login(inprocess_fleet, tmp_path):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    inventory = inprocess_fleet.write_inventory()
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE t (x)")
    done = inprocess_fleet.cli("watch", "-i", str(inventory), "--history", str(other), "--rounds", "1")
    assert done.code == 2
    assert f"--history {other}: an SQLite file of another program" in done.err
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to be read as a header " * 4)
    done = inprocess_fleet.cli("watch", "-i", str(inventory), "--history", str(text), "--rounds", "1")
    assert done.code == 2 and f"--history {text}: not an SQLite file of fleet watch" in done.err
    assert inprocess_fleet.logins() == {"h1": 0, "h2": 0}


class Watcher:
    """`python -m fleet watch ...` as a process of its own, its stdout and stderr read on threads
    of their own (communicate() would race the stderr reader for the last lines)."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fleet", "watch", *argv], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        self.err: list[str] = []
        self.out: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stderr, self.err),
                                               (self.process.stdout, self.out))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def metrics_url(self) -> str:
        wait_for(lambda: any("metrics at " in line for line in self.err) or self.process.poll() is not None,
                 "the metrics address")
        found = [line for line in self.err if "metrics at " in line]
        assert found, "".join(self.err)
        return found[0].split("metrics at ", 1)[1].strip()

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        self.process.wait(timeout=60)
        for reader in self._readers:
            reader.join(timeout=10)
        return self.process.returncode, "".join(self.out)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def scrape(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as answer:  # 127.0.0.1 only
        text = answer.read().decode()
    return {f"{s.name}{sorted(s.labels.items())}": s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def listen_again(server) -> None:
    """The host's sshd back on its port, with its key, after `abort()`."""
    again = await asyncssh.create_server(server.server_side, ["127.0.0.1"], server.port,
                                         server_host_keys=[server.host_key], **server.listen_options())
    server._servers = [again]


def test_a_host_gone_is_a_gap_its_return_a_recovery_and_sigterm_keeps_the_history(inprocess_fleet,
                                                                                 tmp_path):
    pytest.importorskip("prometheus_client")
    for i in (1, 2, 3):
        inprocess_fleet.add_host(f"h{i}", f"172.31.0.1{i}")
    assert inprocess_fleet.run("setup").code == 0
    inventory = inprocess_fleet.write_inventory()
    h3 = inprocess_fleet.members["h3"]
    db = tmp_path / "history.sqlite"
    watcher = Watcher("-i", str(inventory), "--history", str(db), "--every", "0.5", "--count", "1",
                      "--interval", "0.01", "--connect-timeout", "3", "--metrics-port", "0",
                      "--prometheus", str(tmp_path / "fleet.prom"))
    try:
        url = watcher.metrics_url()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        wait_for(lambda: rounds(db) >= 1, "round 1")
        # the history is written first, then the metrics: wait for the round to reach them too
        metrics = wait_for(lambda: (m := scrape(url)).get("fleet_mesh_verdict[('status', 'ok')]") == 1
                           and m, "round 1 in the metrics")
        assert metrics["fleet_mesh_hosts[]"] == 3
        assert metrics["fleet_mesh_host_up[('host', 'h3')]"] == 1
        textfile = (tmp_path / "fleet.prom").read_text()
        assert 'fleet_mesh_verdict{status="ok"} 1' in textfile  # the same names in both
        inprocess_fleet._loop.call(_abort(h3.server))
        wait_for(lambda: query(db, "SELECT count(*) FROM changes WHERE subject = 'host'")[0][0] >= 1,
                 "h3 down in the history")
        wait_for(lambda: scrape(url).get("fleet_mesh_host_up[('host', 'h3')]") == 0, "h3 down in the metrics")
        inprocess_fleet._loop.call(listen_again(h3.server))
        wait_for(lambda: query(db, "SELECT count(*) FROM changes WHERE subject = 'host'")[0][0] >= 2,
                 "h3 back in the history")
        code, out = watcher.stop()
    finally:
        watcher.kill()
    # it ended by SIGTERM itself, once the history was closed: a shell sees 143, and systemd a
    # clean stop (an exit(143) would be a failed unit)
    assert code == -signal.SIGTERM, "".join(watcher.err)
    assert "stopped by SIGTERM after" in "".join(watcher.err)
    host_changes = query(db, "SELECT round, kind, before, after FROM changes WHERE subject = 'host'")
    (down_round, *down), (up_round, *up) = host_changes
    assert down == ["host-down", "ok", "down"] and up == ["host-down", "down", "ok"]
    # the gap: h3's own pairs not measured (never counted as loss), from the round it went down
    gap = query(db, "SELECT DISTINCT p.state FROM pair_results p JOIN hosts s ON s.id = p.src "
                "WHERE s.name = 'h3' AND p.round >= ? AND p.round < ?", down_round, up_round)
    assert gap == [("not-measured",)]
    assert query(db, "SELECT kind, before, after FROM changes WHERE subject = 'pair' AND round = ?",
                 down_round) == [("not-measured", "ok", "not-measured")] * 2
    statuses = dict(query(db, "SELECT id, status FROM rounds"))
    assert statuses[down_round] == "could-not-tell" and statuses[up_round] == "ok"
    # every round whole: 3 hosts and 6 pairs each, nothing half-written
    assert query(db, "SELECT count(*) FROM rounds r WHERE (SELECT count(*) FROM host_results h "
                 "WHERE h.round = r.id) != 3 OR (SELECT count(*) FROM pair_results p "
                 "WHERE p.round = r.id) != 6") == [(0,)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert len(out.splitlines()) == rounds(db)  # a line per round written, none for the stopped one
    assert h3.server.connections >= 2  # it logged in again after it came back


def test_ctrl_c_stops_the_watch_with_130_and_keeps_the_rounds_it_finished(inprocess_fleet, tmp_path):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    assert inprocess_fleet.run("setup").code == 0
    inventory = inprocess_fleet.write_inventory()
    db = tmp_path / "history.sqlite"
    watcher = Watcher("-i", str(inventory), "--history", str(db), "--every", "0.2", "--count", "1",
                      "--interval", "0.01")
    try:
        wait_for(lambda: rounds(db) >= 2, "two rounds")
        code, out = watcher.stop(signal.SIGINT)
    finally:
        watcher.kill()
    assert code == 130, "".join(watcher.err)  # an exit code: 128 + SIGINT
    assert "stopped by SIGINT after" in "".join(watcher.err)
    assert len(out.splitlines()) == rounds(db) >= 2
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


async def _abort(server) -> None:
    server.abort()
