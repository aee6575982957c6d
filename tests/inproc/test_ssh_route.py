"""~/.ssh/config applies where the inventory says nothing, and jump hosts fail as themselves."""

import asyncio
import socket

import pytest
from sshserver import CommandServer
from sshtarget import Target, target_for

from fleet.core.errors import AuthError, ConnectError, HostKeyUnknownError
from fleet.jumps import Hop, parse_jumps
from fleet.ssh.transport import AsyncsshTransport, effective_port


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def echo(transport, target):
    session = await transport.connect(target, timeout=10)
    try:
        return (await session.run("echo ok", timeout=10)).stdout.strip()
    finally:
        await session.close()


def test_parse_jumps():
    assert parse_jumps("bob@j1:2222, j2,ssh://al@[::1]:23") == [
        Hop("j1", 2222, "bob"), Hop("j2", None, None), Hop("::1", 23, "al")]


def test_the_ssh_config_port_applies_when_the_inventory_has_none(tmp_path, home):
    async def scenario():
        server = await CommandServer(tmp_path).start()
        (home / ".ssh" / "config").write_text(f"Host 127.0.0.1\n  Port {server.port}\n  User nobody-here\n")
        target = target_for(server)
        no_port = Target("a", ssh_port=None, username=None, ssh_options=target.ssh_options)
        shown = effective_port(no_port)
        out = await echo(AsyncsshTransport(), no_port)
        # the inventory's port wins over the config's
        with pytest.raises(ConnectError, match=f"127.0.0.1:{closed_port_value}"):
            await echo(AsyncsshTransport(), Target("a", ssh_port=closed_port_value,
                                                  ssh_options=target.ssh_options))
        await server.close()
        return shown, out, server.port

    closed_port_value = closed_port()
    shown, out, port = asyncio.run(scenario())
    assert shown == port and out == "ok"


def test_without_config_or_inventory_port_it_is_22(home):
    assert effective_port(Target("a", ssh_host="127.0.0.1")) == 22
    assert effective_port(Target("a", ssh_host="127.0.0.1", ssh_port=2200)) == 2200


async def two_servers(tmp_path, **jump_options):
    (tmp_path / "jump").mkdir()
    (tmp_path / "target").mkdir()
    jump = await CommandServer(tmp_path / "jump", **{"forwarding": True, **jump_options}).start()
    target = await CommandServer(tmp_path / "target").start()
    # one known_hosts for both, and the jump host accepts the target's client key
    target.known_hosts_path.write_text(target.host_key_line + jump.host_key_line)
    jump.client_key = target.client_key
    return jump, target


def test_a_jump_host_from_the_tunnel_extra_forwards_to_the_target(tmp_path):
    async def scenario():
        jump, target = await two_servers(tmp_path)
        tunnel = {"tunnel": f"127.0.0.1:{jump.port}"}
        out = await echo(AsyncsshTransport(), target_for(target, options=tunnel))
        forwarded, connections = jump.forwarded, target.connections
        await jump.close()
        await target.close()
        return out, forwarded, connections, target.port

    out, forwarded, connections, port = asyncio.run(scenario())
    assert out == "ok" and forwarded == [("127.0.0.1", port)] and connections == 1


def test_proxyjump_from_the_ssh_config(tmp_path, home):
    async def scenario():
        jump, target = await two_servers(tmp_path)
        (home / ".ssh" / "config").write_text(
            f"Host target-alias\n  Hostname 127.0.0.1\n  Port {target.port}\n  ProxyJump jumpy\n"
            f"Host jumpy\n  Hostname 127.0.0.1\n  Port {jump.port}\n")
        options = target_for(target).ssh_options
        out = await echo(AsyncsshTransport(), Target("t", ssh_host="target-alias", ssh_options=options))
        forwarded = jump.forwarded
        await jump.close()
        await target.close()
        return out, forwarded

    out, forwarded = asyncio.run(scenario())
    assert out == "ok" and len(forwarded) == 1


def jump_failure(tmp_path, prepare, **jump_options):
    async def scenario():
        jump, target = await two_servers(tmp_path, **jump_options)
        spec = prepare(jump, target)
        with pytest.raises(ConnectError) as caught:
            await echo(AsyncsshTransport(), target_for(target, options={"tunnel": spec}))
        await jump.close()
        await target.close()
        return caught.value, jump, target
    return asyncio.run(scenario())


def test_an_unreachable_jump_host_is_named(tmp_path):
    port = closed_port()
    error, _, _ = jump_failure(tmp_path, lambda jump, target: f"127.0.0.1:{port}")
    assert type(error) is ConnectError and error.kind == "unreachable"
    assert error.via == f"127.0.0.1:{port}"
    assert str(error).startswith(f"a: via jump host 127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}")


def test_a_jump_host_that_refuses_login_is_named(tmp_path):
    error, jump, _ = jump_failure(tmp_path, lambda jump, target: f"127.0.0.1:{jump.port}", accept_auth=False)
    assert isinstance(error, AuthError) and error.via == f"127.0.0.1:{jump.port}"
    assert f"via jump host 127.0.0.1:{jump.port}: authentication failed" in str(error)


def test_a_jump_host_with_an_unknown_key_is_named(tmp_path):
    def prepare(jump, target):
        target.known_hosts_path.write_text(target.host_key_line)  # the jump host's key unknown
        return f"127.0.0.1:{jump.port}"

    error, jump, _ = jump_failure(tmp_path, prepare)
    assert isinstance(error, HostKeyUnknownError) and error.via == f"127.0.0.1:{jump.port}"
    fingerprint = jump.host_key.convert_to_public().get_fingerprint("sha256")
    assert f"via jump host 127.0.0.1:{jump.port}: host key of 127.0.0.1:{jump.port}" in str(error)
    assert fingerprint in str(error)


def test_the_target_s_own_key_failure_is_not_the_jump_host_s(tmp_path):
    def prepare(jump, target):
        target.known_hosts_path.write_text(jump.host_key_line)  # the target's key unknown
        return f"127.0.0.1:{jump.port}"

    error, _, target = jump_failure(tmp_path, prepare)
    assert isinstance(error, HostKeyUnknownError) and error.via is None
    assert f"host key of 127.0.0.1:{target.port}" in str(error)


def test_a_target_the_jump_host_cannot_reach_is_the_target_s_failure(tmp_path):
    def prepare(jump, target):
        jump.forwarding = False  # the jump host's connect to the target is refused
        return f"127.0.0.1:{jump.port}"

    error, jump, target = jump_failure(tmp_path, prepare)
    assert type(error) is ConnectError and error.via is None
    assert (f"jump host 127.0.0.1:{jump.port} could not connect to 127.0.0.1:{target.port}: "
            "Connection refused") in str(error)


def test_a_jump_host_that_will_not_forward_is_named(tmp_path):
    error, jump, target = jump_failure(tmp_path, lambda jump, target: f"127.0.0.1:{jump.port}",
                                       forwarding="prohibited")
    assert type(error) is ConnectError and error.via == f"127.0.0.1:{jump.port}"
    assert str(error) == (f"a: via jump host 127.0.0.1:{jump.port}: it refused to forward to "
                          f"127.0.0.1:{target.port}: port forwarding is disabled")
