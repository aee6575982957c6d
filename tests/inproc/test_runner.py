"""The runner against real SSH servers (asyncssh's, in-process, on loopback)."""

import asyncio
import socket
import time

from conftest import write_inventory
from nornir_utils.plugins.functions import print_result
from sshserver import CommandServer

from fleet.core.errors import AuthError, CommandTimeoutError, ConnectError, HostTimeoutError, PreflightError
from fleet.core.progress import CONNECTED, HOST_DONE
from fleet.core.results import host_error_kind
from fleet.core.runner import INTERRUPTED, RunLimits, Runner
from fleet.inventory import load_inventory
from fleet.ssh.transport import AsyncsshTransport

DEFAULTS = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def servers(tmp_path, count, **kwargs):
    result = []
    for i in range(count):
        d = tmp_path / f"s{i}"
        d.mkdir()
        result.append(await CommandServer(d, **kwargs).start())
    return result


def inventory_for(tmp_path, entries):
    return load_inventory(write_inventory(tmp_path / "inv", "".join(entries), defaults=DEFAULTS))


async def echo_name(host):
    out = await host.run("echo hello from $0", check=True)
    return host.result(out.stdout.strip())


def test_one_host_failing_never_stops_the_others(tmp_path, capsys):
    async def scenario():
        good = await servers(tmp_path, 2)
        entries = [s.inventory_entry(f"ok{i}", f"10.0.0.{i + 1}") for i, s in enumerate(good)]
        entries.append(f"down:\n  hostname: 127.0.0.1\n  port: {closed_port()}\n"
                       "  data: {ipv4: 10.0.0.9}\n")
        inventory = inventory_for(tmp_path, entries)
        async with Runner(AsyncsshTransport()) as runner:
            outcome = await runner.run("echo", echo_name, inventory.hosts)
        for s in good:
            await s.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert [outcome.results[n][0].result for n in ("ok0", "ok1")] == ["hello from /bin/sh"] * 2
    failed = outcome.results["down"][0]
    assert failed.failed and isinstance(failed.exception, ConnectError)
    assert "Connection refused" in str(failed.exception) and "down" in str(failed.exception)
    assert set(outcome.results.failed_hosts) == {"down"}
    capsys.readouterr()
    print_result(outcome.results)  # nornir-utils prints what the runner returns, failures with why
    printed = capsys.readouterr().out
    assert "hello from /bin/sh" in printed
    down_block = printed[printed.index("* down "):]
    assert "ERROR" in down_block and "unreachable: cannot connect to 127.0.0.1:" in down_block


def test_unknown_host_key_is_refused(tmp_path):
    async def scenario(check):
        (server,) = await servers(tmp_path / str(check), 1)
        server.known_hosts_path.write_text("")  # nobody vouches for this host's key
        inventory = inventory_for(tmp_path / str(check), [server.inventory_entry("a", "10.0.0.1")])
        async with Runner(AsyncsshTransport(check_host_keys=check)) as runner:
            outcome = await runner.run("echo", echo_name, inventory.hosts)
        await server.close()
        return outcome.results["a"][0]

    (tmp_path / "True").mkdir()
    (tmp_path / "False").mkdir()
    refused = asyncio.run(scenario(True))
    assert refused.failed and "host key" in str(refused.exception)
    assert not asyncio.run(scenario(False)).failed


def test_command_timeout_is_a_host_error(tmp_path):
    async def slow(host):
        await host.run("sleep 4", timeout=0.5)
        return host.result("never")

    async def scenario():
        (server,) = await servers(tmp_path, 1)
        inventory = inventory_for(tmp_path, [server.inventory_entry("a", "10.0.0.1")])
        async with Runner(AsyncsshTransport()) as runner:
            outcome = await runner.run("slow", slow, inventory.hosts)
        await server.close()
        return outcome.results["a"][0]

    result = asyncio.run(scenario())
    assert result.failed and "did not finish within 0.5 s" in str(result.exception)


def test_after_a_command_timeout_the_host_s_connection_is_kept(tmp_path):
    async def task(host):
        try:
            await host.run("sleep 4", timeout=0.3)
        except CommandTimeoutError:
            pass
        return host.result((await host.run("echo after", check=True)).stdout.strip())

    async def scenario():
        (server,) = await servers(tmp_path, 1)
        inventory = inventory_for(tmp_path, [server.inventory_entry("a", "10.0.0.1")])
        async with Runner(AsyncsshTransport()) as runner:
            outcome = await runner.run("t", task, inventory.hosts)
        await server.close()
        return outcome.results["a"][0], server.connections

    result, connections = asyncio.run(scenario())
    assert result.result == "after" and connections == 1


def test_host_timeout_and_a_crashing_task_stay_with_their_host(tmp_path):
    async def task(host):
        if host.name == "sleepy":
            await asyncio.sleep(30)
        if host.name == "buggy":
            raise KeyError("oops")
        return host.result("fine")

    async def scenario():
        ss = await servers(tmp_path, 3)
        inventory = inventory_for(tmp_path, [s.inventory_entry(n, f"10.0.0.{i + 1}") for i, (s, n)
                                             in enumerate(zip(ss, ["sleepy", "buggy", "fine"]))])
        async with Runner(AsyncsshTransport(), RunLimits(host_timeout=0.5)) as runner:
            outcome = await runner.run("t", task, inventory.hosts)
        for s in ss:
            await s.close()
        return outcome.results

    results = asyncio.run(scenario())
    assert "did not finish within --host-timeout 0.5 s" in str(results["sleepy"][0].exception)
    assert "crashed: KeyError" in str(results["buggy"][0].exception)
    assert results["fine"][0].result == "fine" and not results["fine"][0].failed


def test_tasks_in_one_run_share_connections(tmp_path):
    async def scenario():
        ss = await servers(tmp_path, 3)
        inventory = inventory_for(tmp_path, [s.inventory_entry(f"h{i}", f"10.0.0.{i + 1}")
                                             for i, s in enumerate(ss)])
        async with Runner(AsyncsshTransport()) as runner:
            for _ in range(3):
                outcome = await runner.run("echo", echo_name, inventory.hosts)
                assert not outcome.results.failed
        counts = [s.connections for s in ss]
        for s in ss:
            await s.close()
        return counts

    assert asyncio.run(scenario()) == [1, 1, 1]


def test_handshakes_in_flight_are_bounded(tmp_path):
    async def scenario():
        ss = await servers(tmp_path, 6)
        inventory = inventory_for(tmp_path, [s.inventory_entry(f"h{i}", f"10.0.0.{i + 1}")
                                             for i, s in enumerate(ss)])
        transport = AsyncsshTransport()
        in_flight = peak = 0
        original = transport.connect

        async def counting_connect(host, *, timeout):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await original(host, timeout=timeout)
            finally:
                in_flight -= 1

        transport.connect = counting_connect
        async with Runner(transport, RunLimits(connect_workers=2)) as runner:
            outcome = await runner.run("echo", echo_name, inventory.hosts)
        for s in ss:
            await s.close()
        return peak, outcome

    peak, outcome = asyncio.run(scenario())
    assert peak == 2 and not outcome.results.failed


def test_stop_interrupts_and_keeps_what_finished(tmp_path):
    async def task(host):
        if host.name == "slow":
            await host.run("sleep 6")
        return host.result("done")

    async def scenario():
        ss = await servers(tmp_path, 2)
        inventory = inventory_for(tmp_path, [ss[0].inventory_entry("fast", "10.0.0.1"),
                                             ss[1].inventory_entry("slow", "10.0.0.2")])
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.5, stop.set)
        async with Runner(AsyncsshTransport()) as runner:
            outcome = await runner.run("t", task, inventory.hosts, stop=stop)
        for s in ss:
            await s.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert outcome.interrupted and outcome.elapsed < 5
    assert outcome.results["fast"][0].result == "done"
    assert INTERRUPTED in str(outcome.results["slow"][0].exception)


def test_sudo_that_wants_a_password_is_a_clear_host_error(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    (fake / "sudo").write_text("#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n")
    for f in fake.iterdir():
        f.chmod(0o755)

    async def task(host):
        await host.run("true", as_root=True)
        return host.result("ran")

    async def scenario():
        (server,) = await servers(tmp_path, 1, path_prefix=fake)
        inventory = inventory_for(tmp_path, [server.inventory_entry("a", "10.0.0.1")])
        async with Runner(AsyncsshTransport()) as runner:
            outcome = await runner.run("t", task, inventory.hosts)
        await server.close()
        return outcome.results["a"][0], server.commands

    result, commands = asyncio.run(scenario())
    assert isinstance(result.exception, PreflightError)
    assert "sudo wants a password" in str(result.exception)
    assert "sudo -n" in commands[0]


def test_wrong_credentials_say_authentication(tmp_path):
    async def scenario():
        (server,) = await servers(tmp_path, 1, accept_auth=False)
        inventory = inventory_for(tmp_path, [server.inventory_entry("a", "10.0.0.1")])
        async with Runner(AsyncsshTransport()) as runner:
            outcome = await runner.run("echo", echo_name, inventory.hosts)
        await server.close()
        return outcome.results["a"][0]

    result = asyncio.run(scenario())
    assert isinstance(result.exception, AuthError) and result.exception.kind == "auth"
    assert "authentication failed at 127.0.0.1" in str(result.exception)


def test_a_tasks_own_timeout_is_the_tasks_failure_not_the_host_timeout(tmp_path):
    async def task(host):
        if host.name == "waits":  # the task's own limit on a command of its own
            await asyncio.wait_for(host.run("sleep 5"), 0.3)
        return host.result("fine")

    async def scenario():
        ss = await servers(tmp_path, 2)
        inventory = inventory_for(tmp_path, [ss[0].inventory_entry("waits", "10.0.0.1"),
                                             ss[1].inventory_entry("fine", "10.0.0.2")])
        async with Runner(AsyncsshTransport(), RunLimits(host_timeout=20)) as runner:
            outcome = await runner.run("t", task, inventory.hosts)
            again = await runner.run("t", echo_name, inventory.hosts)  # its connection was kept
        logins = [s.connections for s in ss]
        for s in ss:
            await s.close()
        return outcome.results, again.results, logins

    results, again, logins = asyncio.run(scenario())
    failed = results["waits"][0]
    assert failed.failed and host_error_kind(failed) == "error"
    assert not isinstance(failed.exception, HostTimeoutError)
    assert "crashed: TimeoutError" in str(failed.exception) and "--host-timeout" not in str(failed.exception)
    assert results["fine"][0].result == "fine"
    assert not again.failed and logins == [1, 1]


def test_only_the_runners_own_limit_is_the_host_timeout(tmp_path):
    async def task(host):
        await host.run("sleep 5")
        return host.result("never")

    async def scenario():
        (server,) = await servers(tmp_path, 1)
        inventory = inventory_for(tmp_path, [server.inventory_entry("slow", "10.0.0.1")])
        async with Runner(AsyncsshTransport(), RunLimits(host_timeout=0.5)) as runner:
            outcome = await runner.run("t", task, inventory.hosts)
        await server.close()
        return outcome.results["slow"][0]

    result = asyncio.run(scenario())
    assert isinstance(result.exception, HostTimeoutError) and host_error_kind(result) == "host-timeout"


def test_a_bug_in_the_runner_cancels_the_run_and_is_raised_as_a_task_group_does(tmp_path):
    """A host's failure is a Result; an exception from the runner's own code (here the progress
    listener it calls) is no host's: the other hosts are cancelled at once, not waited for, and
    the run raises it in an ExceptionGroup."""
    cancelled = []

    async def task(host):
        if host.name == "quick":
            return host.result("done")
        try:
            await host.run("sleep 8")
        except asyncio.CancelledError:
            cancelled.append(host.name)
            raise
        return host.result("finished")

    def progress(event):
        if event.kind == HOST_DONE and event.host == "quick":
            raise RuntimeError("listener broke")

    async def scenario():
        ss = await servers(tmp_path, 3)
        inventory = inventory_for(tmp_path, [s.inventory_entry(n, f"10.0.0.{i + 1}") for i, (s, n)
                                             in enumerate(zip(ss, ["quick", "slow1", "slow2"]))])
        started = time.monotonic()
        async with Runner(AsyncsshTransport()) as runner:
            try:
                await runner.run("t", task, inventory.hosts, progress=progress)
            except BaseException as exc:  # what the run raised, to look at
                raised = exc
            else:
                raised = None
        elapsed = time.monotonic() - started
        still = [s.open_sessions for s in ss]
        for s in ss:
            await s.close()
        return raised, elapsed, still

    raised, elapsed, still = asyncio.run(scenario())
    assert isinstance(raised, ExceptionGroup), raised
    assert [type(e) for e in raised.exceptions] == [RuntimeError]
    assert str(raised.exceptions[0]) == "listener broke"
    assert sorted(cancelled) == ["slow1", "slow2"] and elapsed < 6  # not left to finish
    assert still == [0, 0, 0]  # their commands' channels were closed


def test_two_runs_on_one_runner_each_hear_only_of_their_own_connections(tmp_path):
    async def scenario():
        ss = await servers(tmp_path, 4)
        inventory = inventory_for(tmp_path, [s.inventory_entry(f"h{i}", f"10.0.0.{i + 1}")
                                             for i, s in enumerate(ss)])
        first, second = inventory.hosts[:2], inventory.hosts[2:]
        heard: dict[str, list[str]] = {"a": [], "b": []}

        def listener(run):
            return lambda event: heard[run].append(event.host) if event.kind == CONNECTED else None

        async with Runner(AsyncsshTransport()) as runner:
            outcomes = await asyncio.gather(
                runner.run("a", echo_name, first, progress=listener("a")),
                runner.run("b", echo_name, second, progress=listener("b")))
        for s in ss:
            await s.close()
        return heard, outcomes

    heard, outcomes = asyncio.run(scenario())
    assert not any(o.results.failed for o in outcomes)
    assert sorted(heard["a"]) == ["h0", "h1"] and sorted(heard["b"]) == ["h2", "h3"]
