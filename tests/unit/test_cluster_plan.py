"""How a run is cut into shards, and when it is sharded at all (no engine needed)."""

from __future__ import annotations

import pytest

from fleet.cluster import choice
from fleet.cluster.shards import split
from fleet.core.errors import UsageError


@pytest.mark.parametrize("count, shards, sizes", [
    (10, 2, [5, 5]), (11, 2, [6, 5]), (10, 3, [4, 3, 3]), (3, 5, [1, 1, 1]), (1, 4, [1]),
    (0, 2, [0]),
])
def test_shards_are_balanced_consecutive_and_cover_every_host_once(count, shards, sizes):
    ranges = split(count, shards)
    assert [len(r) for r in ranges] == sizes
    assert [i for r in ranges for i in r] == list(range(count))


def test_a_run_needs_a_shard():
    with pytest.raises(ValueError):
        split(10, 0)


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(choice, "_cores", lambda: 2)


def test_a_small_fleet_runs_here_without_a_note(two_cores):
    assert choice.plan(choice.AUTO_HOSTS - 1, None, None) == (None, "")


def test_a_big_fleet_is_sharded_over_every_core_and_says_so(two_cores, monkeypatch):
    monkeypatch.setattr(choice, "engine_installed", lambda: True)
    chosen, note = choice.plan(choice.AUTO_HOSTS, None, None)
    assert chosen == choice.ClusterPlan("local", 2)
    assert "local cluster of 2 processes" in note


def test_a_big_fleet_without_the_engine_runs_here_and_says_why(two_cores, monkeypatch):
    monkeypatch.setattr(choice, "engine_installed", lambda: False)
    chosen, note = choice.plan(10_000, None, None)
    assert chosen is None
    assert "fleet-isatap[cluster]" in note


def test_asked_for_is_done_and_no_means_here(two_cores, monkeypatch):
    monkeypatch.setattr(choice, "engine_installed", lambda: True)
    assert choice.plan(3, "tcp://sched:8786", None)[0] == choice.ClusterPlan("tcp://sched:8786", 2)
    assert choice.plan(3, None, 4)[0] == choice.ClusterPlan("local", 4)
    assert choice.plan(10_000, "no", None) == (None, "")


def test_asked_for_without_the_engine_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(choice, "engine_installed", lambda: False)
    with pytest.raises(UsageError, match=r"fleet-isatap\[cluster\]"):
        choice.plan(10, "local", None)


def test_a_fleet_bigger_than_a_process_may_open_is_sharded_until_each_shard_fits(monkeypatch):
    monkeypatch.setattr(choice, "engine_installed", lambda: True)
    monkeypatch.setattr(choice, "_cores", lambda: 1)  # even on one core: files, not CPU
    chosen, note = choice.plan(50_000, None, None, open_files=20_000)
    assert chosen == choice.ClusterPlan("local", 3)  # 3 x 16,667 hosts, each under 19,744
    assert "20000 open files" in note
    assert choice.open_files_warning(50_000, chosen, 20_000) == ""
    monkeypatch.setattr(choice, "_cores", lambda: 4)
    assert choice.plan(50_000, None, None, open_files=20_000)[0] == choice.ClusterPlan("local", 4)
    assert choice.plan(50_000, "local", None, open_files=20_000)[0] == choice.ClusterPlan("local", 4)
    assert choice.plan(5_000, None, None, open_files=None)[0] == choice.ClusterPlan("local", 4)


def test_a_small_fleet_within_the_limit_stays_here_on_one_core(monkeypatch):
    monkeypatch.setattr(choice, "engine_installed", lambda: True)
    monkeypatch.setattr(choice, "_cores", lambda: 1)
    assert choice.plan(19_744, None, None, open_files=20_000) == (None, "")
    assert choice.open_files_warning(19_744, None, 20_000) == ""
    assert choice.plan(19_745, None, None, open_files=20_000)[0] == choice.ClusterPlan("local", 2)


@pytest.mark.parametrize("engine, remedy", [
    (True, "--cluster local"), (False, "pip install 'fleet-isatap[cluster]'")])
def test_too_many_hosts_for_one_process_are_warned_of_before_the_run(two_cores, monkeypatch,
                                                                      engine, remedy):
    monkeypatch.setattr(choice, "engine_installed", lambda: engine)
    chosen = choice.plan(30_000, "no", None, open_files=20_000)[0]
    warning = choice.open_files_warning(30_000, chosen, 20_000)
    assert chosen is None
    assert "this process may open only 20000 files" in warning
    assert "past about 19744" in warning and remedy in warning


def test_shards_asked_for_that_are_too_big_are_warned_of_with_the_count_that_fits(two_cores,
                                                                                  monkeypatch):
    monkeypatch.setattr(choice, "engine_installed", lambda: True)
    chosen = choice.plan(50_000, None, 2, open_files=20_000)[0]
    assert chosen == choice.ClusterPlan("local", 2)  # asked for: done as asked
    warning = choice.open_files_warning(50_000, chosen, 20_000)
    assert "each of the 2 shards (~25000 hosts)" in warning and "--shards 3 or more" in warning
    assert choice.open_files_warning(50_000, choice.ClusterPlan("local", 3), 20_000) == ""


def test_merge_gives_every_host_one_result_lost_and_unanswered_shards_included():
    from dataclasses import dataclass

    from nornir.core.task import Result

    from fleet.cluster.merge import merge
    from fleet.cluster.wire import HostOutcome, ShardRun
    from fleet.core.errors import CommandError, error_kind

    @dataclass(frozen=True)
    class Target:
        name: str
        nornir_host: object = None

    hosts = [Target(f"h{i}") for i in range(6)]
    shards = split(6, 3)
    failed = Result(host=None, result="x", failed=True,
                    exception=CommandError("h1", "exit status 3", command="c", exit_status=3))
    answered = ShardRun("t", (HostOutcome.of("h0", Result(host=None, result={"a": 1})),
                              HostOutcome.of("h1", failed)), False, 1.0)
    outcome = merge("t", hosts, shards, [answered, ConnectionError("gone"), None],
                    stopped=False, elapsed=2.0)
    results = {name: outcome.results[name][0] for name in outcome.results}
    assert list(results) == [h.name for h in hosts]
    assert results["h0"].result == {"a": 1} and not results["h0"].failed
    assert error_kind(results["h1"].exception) == "command"
    assert results["h1"].exception.exit_status == 3
    assert [error_kind(results[h].exception) for h in ("h2", "h3")] == ["connection-lost"] * 2
    assert "ConnectionError: gone" in results["h2"].exception.reason
    assert [error_kind(results[h].exception) for h in ("h4", "h5")] == ["interrupted"] * 2
    assert not outcome.interrupted and outcome.elapsed == 2.0


def test_the_shards_progress_is_told_as_the_whole_runs():
    from fleet.cluster.runner import _Relay
    from fleet.core.progress import CONNECTED, HOST_DONE, ProgressEvent

    heard: list[ProgressEvent] = []
    relay = _Relay("mesh", 4, 2, heard.append)
    relay.relay(0, [ProgressEvent("mesh", CONNECTED, "h0", 0, 2, 1),
                    ProgressEvent("mesh", HOST_DONE, "h0", 1, 2, 1, False, 3, "pairs answered")], 1)
    relay.relay(1, [ProgressEvent("mesh", HOST_DONE, "h2", 1, 2, 2, True)], 2)
    assert [(e.kind, e.host, e.done, e.total, e.connected) for e in heard] == [
        (CONNECTED, "h0", 0, 4, 1), (HOST_DONE, "h0", 1, 4, 1), (HOST_DONE, "h2", 2, 4, 3)]
    assert (heard[1].count, heard[1].count_label, heard[2].failed) == (3, "pairs answered", True)
