"""The command line run in this process (`fleet.cli.main`) against in-process SSH hosts: how
failures are named per host, option checks that touch nothing, `fleet tasks` and `fleet inventory`.
"""

import json

import pytest


def test_unreachable_and_refused_hosts_are_named_and_the_others_go_on(inprocess_fleet):
    fine = inprocess_fleet.add_host("fine", "172.31.0.11")
    inprocess_fleet.add_unreachable("closed", "172.31.0.12")
    locked = inprocess_fleet.add_host("locked", "172.31.0.13", accept_auth=False)
    done = inprocess_fleet.run("setup", "mesh")
    assert done.code == 1
    assert done.host("fine", "setup")["status"] == "changed"
    assert fine.stand_in.files()["alias"] == "fleet-isatap"
    closed = done.host("closed", "setup")
    assert closed["status"] == "failed" and closed["error_kind"] == "unreachable"
    assert "cannot connect to 127.0.0.1:" in closed["error"]
    assert done.host("locked", "setup")["error_kind"] == "auth"
    assert locked.stand_in.calls() == [] and locked.server.commands == []
    assert "closed failed unreachable: cannot connect to 127.0.0.1:" in done.table
    assert "locked failed auth:" in done.table
    mesh = {h["name"]: h for h in done.report["tasks"][1]["hosts"]}
    assert (mesh["closed"]["state"], mesh["closed"]["error_kind"]) == ("error", "unreachable")
    assert (mesh["locked"]["state"], mesh["locked"]["error_kind"]) == ("error", "auth")
    assert mesh["fine"]["state"] == "ok" and mesh["fine"]["error_kind"] is None


@pytest.mark.parametrize("argv, message", [
    (["mesh", "--count", "0"], "--count must be between 1 and 1000"),
    (["mesh", "--peers", "0"], "--peers must be at least 1"),
    (["mesh", "--interval", "0"], "--interval must be between 0.01 and 60 seconds"),
    (["mesh", "--timeout", "61"], "--timeout must be between 0.1 and 60 seconds"),
    (["mesh", "--parallel", "0"], "--parallel must be between 1 and 1024"),
    (["mesh", "--probe", "smoke"], "argument --probe: invalid choice: 'smoke'"),
    (["setup", "--workers", "0"], "argument -w/--workers: must be at least 1, not 0"),
    (["setup", "--connect-timeout", "0"], "argument --connect-timeout: must be more than 0"),
    (["setup", "mesh", "--count", "1001"], "--count must be between 1 and 1000"),
    (["setup", "--limit", "nobody"], "matches 'nobody'"),
])
def test_bad_options_are_exit_2_before_any_login(inprocess_fleet, argv, message):
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    done = inprocess_fleet.run(*argv)
    assert done.code == 2
    assert message in done.err
    assert inprocess_fleet.logins() == {"h1": 0, "h2": 0}
    assert done.report is None and h1.stand_in.files() == {}


def test_tasks_lists_the_shipped_tasks(inprocess_fleet):
    done = inprocess_fleet.cli("tasks")
    assert done.code == 0
    described = {line.split()[0]: line for line in done.out.splitlines()}
    assert sorted(described) == ["mesh", "setup", "teardown"]
    assert "Configure the ISATAP tunnel sit1 on every host" in described["setup"]
    assert described["mesh"].rstrip().endswith("tasks/mesh.py]")


def test_inventory_json_lists_the_hosts_without_logging_in(inprocess_fleet):
    h1 = inprocess_fleet.add_host("h1", "172.31.0.11")
    h2 = inprocess_fleet.add_host("h2", "172.31.0.12")
    inventory = inprocess_fleet.write_inventory()
    done = inprocess_fleet.cli("inventory", "--json", "-i", str(inventory))
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"hosts": [
        {"name": "h1", "ssh": f"127.0.0.1:{h1.server.port}", "ipv4": "172.31.0.11",
         "address": "fd00:5efe:1ab::5efe:ac1f:b", "groups": []},
        {"name": "h2", "ssh": f"127.0.0.1:{h2.server.port}", "ipv4": "172.31.0.12",
         "address": "fd00:5efe:1ab::5efe:ac1f:c", "groups": []}]}
    assert inprocess_fleet.logins() == {"h1": 0, "h2": 0}


def test_json_to_stdout_puts_the_table_on_stderr(inprocess_fleet):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inventory = inprocess_fleet.write_inventory()
    done = inprocess_fleet.cli("run", "setup", "--dry-run", "-i", str(inventory), "--json", "-")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert report["task"] == "setup" and report["hosts"][0]["status"] == "changed"
    assert "h1  changed  would create sit1" in done.err and "changed  would" not in done.out
