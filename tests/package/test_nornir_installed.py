"""fleet's Nornir plugins from the installed wheel: the inventory plugin and the connection plugin
found by their entry points, and examples/nornir_connection.py run from that wheel against
in-process SSH servers."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import REPO, write_inventory
from nornirhosts import PREFIX, eventually, fleet_of


def test_the_installed_package_registers_the_plugin_by_entry_point(installed_venv, tmp_path):
    write_inventory(tmp_path / "inventory", "a:\n  hostname: 10.0.0.1\n", defaults=PREFIX)
    check = ("from importlib.metadata import entry_points\n"
             "(ep,) = [e for e in entry_points(group='nornir.plugins.inventory') "
             "if e.name == 'FleetInventory']\n"
             "assert ep.value == 'fleet.nornir.inventory:FleetInventory', ep.value\n"
             "from nornir import InitNornir\n"
             "import fleet.nornir\n"
             "nr = InitNornir(inventory={'plugin': 'FleetInventory'}, logging={'enabled': False})\n"
             "print(fleet.__file__)\n"
             "print(fleet.nornir.fleet_host(nr.inventory.hosts['a']).address)\n")
    done = subprocess.run([str(installed_venv), "-c", check], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""}, timeout=120)
    assert done.returncode == 0, done.stderr
    where, address = done.stdout.split()
    assert where.startswith(str(installed_venv.parent.parent))  # the installed copy
    assert address == "fd00:5efe:1ab::5efe:a00:1"  # the default inventory_dir, ./inventory


def test_the_installed_wheel_registers_the_plugin_and_runs_the_example(installed_venv, tmp_path):
    check = ("from importlib.metadata import entry_points\n"
             "(ep,) = [e for e in entry_points(group='nornir.plugins.connections') "
             "if e.name == 'fleet']\n"
             "assert ep.value == 'fleet.nornir.connection:FleetConnection', ep.value\n"
             "from nornir import InitNornir\n"
             "from nornir.core.plugins.connections import ConnectionPluginRegister\n"
             "import fleet.nornir.connection\n"
             "InitNornir(inventory={'plugin': 'FleetInventory', 'options': "
             "{'inventory_dir': 'inv'}}, logging={'enabled': False})\n"
             "assert ConnectionPluginRegister.get_plugin('fleet') is "
             "fleet.nornir.connection.FleetConnection\n"
             "print(fleet.nornir.connection.__file__)\n")
    with fleet_of(tmp_path) as (nr, servers):
        done = subprocess.run([str(installed_venv), "-c", check], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""}, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(str(installed_venv.parent.parent))  # the installed copy

        shown = subprocess.run([str(installed_venv), str(REPO / "examples" / "nornir_connection.py"),
                                str(tmp_path / "inv")], capture_output=True, text=True,
                               cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""}, timeout=180)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", shown.stdout)  # print_result's colours
        summary = [line for line in plain.splitlines() if line.startswith("host ")]
        assert shown.returncode == (1 if any("failed" in line for line in summary) else 0), (
            shown.stdout + shown.stderr)
        assert [line.split()[1] for line in summary] == ["a:", "b:"]
        for line in summary:
            assert "teardown ok" in line and "1 login" in line
        assert plain.count("teardown*") == plain.count("setup*") == 1  # print_result's headers
        assert "open connections after close_connections: 0" in plain
        for name, server in servers.items():
            assert server.connections == 1, name  # two nr.run calls over one login
            assert eventually(lambda server=server: server.disconnections == 1), name
        assert not (tmp_path / "nornir.log").exists()
