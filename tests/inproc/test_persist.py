"""Persistent connections (`--persist`): the real background process, real SSH logins.

The daemon is started exactly as the CLI starts it (a detached `python -m fleet.ssh.persist.daemon`);
the SSH servers are asyncssh's, in-process, counting logins, so reuse is seen, not assumed.
"""

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_inventory
from sshserver import CommandServer
from sshserver_limits import LimitedCommandServer

from fleet.core.errors import CommandError, ConnectError
from fleet.core.transport import RepeatedCommand
from fleet.ssh.persist import control, wire
from fleet.ssh.persist.client import PersistentTransport
from fleet.ssh.persist.wire import ConnectionSpec, connection_key, parse_persist

DEFAULTS = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"


# -- the pure parts --------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [("60", 60), ("60s", 60), ("5m", 300), ("1h", 3600),
                                               ("0.5", 0.5), ("0", 0), ("no", 0), ("off", 0)])
def test_persist_values_read_like_controlpersist(text, seconds):
    assert parse_persist(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1", "8d", "1x", "nan"])
def test_bad_persist_values_say_what_is_expected(text):
    with pytest.raises(ValueError, match="60s|7 days"):
        parse_persist(text)


def test_a_connection_is_shared_only_when_every_login_detail_matches():
    base = ConnectionSpec("h1", "10.0.0.1", 22, "root", None, {"known_hosts": "/k"})
    key = connection_key(base, check_host_keys=True)
    assert connection_key(ConnectionSpec("h1", "10.0.0.1", 22, "root", None,
                                         {"known_hosts": "/k"}), check_host_keys=True) == key
    different = [ConnectionSpec("h2", "10.0.0.1", 22, "root", None, {"known_hosts": "/k"}),
                 ConnectionSpec("h1", "10.0.0.2", 22, "root", None, {"known_hosts": "/k"}),
                 ConnectionSpec("h1", "10.0.0.1", 2222, "root", None, {"known_hosts": "/k"}),
                 ConnectionSpec("h1", "10.0.0.1", 22, "admin", None, {"known_hosts": "/k"}),
                 ConnectionSpec("h1", "10.0.0.1", 22, "root", "pw", {"known_hosts": "/k"}),
                 ConnectionSpec("h1", "10.0.0.1", 22, "root", None, {"known_hosts": "/other"})]
    assert key not in {connection_key(spec, check_host_keys=True) for spec in different}
    assert connection_key(base, check_host_keys=False) != key


def test_the_socket_directory_is_private_or_refused(tmp_path):
    fresh = wire.prepare_runtime_dir(tmp_path / "fresh")
    assert fresh.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(wire.PersistError, match="mode 755.*chmod 700"):
        wire.prepare_runtime_dir(shared)


def test_a_socket_path_too_long_for_unix_is_refused_with_the_fix(tmp_path):
    deep = tmp_path / ("d" * 100)
    with pytest.raises(wire.PersistError, match="too long for a Unix socket.*FLEET_PERSIST_DIR"):
        wire.socket_path(deep)
    assert wire.socket_path(Path("/tmp/fleet-0")) == Path("/tmp/fleet-0/persist.sock")


def test_where_the_socket_lives(tmp_path):
    assert wire.runtime_dir({wire.DIR_ENV: "/x/y"}) == Path("/x/y")
    assert wire.runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "fleet"
    assert wire.runtime_dir({}, uid=1234) == Path("/tmp/fleet-1234")


# -- the daemon, for real ----------------------------------------------------------------------------
@pytest.fixture
def persist_dir(tmp_path, monkeypatch):
    """A private directory for this test's daemon; whatever daemon started there is stopped."""
    directory = tmp_path / "persist"
    monkeypatch.setenv(wire.DIR_ENV, str(directory))
    yield directory
    pid = _daemon_pid(directory)
    control.stop(directory, open(os.devnull, "w"))
    if pid is not None:
        _wait_gone(pid, 10)


def _daemon_pid(directory: Path) -> int | None:
    try:
        return int((directory / wire.LOCK_NAME).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):  # never leave one behind, even when a test failed
        os.kill(pid, 15)
        return False
    return True


def _inventory(tmp_path, server, names=("h1",)):
    from fleet.inventory import load_inventory

    entries = "".join(server.inventory_entry(n, f"10.0.0.{i + 1}") for i, n in enumerate(names))
    return load_inventory(write_inventory(tmp_path / "inv", entries, defaults=DEFAULTS))


async def _one_run(directory, host, command, *, persist=30.0, check_host_keys=True, timeout=10.0):
    transport = PersistentTransport(persist=persist, check_host_keys=check_host_keys,
                                    directory=directory)
    await transport.start()
    try:
        session = await transport.connect(host, timeout=5)
        return session.reused, await session.run(command, timeout=timeout)
    finally:
        await transport.close()


def test_a_second_run_reuses_the_login_of_the_first(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = _inventory(tmp_path, server).hosts[0]
        first = await _one_run(persist_dir, host, "echo one; echo err >&2; exit 3")
        second = await _one_run(persist_dir, host, "echo two")
        logins = server.connections
        await server.close()
        return first, second, logins

    (reused1, result1), (reused2, result2), logins = asyncio.run(scenario())
    assert (reused1, reused2, logins) == (False, True, 1)
    assert (result1.exit_status, result1.stdout, result1.stderr) == (3, "one\n", "err\n")
    assert (result2.exit_status, result2.stdout) == (0, "two\n")
    assert (persist_dir / wire.SOCKET_NAME).stat().st_mode & 0o777 == 0o600


def test_host_key_policy_is_part_of_what_is_shared(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = _inventory(tmp_path, server).hosts[0]
        await _one_run(persist_dir, host, "true", check_host_keys=False)
        # A kept unchecked connection must not stand in for a checked one: the checked login
        # happens, and fails on a wrong key.
        server.known_hosts_path.write_text(
            f"[127.0.0.1]:{server.port} {server.client_key.export_public_key().decode()}")
        with pytest.raises(ConnectError, match="host key of 127.0.0.1:.* not verifiable"):
            await _one_run(persist_dir, host, "true", check_host_keys=True)
        logins = server.connections
        await server.close()
        return logins

    assert asyncio.run(scenario()) == 2


def test_a_refused_login_is_the_hosts_error_and_is_not_kept(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path, accept_auth=False).start()
        host = _inventory(tmp_path, server).hosts[0]
        errors = []
        for _ in range(2):
            with pytest.raises(ConnectError) as caught:
                await _one_run(persist_dir, host, "true")
            errors.append(caught.value)
        logins = server.connections
        await server.close()
        return errors, logins

    errors, logins = asyncio.run(scenario())
    assert all(e.host == "h1" and "authentication failed" in e.reason for e in errors)
    assert logins == 2  # tried again on the next run, not replayed from a cache


def test_a_kept_connection_that_died_is_replaced_by_a_new_login(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = _inventory(tmp_path, server).hosts[0]
        await _one_run(persist_dir, host, "true")
        server.drop_connections()  # as when the host's sshd restarts between runs
        await asyncio.sleep(0.3)
        reused, result = await _one_run(persist_dir, host, "echo again")
        logins = server.connections
        await server.close()
        return reused, result, logins

    reused, result, logins = asyncio.run(scenario())
    assert (reused, result.stdout, logins) == (False, "again\n", 2)


def test_a_command_timeout_leaves_the_connection_usable(tmp_path, persist_dir):
    async def scenario():
        server = await LimitedCommandServer(tmp_path).start()  # stops the timed-out command
        host = _inventory(tmp_path, server).hosts[0]
        with pytest.raises(CommandError, match="did not finish within 0.5 s"):
            await _one_run(persist_dir, host, "sleep 5", timeout=0.5)
        reused, result = await _one_run(persist_dir, host, "echo fine")
        logins = server.connections
        await server.close()
        return reused, result, logins

    assert asyncio.run(scenario())[0::2] == (True, 1)


def test_an_interrupted_run_does_not_break_the_kept_connection(tmp_path, persist_dir):
    async def scenario():
        server = await LimitedCommandServer(tmp_path).start()  # stops the given-up command
        host = _inventory(tmp_path, server).hosts[0]
        transport = PersistentTransport(persist=30, directory=persist_dir)
        await transport.start()
        session = await transport.connect(host, timeout=5)
        running = asyncio.create_task(session.run("sleep 30", timeout=60))
        await asyncio.sleep(0.5)
        running.cancel()  # what Ctrl-C does to a host's task
        with pytest.raises(asyncio.CancelledError):
            await running
        result = await session.run("echo still here", timeout=10)
        await transport.close()
        await server.close()
        return result

    assert asyncio.run(scenario()).stdout == "still here\n"


def test_the_process_leaves_when_idle_and_closes_its_connections(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = _inventory(tmp_path, server).hosts[0]
        await _one_run(persist_dir, host, "true", persist=0.5)
        pid = _daemon_pid(persist_dir)
        gone = await asyncio.to_thread(_wait_gone, pid, 10)
        await asyncio.sleep(0.2)
        open_after = len([c for c in server._open if not c.is_closed()])
        await server.close()
        return gone, open_after

    gone, open_after = asyncio.run(scenario())
    assert gone, "the daemon outlived its idle time"
    assert open_after == 0
    assert not (persist_dir / wire.SOCKET_NAME).exists()


def test_a_killed_process_is_replaced_by_the_next_run(tmp_path, persist_dir):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        host = _inventory(tmp_path, server).hosts[0]
        await _one_run(persist_dir, host, "true")
        first = _daemon_pid(persist_dir)
        os.kill(first, 9)  # no clean-up at all: a stale socket file stays behind
        await asyncio.to_thread(_wait_gone, first, 10)
        assert (persist_dir / wire.SOCKET_NAME).exists()
        reused, result = await _one_run(persist_dir, host, "echo back")
        second = _daemon_pid(persist_dir)
        await server.close()
        return first, second, reused, result

    first, second, reused, result = asyncio.run(scenario())
    assert second not in (None, first)
    assert (reused, result.stdout) == (False, "back\n")


def test_status_and_stop_show_and_close_what_is_kept(tmp_path, persist_dir):
    from fleet.inventory import load_inventory

    def ask(*args, **kwargs):  # control's commands run their own event loop: in a thread
        out = io.StringIO()
        return control.status(persist_dir, out, *args, **kwargs), out.getvalue()

    async def scenario():
        servers = [await CommandServer(tmp_path / name).start() for name in ("h1", "h2")]
        try:
            entries = "".join(server.inventory_entry(f"h{i + 1}", f"10.0.0.{i + 1}")
                              for i, server in enumerate(servers))
            hosts = load_inventory(write_inventory(tmp_path / "inv", entries,
                                                   defaults=DEFAULTS)).hosts
            await _one_run(persist_dir, hosts[0], "true")
            await _one_run(persist_dir, hosts[1], RepeatedCommand("true"))  # as the mesh's probe
            as_json = await asyncio.to_thread(ask, as_json=True)
            as_text = await asyncio.to_thread(ask, as_json=False)
            stopped = await asyncio.to_thread(control.stop, persist_dir, io.StringIO())
            return [s.port for s in servers], as_json, as_text, stopped
        finally:
            for server in servers:
                await server.close()

    ports, (code, out), (text_code, text), stopped = asyncio.run(scenario())
    assert code == 0 and text_code == 0 and stopped == 0
    status = json.loads(out)
    assert [(c["host"], c["target"], c["runs"], c["open"], c["shell"])
            for c in status["connections"]] == [
        ("h1", f"tester@127.0.0.1:{ports[0]}", 1, True, "none"),
        ("h2", f"tester@127.0.0.1:{ports[1]}", 1, True, "open")]  # kept for the next round
    assert "runs 1  shell none" in text and "runs 1  shell open" in text
    assert _wait_gone(status["pid"], 10)
    after = io.StringIO()
    assert control.status(persist_dir, after, as_json=False) == 1
    assert "no persistent connections" in after.getvalue()


# -- through the command line ---------------------------------------------------------------------------
def _fleet(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fleet", *map(str, args)], capture_output=True,
                          text=True, timeout=60, env=env)


def test_cli_runs_reuse_connections_and_skip_importing_asyncssh(tmp_path, persist_dir):
    # The server runs in a thread's event loop; the CLI runs are real processes.
    import threading

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    servers = []
    for name in ("s1", "s2"):  # two hosts are two SSH targets (one target twice is an error)
        (tmp_path / name).mkdir()
        servers.append(asyncio.run_coroutine_threadsafe(CommandServer(tmp_path / name).start(),
                                                        loop).result(10))
    try:
        inventory = write_inventory(tmp_path / "inv", servers[0].inventory_entry("h1", "10.0.0.1")
                                    + servers[1].inventory_entry("h2", "10.0.0.2"), defaults=DEFAULTS)
        task_dir = tmp_path / "tasks"
        task_dir.mkdir()
        (task_dir / "hello.py").write_text(
            "async def run(host):\n    out = await host.run('echo hi', check=True)\n"
            "    return host.result(out.stdout.strip())\n")
        # The second run in a process that reports what it imported.
        probe = ("import sys, fleet.cli; code = fleet.cli.main(sys.argv[1:]); "
                 "print('asyncssh imported' if 'asyncssh' in sys.modules else 'asyncssh not imported',"
                 " file=sys.stderr); sys.exit(code)")
        args = ["run", "hello", "-i", inventory, "--tasks-dir", task_dir, "--persist", "30"]
        first = _fleet(*args)
        second = subprocess.run([sys.executable, "-c", probe, *map(str, args), "--verbose"],
                                capture_output=True, text=True, timeout=60)
        logins = sum(server.connections for server in servers)
    finally:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "asyncssh not imported" in second.stderr
    assert "fleet: --persist: 2 connection(s) reused from earlier runs; all kept 30 s" in second.stderr
    assert logins == 2  # two hosts, logged in once each over two runs


def test_bad_persist_values_are_usage_errors(tmp_path, persist_dir):
    inventory = write_inventory(tmp_path / "inv", "h1:\n  hostname: 127.0.0.1\n  data: {ipv4: 10.0.0.1}\n",
                                defaults=DEFAULTS)
    done = _fleet("run", "mesh", "-i", inventory, "--persist", "soon")
    assert done.returncode == 2 and "argument --persist: 'soon': give seconds" in done.stderr
    done = _fleet("run", "mesh", "-i", inventory, env={**os.environ, wire.PERSIST_ENV: "soon"})
    assert done.returncode == 2 and "$FLEET_PERSIST: 'soon'" in done.stderr


def test_an_unusable_socket_directory_falls_back_to_direct_connections(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    monkeypatch.setenv(wire.DIR_ENV, str(shared))
    import threading

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = asyncio.run_coroutine_threadsafe(CommandServer(tmp_path).start(), loop).result(10)
    try:
        inventory = write_inventory(tmp_path / "inv", server.inventory_entry("h1", "10.0.0.1"),
                                    defaults=DEFAULTS)
        done = _fleet("run", "teardown", "-i", inventory, "--persist", "30", "--dry-run")
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
    assert "warning: --persist:" in done.stderr and "connecting directly" in done.stderr
    assert server.connections == 1
    assert not (shared / wire.SOCKET_NAME).exists()
