"""A jump host is logged in to once per run and shared by every host behind it: its failure is
tried once and is every such host's failure, with its kind; a lost jump connection is replaced."""

import asyncio

import pytest
from sshserver import CommandServer
from sshtarget import Target

from fleet.core.errors import AuthError, HostKeyChangedError
from fleet.ssh.transport import AsyncsshTransport


async def bed(tmp_path, targets=3, **jump_options):
    """A jump server and `targets` servers sharing one client key and one known_hosts file."""
    (tmp_path / "jump").mkdir()
    jump = await CommandServer(tmp_path / "jump", **{"forwarding": True, **jump_options}).start()
    servers = []
    for index in range(targets):
        (tmp_path / f"t{index}").mkdir()
        servers.append(await CommandServer(tmp_path / f"t{index}").start())
    first = servers[0]
    for server in [jump, *servers[1:]]:
        server.client_key = first.client_key
    first.known_hosts_path.write_text("".join(s.host_key_line for s in [jump, *servers]))
    options = {"client_keys": [str(first.client_key_path)], "known_hosts": str(first.known_hosts_path),
               "tunnel": f"127.0.0.1:{jump.port}"}
    hosts = [Target(f"h{i}", ssh_port=s.port, ssh_options=options) for i, s in enumerate(servers)]
    return jump, servers, hosts


async def close_all(jump, servers):
    for server in [jump, *servers]:
        await server.close()


async def echo_all(transport, hosts):
    async def one(host):
        session = await transport.connect(host, timeout=10)
        try:
            return (await session.run("echo ok", timeout=10)).stdout.strip()
        finally:
            await session.close()
    return await asyncio.gather(*(one(h) for h in hosts), return_exceptions=True)


def test_every_host_behind_a_jump_host_shares_one_login(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=4)
        transport = AsyncsshTransport()
        answers = await echo_all(transport, hosts)
        again = await echo_all(transport, hosts)  # the same run: still the one login
        logins, open_before_close = jump.connections, len([c for c in jump._open if not c.is_closed()])
        await transport.close()
        await asyncio.sleep(0.2)
        open_after = len([c for c in jump._open if not c.is_closed()])
        forwarded = list(jump.forwarded)
        await close_all(jump, servers)
        return answers, again, logins, open_before_close, open_after, forwarded

    answers, again, logins, open_before, open_after, forwarded = asyncio.run(scenario())
    assert answers == ["ok"] * 4 and again == ["ok"] * 4
    assert logins == 1
    assert len(forwarded) == 8  # one forwarded channel per host connection, over the one login
    assert open_before == 1 and open_after == 0  # kept while the transport lives, closed with it


def test_a_jump_host_that_refuses_login_is_tried_once_and_fails_every_host_behind_it(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=3, accept_auth=False)
        transport = AsyncsshTransport()
        first = await echo_all(transport, hosts)
        later = await echo_all(transport, hosts[:1])  # a host that comes later in the same run
        logins = jump.connections
        target_logins = [s.connections for s in servers]
        await transport.close()
        await close_all(jump, servers)
        return first + later, logins, target_logins, jump.port

    errors, logins, target_logins, port = asyncio.run(scenario())
    assert logins == 1 and target_logins == [0, 0, 0]
    assert [type(e) for e in errors] == [AuthError] * 4
    assert [e.host for e in errors] == ["h0", "h1", "h2", "h0"]
    assert all(e.via == f"127.0.0.1:{port}" and e.kind == "auth" for e in errors)
    assert all(f"via jump host 127.0.0.1:{port}: authentication failed" in str(e) for e in errors)


def test_a_jump_host_whose_key_changed_fails_every_host_with_that_kind(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=2)
        known = servers[0].known_hosts_path
        lines = known.read_text().splitlines(keepends=True)
        other = servers[1].host_key_line.split()[-1]  # another key, under the jump host's name
        algorithm = servers[1].host_key_line.split()[-2]
        known.write_text(f"[127.0.0.1]:{jump.port} {algorithm} {other}\n" + "".join(lines[1:]))
        transport = AsyncsshTransport()
        errors = await echo_all(transport, hosts)
        logins = jump.connections
        await transport.close()
        await close_all(jump, servers)
        return errors, logins

    errors, logins = asyncio.run(scenario())
    assert logins == 1
    assert [type(e) for e in errors] == [HostKeyChangedError] * 2
    assert all(e.kind == "host-key-changed" and "via jump host" in str(e) for e in errors)


def test_a_lost_jump_connection_is_replaced_by_one_new_login(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=3)
        transport = AsyncsshTransport()
        before = await echo_all(transport, hosts)
        jump.drop_connections()  # as a restarted bastion would
        await asyncio.sleep(0.3)
        after = await echo_all(transport, hosts)
        logins = jump.connections
        await transport.close()
        await close_all(jump, servers)
        return before, after, logins

    before, after, logins = asyncio.run(scenario())
    assert before == ["ok"] * 3 and after == ["ok"] * 3
    assert logins == 2


def test_hosts_with_other_keys_do_not_share_a_jump_login(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=2)
        other = dict(hosts[1].ssh_options, passphrase=None)  # another login detail: its own jump login
        changed = [hosts[0], Target("h1", ssh_port=hosts[1].ssh_port, ssh_options=other)]
        transport = AsyncsshTransport()
        answers = await echo_all(transport, changed)
        logins = jump.connections
        await transport.close()
        await close_all(jump, servers)
        return answers, logins

    answers, logins = asyncio.run(scenario())
    assert answers == ["ok", "ok"] and logins == 2


@pytest.fixture
def persist_dir(tmp_path, monkeypatch):
    """test_persist's: a private directory for this test's background process, stopped after."""
    import test_persist

    yield from test_persist.persist_dir.__wrapped__(tmp_path, monkeypatch)


def test_with_persist_the_jump_login_is_kept_between_runs(tmp_path, persist_dir):
    from conftest import write_inventory
    from test_persist import DEFAULTS, _one_run

    from fleet.inventory import load_inventory

    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=2)
        options = hosts[0].ssh_options
        entries = "".join(
            f"h{i}:\n  hostname: 127.0.0.1\n  port: {s.port}\n  username: tester\n"
            f"  data: {{ipv4: 10.0.0.{i + 1}}}\n  connection_options:\n    asyncssh:\n      extras:\n"
            f"        client_keys: ['{options['client_keys'][0]}']\n"
            f"        known_hosts: '{options['known_hosts']}'\n"
            f"        tunnel: '{options['tunnel']}'\n" for i, s in enumerate(servers))
        inventory = load_inventory(write_inventory(tmp_path / "inv", entries, defaults=DEFAULTS))
        first = await _one_run(persist_dir, inventory.hosts[0], "echo one")
        second = await _one_run(persist_dir, inventory.hosts[1], "echo two")  # another host, a later run
        logins = jump.connections
        await close_all(jump, servers)
        return first, second, logins

    (reused1, one), (reused2, two), logins = asyncio.run(scenario())
    assert (one.stdout, two.stdout) == ("one\n", "two\n")
    assert (reused1, reused2) == (False, False)  # two target logins ...
    assert logins == 1  # ... through the one jump login, kept by the background process


def test_a_chain_of_jump_hosts_logs_in_to_each_hop_once(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=3)
        (tmp_path / "inner").mkdir()
        inner = await CommandServer(tmp_path / "inner", forwarding=True).start()
        inner.client_key = servers[0].client_key
        known = servers[0].known_hosts_path
        known.write_text(known.read_text() + inner.host_key_line)
        chain = f"127.0.0.1:{jump.port},127.0.0.1:{inner.port}"  # outer first, as ProxyJump
        chained = [Target(h.name, ssh_port=h.ssh_port, ssh_options={**h.ssh_options, "tunnel": chain})
                   for h in hosts]
        transport = AsyncsshTransport()
        answers = await echo_all(transport, chained)
        logins = (jump.connections, inner.connections)
        outer_forwards, inner_forwards = list(jump.forwarded), list(inner.forwarded)
        await transport.close()
        await close_all(jump, [*servers, inner])
        return answers, logins, outer_forwards, inner_forwards, inner.port

    answers, logins, outer_forwards, inner_forwards, inner_port = asyncio.run(scenario())
    assert answers == ["ok"] * 3 and logins == (1, 1)
    assert outer_forwards == [("127.0.0.1", inner_port)]  # the outer hop carries the inner one once
    assert len(inner_forwards) == 3  # and the inner hop carries every host


def jump_tasks_pending():
    """The transport's own tasks (jump logins and closers) that have not finished."""
    names = ("SharedJump.close", "AsyncsshTransport._jump.<locals>.login")
    return [t for t in asyncio.all_tasks() if not t.done() and t.get_coro().__qualname__ in names]


def test_closing_the_last_session_through_a_closed_transport_waits_for_its_jump_to_close(tmp_path):
    """No task is left behind: the session that was the last to use a jump connection closes it
    and waits for that; the transport's close waits for every jump connection it closes."""
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=2)
        transport = AsyncsshTransport()
        first = await transport.connect(hosts[0], timeout=10)
        second = await transport.connect(hosts[1], timeout=10)
        await transport.close()  # both sessions still use the jump connection: it stays
        kept = len([c for c in jump._open if not c.is_closed()])
        assert (await second.run("echo ok", timeout=10)).stdout.strip() == "ok"
        await first.close()
        pending_after_first = jump_tasks_pending()
        await second.close()  # the last one: the jump connection closes, and is waited for
        pending_after_last = jump_tasks_pending()
        await transport.close()
        pending_after_close = jump_tasks_pending()
        await close_all(jump, servers)
        return kept, pending_after_first, pending_after_last, pending_after_close

    kept, after_first, after_last, after_close = asyncio.run(scenario())
    assert kept == 1
    assert after_first == [] and after_last == [] and after_close == []


def test_a_transport_closed_while_a_jump_login_is_under_way_waits_for_it(tmp_path):
    async def scenario():
        jump, servers, hosts = await bed(tmp_path, targets=1)
        transport = AsyncsshTransport()
        connecting = asyncio.create_task(transport.connect(hosts[0], timeout=10))
        while not jump_tasks_pending():  # the jump login has started
            await asyncio.sleep(0)
        connecting.cancel()
        await asyncio.wait([connecting])
        await transport.close()
        left = jump_tasks_pending()
        await close_all(jump, servers)
        return connecting.cancelled(), left

    cancelled, left = asyncio.run(scenario())
    assert cancelled and left == []
