"""fleet from Nornir without root: the inventory plugin (registered by hand here; by its entry
point in an installed copy: tests/package/test_nornir_installed.py), the hosts' validated values,
fleet's async tasks refused by Nornir's runners, and the sync task functions against real SSH
servers (asyncssh's, in-process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from conftest import REPO, write_inventory
from nornir import InitNornir
from nornir.core.exceptions import NornirExecutionError
from nornir.core.task import Result
from nornir.plugins.runners import SerialRunner
from nornirhosts import PREFIX, init, ssh_server

import fleet.nornir
import fleet.tasks.setup
import fleet.tasks.teardown
from fleet.core.errors import InventoryError, UsageError
from fleet.inventory import LoadedHost, load_inventory


def test_the_plugin_loads_fleets_validated_hosts(tmp_path):
    nr = init(REPO / "inventory")
    assert list(nr.inventory.hosts) == ["instance-a", "instance-b"]
    host = nr.inventory.hosts["instance-a"]
    assert isinstance(host, LoadedHost) and host.hostname == "172.31.14.146"
    # RFC 5214 section 6.1, the README's worked example
    assert str(fleet.nornir.fleet_host(host).address) == "2002:ca0c:1e01::5efe:ac1f:e92"
    assert host["isatap_prefix"] == "2002:ca0c:1e01::/64"  # Nornir's inheritance, untouched
    assert not os.path.exists(tmp_path / "nornir.log")


def test_a_bad_inventory_fails_as_fleet_inventory_does(tmp_path):
    directory = write_inventory(tmp_path / "inv", "web1:\n  hostname: 10.0.0.1\n  groups: [g]\n",
                                groups="g:\n  data:\n    isatap_prefix: '2002:ca0c:1e01::/48'\n")
    with pytest.raises(InventoryError) as raised:
        init(directory)
    cli = subprocess.run([sys.executable, "-m", "fleet", "inventory", "-i", str(directory)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert cli.returncode == 2
    assert str(raised.value) in cli.stderr
    assert (raised.value.file, raised.value.host, raised.value.field) == (
        str(directory / "groups.yaml"), "web1", "data.isatap_prefix")


def test_a_missing_directory_names_it(tmp_path):
    with pytest.raises(InventoryError, match="inventory directory not found") as raised:
        init(tmp_path / "nowhere")
    assert raised.value.file == str(tmp_path / "nowhere")


def test_filters_keep_the_validated_hosts_in_order(tmp_path):
    hosts = "".join(f"{n}:\n  hostname: 10.0.0.{i}\n  groups: [{'odd' if i % 2 else 'even'}]\n"
                    for i, n in enumerate(["a", "b", "c", "d"], 1))
    nr = init(write_inventory(tmp_path / "inv", hosts, groups="odd: {}\neven: {}\n", defaults=PREFIX))
    odd = nr.filter(filter_func=lambda h: h.has_parent_group("odd"))
    inventory = fleet.nornir.fleet_inventory(odd)
    assert [h.name for h in inventory.hosts] == ["a", "c"]
    assert [str(h.ipv4) for h in inventory.hosts] == ["10.0.0.1", "10.0.0.3"]
    with pytest.raises(UsageError, match="no hosts"):
        fleet.nornir.fleet_inventory(nr.filter(filter_func=lambda h: False))


def test_hosts_fleet_did_not_load_or_changed_after_validation_are_refused(tmp_path):
    directory = write_inventory(tmp_path / "inv", "a:\n  hostname: 10.0.0.1\n", defaults=PREFIX)
    simple = InitNornir(inventory={"plugin": "SimpleInventory",
                                   "options": {"host_file": str(directory / "hosts.yaml")}},
                        logging={"enabled": False})
    with pytest.raises(UsageError, match="was not loaded by fleet.*FleetInventory"):
        fleet.nornir.fleet_host(simple.inventory.hosts["a"])
    nr = init(directory)
    nr.inventory.hosts["a"].hostname = "10.9.9.9"  # as a transform_function could
    with pytest.raises(UsageError, match="changed after fleet validated"):
        fleet.nornir.fleet_host(nr.inventory.hosts["a"])


def test_the_loaders_nornir_object_has_a_runner(tmp_path):
    directory = write_inventory(tmp_path / "inv", "a:\n  hostname: 10.0.0.1\n", defaults=PREFIX)
    nr = load_inventory(directory).nornir
    done = nr.run(task=lambda task: Result(host=task.host, result=task.host.name))
    assert done["a"][0].result == "a" and not done.failed


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """Host `a` on a real SSH server, host `b` on a closed port: (nr, server)."""
    with ssh_server(tmp_path / "server") as server:
        entries = server.inventory_entry("a", "10.0.0.1") + server.inventory_entry(
            "b", "10.0.0.2").replace(f"port: {server.port}", f"port: {closed_port()}")
        nr = init(write_inventory(tmp_path / "inv", entries, defaults=PREFIX))
        try:
            yield nr, server
        finally:
            nr.close_connections(on_failed=True)  # the kept ones (fleet.nornir.connection)


def test_an_async_fleet_task_handed_to_nornir_fails_loudly_and_touches_nothing(served):
    nr, server = served
    for async_task in (fleet.tasks.teardown.run, fleet.tasks.setup.run):
        done = nr.with_runner(SerialRunner()).run(task=async_task, on_failed=True)
        assert set(done) == {"a", "b"} and set(done.failed_hosts) == {"a", "b"}
        for results in done.values():
            assert isinstance(results[0].exception, TypeError)
            assert "fleet.nornir" in str(results[0].exception)
            assert "is an async fleet task" in str(results[0].exception)
        with pytest.raises(NornirExecutionError) as raised:
            nr.with_runner(SerialRunner()).run(task=async_task, raise_on_error=True, on_failed=True)
        assert isinstance(raised.value.result["a"][0].exception, TypeError)
    assert server.connections == 0 and server.commands == []


def sit1_here() -> bool:
    """An independent reading: does this machine (where the in-process server runs commands)
    have a sit1?"""
    return subprocess.run(["ip", "link", "show", "dev", "sit1"], capture_output=True).returncode == 0


def test_a_sync_task_gives_nornir_results_and_a_failing_host_is_a_failed_result(served):
    nr, server = served
    if sit1_here():
        pytest.skip("this machine has a sit1: the dry run's answer would depend on whose it is")
    done = nr.run(task=fleet.nornir.teardown, dry_run=True)
    a, b = done["a"][0], done["b"][0]
    assert isinstance(a, Result) and a.host is nr.inventory.hosts["a"]
    assert (a.failed, a.changed, a.result["summary"]) == (False, False, "no sit1")
    assert b.failed and b.exception.kind == "unreachable" and b.result.startswith("unreachable: ")
    assert nr.data.failed_hosts == {"b"}  # Nornir's own bookkeeping
    assert server.connections == 1
    assert any("sit1" in command for command in server.commands)
    nr.run(task=fleet.nornir.teardown, dry_run=True)
    assert server.connections == 1  # the host's connection is kept (fleet.nornir.connection)
    nr.close_connections(on_failed=True)


def test_bad_parameters_are_a_failed_result_naming_them(served):
    nr, server = served
    done = nr.run(task=fleet.nornir.mesh_probe, count="many")
    assert isinstance(done["a"][0].exception, UsageError)
    assert "task 'mesh'" in str(done["a"][0].exception)
    assert server.connections == 0


def test_the_whole_run_keeps_nornirs_bookkeeping(served):
    nr, server = served
    if sit1_here():
        pytest.skip("this machine has a sit1: the dry run's answer would depend on whose it is")
    outcome = fleet.nornir.run(nr, "teardown", dry_run=True)
    assert outcome.exit_code == 1 and set(outcome.results) == {"a", "b"}
    assert outcome.results["b"][0].exception.kind == "unreachable"
    assert outcome.report["a"].status == "ok" and outcome.report["b"].error_kind == "unreachable"
    assert nr.data.failed_hosts == {"b"}
    with pytest.raises(NornirExecutionError):
        fleet.nornir.run(nr, "teardown", dry_run=True, raise_on_error=True)
    only_a = fleet.nornir.run(nr.filter(filter_func=lambda h: h.name == "a"), "teardown",
                              dry_run=True)
    assert list(only_a.results) == ["a"] and only_a.exit_code == 0


def test_a_mesh_of_one_host_is_refused_at_once_through_nornir_too(served):
    nr, server = served
    alone = nr.filter(filter_func=lambda h: h.name == "a")
    done = alone.run(task=fleet.nornir.mesh_probe)
    assert isinstance(done["a"][0].exception, UsageError)
    assert "a mesh needs at least 2" in str(done["a"][0].exception)
    with pytest.raises(UsageError, match="a mesh needs at least 2"):
        fleet.nornir.run(alone, "mesh")
    assert server.connections == 0  # no login, so no prober waiting on peers it does not have


def test_a_mesh_report_needs_every_hosts_probe(served):
    nr, _ = served
    done = nr.run(task=fleet.nornir.teardown, dry_run=True)
    with pytest.raises(UsageError, match="not the results of one"):
        fleet.nornir.mesh_report(nr, done)
    with pytest.raises(UsageError, match="no mesh_probe result for b"):
        fleet.nornir.mesh_report(nr, nr.filter(filter_func=lambda h: h.name == "a").run(
            task=fleet.nornir.teardown, dry_run=True))


def test_nornir_loading_every_plugin_loads_nothing_else_of_fleet(tmp_path):
    # InitNornir imports every installed inventory plugin, whoever calls it and with whichever
    # plugin: fleet's must cost nothing (and never fail) for a script that uses SimpleInventory.
    write_inventory(tmp_path / "inv", "a:\n  hostname: 10.0.0.1\n")
    code = ("import sys\n"
            "from nornir import InitNornir\n"
            "from nornir.core.plugins.inventory import InventoryPluginRegister\n"
            "from fleet.nornir.inventory import FleetInventory\n"
            "InventoryPluginRegister.register('FleetInventory', FleetInventory)\n"
            "InitNornir(inventory={'plugin': 'SimpleInventory', 'options': "
            "{'host_file': 'inv/hosts.yaml'}}, logging={'enabled': False})\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('fleet'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
    # InitNornir also imports every installed connection plugin: fleet's (when fleet's metadata
    # is on the path) must cost as little.
    plugin = {"fleet.nornir.connection", "fleet.nornir.loop"}
    assert set(done.stdout.split()) - plugin == {"fleet", "fleet.nornir", "fleet.nornir.inventory"}
