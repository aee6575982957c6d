from pathlib import Path

import pytest

from fleet.mesh.ping import PingStats, failure_reason, parse_ping

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "ping"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def test_all_replies():
    assert parse_ping(golden("ok.txt")) == PingStats(3, 3, 0, 0.040, 0.117, 0.271, 0.108)


def test_per_reply_lines_do_not_matter():
    stats = parse_ping(golden("ok-verbose.txt"))
    assert (stats.sent, stats.received, stats.rtt_avg_ms) == (3, 3, 0.030)


def test_every_reply_lost_has_no_rtt():
    stats = parse_ping(golden("all-lost.txt"))
    assert stats == PingStats(3, 0)
    assert stats.loss_pct == 100.0


def test_some_lost_with_pipe_suffix():
    stats = parse_ping(golden("lossy.txt"))
    assert (stats.sent, stats.received, stats.loss_pct) == (4, 2, 50.0)
    assert stats.rtt_mdev_ms == 0.118


def test_errors_are_counted():
    stats = parse_ping(golden("errors.txt"))
    assert (stats.sent, stats.received, stats.errors) == (3, 0, 3)


@pytest.mark.parametrize("name, reason", [
    ("no-route.txt", "connect: Cannot assign requested address"),
    ("bad-name.txt", "not-an-address: Temporary failure in name resolution"),
])
def test_ping_that_could_not_run_has_no_statistics(name, reason):
    assert parse_ping(golden(name)) is None
    assert failure_reason(golden(name)) == reason


def test_failure_reason_of_nothing():
    assert failure_reason("") == "ping printed nothing"
