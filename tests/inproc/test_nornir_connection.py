"""The Nornir connection plugin `fleet` against real SSH servers (asyncssh's, in-process, each on
its own event loop in a thread): one login per host across nr.run calls, closed by
nr.close_connections(), a failed login as the host's failed Result. The plugin found by its entry
point in an installed wheel, and examples/nornir_connection.py run from that wheel:
tests/package/test_nornir_installed.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from conftest import REPO
from nornirhosts import eventually, fleet_of

import fleet.nornir
from fleet.core.errors import UsageError
from fleet.nornir.connection import CONNECTION, FleetConnection, HostConnection
from fleet.nornir.loop import SHARED


def loop_threads():
    return [t for t in threading.enumerate() if t.name == "fleet-nornir-loop"]


def test_two_runs_log_in_once_per_host_and_close_connections_ends_them(tmp_path):
    with fleet_of(tmp_path) as (nr, servers):
        first = nr.run(task=fleet.nornir.teardown, dry_run=True)
        second = nr.run(task=fleet.nornir.teardown, dry_run=True, replace=True)
        assert set(first) == set(second) == {"a", "b"}
        assert not first.failed and not second.failed  # else close_connections() would skip them
        for name, server in servers.items():
            assert server.connections == 1, name  # both calls over one login
            assert server.disconnections == 0
            assert any("sit1" in c for c in server.commands)  # the work was done on the host
            kept = nr.inventory.hosts[name].get_connection(CONNECTION, nr.config)
            assert isinstance(kept, HostConnection) and kept.target.name == name
        assert len(loop_threads()) == 1 and SHARED.users == 2  # one loop for every connection

        nr.close_connections()  # Nornir's: on the hosts that did not fail (on_failed=True: all)
        for name, server in servers.items():
            assert eventually(lambda server=server: server.disconnections == 1), name
            assert CONNECTION not in nr.inventory.hosts[name].connections
        assert SHARED.users == 0 and eventually(lambda: not loop_threads())  # the loop ended too

        nr.run(task=fleet.nornir.teardown, dry_run=True)  # a new run after closing logs in again
        assert [s.connections for s in servers.values()] == [2, 2]


def test_a_host_whose_login_fails_is_a_failed_result_and_the_others_are_fine(tmp_path):
    with fleet_of(tmp_path, refuse=["b"]) as (nr, servers):
        done = nr.run(task=fleet.nornir.teardown, dry_run=True)
        b = done["b"][0]
        assert b.failed and b.exception.kind == "auth" and b.exception.host == "b"
        assert b.result.startswith("auth: ") and b.host is nr.inventory.hosts["b"]
        assert not done["a"].failed and not done["c"].failed
        assert nr.data.failed_hosts == {"b"}
        assert CONNECTION not in nr.inventory.hosts["b"].connections  # Nornir keeps no failed one

        again = nr.run(task=fleet.nornir.teardown, dry_run=True, on_failed=True)
        assert again["b"][0].exception.kind == "auth"
        assert servers["b"].connections == 2  # tried again in the next run
        assert servers["a"].connections == servers["c"].connections == 1


def test_a_connection_the_host_ended_is_opened_again_on_the_next_call(tmp_path):
    with fleet_of(tmp_path) as (nr, servers):
        nr.run(task=fleet.nornir.teardown, dry_run=True)
        servers["a"].drop_connections()  # as a restarted sshd would
        assert eventually(lambda: servers["a"].disconnections == 1)
        done = nr.run(task=fleet.nornir.teardown, dry_run=True)
        assert not done.failed
        assert servers["a"].connections == 2 and servers["b"].connections == 1
        kept = nr.inventory.hosts["a"].get_connection(CONNECTION, nr.config)
        assert kept.logins == 2


def test_other_settings_open_another_connection_and_bad_ones_are_refused(tmp_path):
    with fleet_of(tmp_path) as (nr, servers):
        a = nr.filter(filter_func=lambda h: h.name == "a")
        a.run(task=fleet.nornir.teardown, dry_run=True)
        a.run(task=fleet.nornir.teardown, dry_run=True, host_key_checking="accept-new")
        assert servers["a"].connections == 2  # not the one checked under another policy
        assert eventually(lambda: servers["a"].disconnections == 1)
        done = a.run(task=fleet.nornir.teardown, dry_run=True, host_key_checking="maybe")
        assert isinstance(done["a"][0].exception, UsageError)
        assert "host key checking must be one of" in str(done["a"][0].exception)
        assert servers["a"].connections == 2


def test_opened_by_hand_it_takes_nornirs_parameters_and_fleets_settings(tmp_path):
    with fleet_of(tmp_path) as (nr, servers):
        host = nr.inventory.hosts["a"]
        server = servers["a"]
        settings = {"name": "by-hand", "host_key_checking": "yes", "connect_timeout": 5}
        host.open_connection(CONNECTION, nr.config, hostname="127.0.0.1", port=server.port,
                             username="tester", password=None, platform=None,
                             extras={"client_keys": [str(server.client_key_path)],
                                     "known_hosts": str(server.known_hosts_path),
                                     "fleet": settings},
                             default_to_host_attributes=False)
        kept = host.get_connection(CONNECTION, nr.config)
        assert kept.target.name == "by-hand" and "fleet" not in kept.target.ssh_options

        async def uname():
            session = await kept.transport().connect(kept.target, timeout=5)
            return (await session.run("echo kept", timeout=5)).stdout

        assert kept.run(uname()) == "kept\n" and server.connections == 1
        nr.run(task=fleet.nornir.teardown, dry_run=True)  # fleet's tasks want the validated host
        assert server.connections == 2 and kept.closed

        with pytest.raises(UsageError, match="extras\\['fleet'\\]"):
            FleetConnection().open("127.0.0.1", None, None, server.port, None,
                                   {"fleet": {"colour": "red"}})
        with pytest.raises(UsageError, match="not a plain login name"):
            FleetConnection().open("127.0.0.1", "-oProxyCommand", None, server.port, None, {})
        assert server.connections == 2


def test_loading_the_plugin_loads_nothing_else_of_fleet():
    # InitNornir imports every installed connection plugin, whoever calls it.
    code = ("import sys\n"
            "import fleet.nornir.connection\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('fleet'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fleet", "fleet.nornir", "fleet.nornir.connection",
                                   "fleet.nornir.loop"]
