"""Kept connections follow the trust of the run that uses them: known_hosts and keys as they are now,
found from that run's HOME and working directory, never the daemon's.

A real daemon process and asyncssh's in-process SSH server, as in test_persist.py.
"""

import asyncio
import os

import pytest
import test_persist as tp
from sshserver import CommandServer

from fleet.core.errors import ConnectError
from fleet.ssh.persist import trust
from fleet.ssh.persist.wire import ConnectionSpec, connection_key
from fleet.ssh.transport import AsyncsshTransport

persist_dir = tp.persist_dir


# -- the pure parts --------------------------------------------------------------------------------
def test_every_file_path_is_resolved_with_the_clients_home_and_directory(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    options = {"known_hosts": "~/kh", "client_keys": ["id", ["~/k2", "k2-cert.pub"]],
               "config": "conf", "agent_path": "~/agent.sock", "passphrase": "~/not-a-path"}
    resolved, files = trust.resolve_options(options, environ={"HOME": str(home)}, cwd="/work/dir",
                                            policy="yes")
    assert resolved == {"known_hosts": f"{home}/kh", "config": "/work/dir/conf",
                        "client_keys": ["/work/dir/id", [f"{home}/k2", "/work/dir/k2-cert.pub"]],
                        "agent_path": f"{home}/agent.sock", "passphrase": "~/not-a-path"}
    assert files == sorted([f"{home}/kh", "/work/dir/id", f"{home}/k2", "/work/dir/k2-cert.pub",
                            "/work/dir/conf"])


def test_the_defaults_asyncssh_takes_from_home_are_the_clients(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    environ = {"HOME": str(home)}
    resolved, files = trust.resolve_options({}, environ=environ, cwd="/", policy="yes")
    # Neither file exists: no host is known (asyncssh's own behaviour), no config is read, and
    # both files are part of the trust, so creating one later is seen.
    assert resolved == {"known_hosts": os.devnull, "config": []}
    assert files == [f"{home}/.ssh/config", f"{home}/.ssh/known_hosts"]
    (home / ".ssh" / "known_hosts").write_text("")
    (home / ".ssh" / "config").write_text("")
    resolved, _ = trust.resolve_options({}, environ=environ, cwd="/", policy="yes")
    assert resolved == {"known_hosts": f"{home}/.ssh/known_hosts", "config": [f"{home}/.ssh/config"]}
    _, unchecked = trust.resolve_options({"known_hosts": "/kh"}, environ=environ, cwd="/", policy="no")
    assert unchecked == [f"{home}/.ssh/config"]  # host keys unchecked: known_hosts does not matter


def test_a_fingerprint_follows_the_contents(tmp_path):
    path = tmp_path / "known_hosts"
    files = trust.TrustFiles()
    assert files.fingerprint(str(path)).sha256 is None
    path.write_text("one\n")
    first = files.fingerprint(str(path))
    assert first.sha256 == "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806"
    path.write_text("two\n")
    assert files.fingerprint(str(path)).sha256 not in (None, first.sha256)


def test_the_connection_key_includes_the_trust_and_the_policy():
    spec = ConnectionSpec("h1", "10.0.0.1", 22, "root", None, {"known_hosts": "/k"})
    old = connection_key(spec, host_key_checking="yes", trust=[trust.TrustFile("/k", "aa")])
    assert old == connection_key(spec, host_key_checking="yes", trust=[trust.TrustFile("/k", "aa")])
    assert old != connection_key(spec, host_key_checking="yes", trust=[trust.TrustFile("/k", "bb")])
    assert old != connection_key(spec, host_key_checking="yes", trust=[trust.TrustFile("/k", None)])
    assert old != connection_key(spec, host_key_checking="accept-new",
                                 trust=[trust.TrustFile("/k", "aa")])
    assert connection_key(spec, check_host_keys=False) == connection_key(spec, host_key_checking="no")
    with pytest.raises(ValueError, match="one of yes, accept-new, no"):
        connection_key(spec, host_key_checking="maybe")


# -- for real ------------------------------------------------------------------------------------------
def _spec(server, **options):
    return ConnectionSpec("h1", "127.0.0.1", server.port, "tester", None,
                          {"client_keys": [str(server.client_key_path)], **options})


def _known_line(server):
    return f"[127.0.0.1]:{server.port} {server.host_key.export_public_key().decode().strip()}\n"


async def _direct_error(host):
    with pytest.raises(ConnectError) as caught:
        session = await AsyncsshTransport().connect(host, timeout=5)
        await session.close()
    return caught.value


def test_a_host_key_removed_from_known_hosts_no_longer_logs_in(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = tp._inventory(tmp_path, server).hosts[0]
        reused, result = await tp._one_run(persist_dir, host, "echo trusted")
        server.known_hosts_path.write_text("")  # the key is revoked
        with pytest.raises(ConnectError) as caught:
            await tp._one_run(persist_dir, host, "echo still trusted?")
        direct = await _direct_error(host)
        logins = server.connections
        await server.close()
        return result, caught.value, direct, logins

    result, error, direct, logins = asyncio.run(scenario())
    assert result.stdout == "trusted\n"
    assert (type(error), error.kind, error.host) == (type(direct), direct.kind, "h1")
    assert "not verifiable" in error.reason
    assert logins == 3  # the kept connection was not reused under the new known_hosts


def test_a_host_key_added_to_known_hosts_is_trusted_at_once(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = tp._inventory(tmp_path, server).hosts[0]
        server.known_hosts_path.write_text("")
        with pytest.raises(ConnectError, match="not verifiable"):
            await tp._one_run(persist_dir, host, "true")
        server.known_hosts_path.write_text(_known_line(server))
        reused, result = await tp._one_run(persist_dir, host, "echo trusted now")
        await server.close()
        return reused, result

    reused, result = asyncio.run(scenario())
    assert (reused, result.stdout) == (False, "trusted now\n")


def test_a_run_from_another_home_uses_that_homes_known_hosts(tmp_path, persist_dir, monkeypatch):
    trusting, stranger = tmp_path / "trusting", tmp_path / "stranger"
    for home in (trusting, stranger):
        (home / ".ssh").mkdir(parents=True)

    async def scenario():
        server = await CommandServer(tmp_path).start()
        (trusting / ".ssh" / "known_hosts").write_text(_known_line(server))
        host = _spec(server)  # no known_hosts in the inventory: ~/.ssh/known_hosts
        monkeypatch.setenv("HOME", str(trusting))  # the daemon starts with this HOME
        first = await tp._one_run(persist_dir, host, "echo one")
        monkeypatch.setenv("HOME", str(stranger))
        with pytest.raises(ConnectError) as caught:
            await tp._one_run(persist_dir, host, "echo two")
        monkeypatch.setenv("HOME", str(trusting))
        third = await tp._one_run(persist_dir, host, "echo three")
        await server.close()
        return first, caught.value, third

    first, error, third = asyncio.run(scenario())
    assert (first[0], first[1].stdout) == (False, "one\n")
    assert "not verifiable" in error.reason
    assert (third[0], third[1].stdout) == (True, "three\n")  # the first HOME's connection is kept


def test_the_daemon_never_falls_back_on_its_own_home(tmp_path, persist_dir, monkeypatch):
    stranger, trusting = tmp_path / "stranger", tmp_path / "trusting"
    for home in (trusting, stranger):
        (home / ".ssh").mkdir(parents=True)

    async def scenario():
        server = await CommandServer(tmp_path).start()
        (trusting / ".ssh" / "known_hosts").write_text(_known_line(server))
        monkeypatch.setenv("HOME", str(stranger))  # the daemon starts with a HOME knowing no host
        with pytest.raises(ConnectError, match="not verifiable"):
            await tp._one_run(persist_dir, _spec(server), "true")
        monkeypatch.setenv("HOME", str(trusting))
        result = await tp._one_run(persist_dir, _spec(server), "echo known here")
        await server.close()
        return result

    assert asyncio.run(scenario())[1].stdout == "known here\n"


def test_relative_and_home_paths_in_the_inventory_are_the_clients(tmp_path, persist_dir, monkeypatch):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()

    async def scenario():
        server = await CommandServer(tmp_path).start()
        (work / "kh").write_text(_known_line(server))
        (home / "key").write_bytes(server.client_key_path.read_bytes())
        (home / "key").chmod(0o600)
        monkeypatch.chdir(work)
        monkeypatch.setenv("HOME", str(home))
        host = ConnectionSpec("h1", "127.0.0.1", server.port, "tester", None,
                              {"known_hosts": "kh", "client_keys": ["~/key"]})
        result = await tp._one_run(persist_dir, host, "echo relative")
        await server.close()
        return result

    assert asyncio.run(scenario())[1].stdout == "relative\n"


def test_a_connection_under_superseded_trust_is_closed_once_unused(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = tp._inventory(tmp_path, server).hosts[0]
        await tp._one_run(persist_dir, host, "true")
        # known_hosts gains a line for another host (as `ssh` appends one): same trust for h1 in
        # substance, but another file; h1 logs in again and its old connection goes.
        with server.known_hosts_path.open("a") as known:
            known.write(f"[127.0.0.1]:1 {server.client_key.export_public_key().decode().strip()}\n")
        reused, _ = await tp._one_run(persist_dir, host, "true")
        await asyncio.sleep(0.3)
        still_open = [c for c in server._open if not c.is_closed()]
        await server.close()
        return reused, server.connections, len(still_open)

    assert asyncio.run(scenario()) == (False, 2, 1)
