"""A big fleet without the cluster extra runs in one process, and says so only with -v."""

from __future__ import annotations

import pytest

from fleet.cluster import choice


@pytest.fixture
def big_fleet_without_the_engine(monkeypatch, inprocess_fleet):
    monkeypatch.setattr(choice, "AUTO_HOSTS", 2)  # these two hosts are "big"
    monkeypatch.setattr(choice, "_cores", lambda: 2)
    monkeypatch.setattr(choice, "engine_installed", lambda: False)
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    return inprocess_fleet


def test_it_runs_in_one_process_and_says_why_once_with_v(big_fleet_without_the_engine):
    done = big_fleet_without_the_engine.run("mesh", "-v")
    assert done.code == 0, done.err
    assert done.err.count("run in one process") == 1
    assert "fleet-isatap[cluster]" in done.err
    assert done.report["summary"]["ok"] == 2


def test_without_v_it_says_nothing(big_fleet_without_the_engine):
    done = big_fleet_without_the_engine.run("mesh")
    assert done.code == 0, done.err
    assert "cluster" not in done.err
