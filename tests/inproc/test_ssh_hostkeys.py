"""Host-key policy (yes, accept-new, no) against a real SSH server, on the key it really offers."""

import asyncio
import os
import stat

import asyncssh
import pytest
from sshserver import CommandServer
from sshtarget import target_for

from fleet.core.errors import AuthError, HostKeyChangedError, HostKeyUnknownError, SSHSetupError
from fleet.ssh.hostkeys import host_key_checking, known_hosts_line
from fleet.ssh.transport import AsyncsshTransport


async def connect_and_run(transport, target, command="echo ok"):
    session = await transport.connect(target, timeout=10)
    try:
        return (await session.run(command, timeout=10)).stdout.strip()
    finally:
        await session.close()


def run(coro_fn, tmp_path, **server_options):
    async def scenario():
        server = await CommandServer(tmp_path, **server_options).start()
        try:
            return await coro_fn(server)
        finally:
            await server.close()
    return asyncio.run(scenario())


def fingerprint(server):
    return server.host_key.convert_to_public().get_fingerprint("sha256")


def other_key_line(server):
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    return known_hosts_line("127.0.0.1", server.port, other)


def test_policy_words_and_the_old_boolean():
    assert [host_key_checking(v) for v in ("yes", "accept-new", "NO", True, False)] == [
        "yes", "accept-new", "no", "yes", "no"]
    with pytest.raises(ValueError, match="one of yes, accept-new, no"):
        host_key_checking("ask")
    assert AsyncsshTransport(check_host_keys=False).host_key_checking == "no"
    assert AsyncsshTransport().host_key_checking == "yes"


def test_yes_refuses_an_unknown_key_naming_its_fingerprint_and_the_file(tmp_path):
    async def scenario(server):
        server.known_hosts_path.write_text("")
        with pytest.raises(HostKeyUnknownError) as caught:
            await connect_and_run(AsyncsshTransport(host_key_checking="yes"), target_for(server))
        return caught.value, server

    error, server = run(scenario, tmp_path)
    message = str(error)
    assert error.kind == "host-key-unknown" and message.startswith("a: ")
    for part in (f"127.0.0.1:{server.port}", "ssh-ed25519", fingerprint(server), str(server.known_hosts_path),
                 f"ssh-keyscan -p {server.port} 127.0.0.1 >>", "--host-key-checking accept-new"):
        assert part in message


def test_yes_refuses_a_changed_key_with_openssh_remedy(tmp_path):
    async def scenario(server):
        server.known_hosts_path.write_text(other_key_line(server))
        with pytest.raises(HostKeyChangedError) as caught:
            await connect_and_run(AsyncsshTransport(), target_for(server))
        return caught.value, server

    error, server = run(scenario, tmp_path)
    assert error.kind == "host-key-changed"
    assert f"ssh-keygen -R '[127.0.0.1]:{server.port}' -f {server.known_hosts_path}" in str(error)
    assert fingerprint(server) in str(error)


def test_yes_trusts_a_host_certificate_from_a_known_ca(tmp_path):
    ca = asyncssh.generate_private_key("ssh-ed25519")

    async def scenario(server):
        cert = ca.generate_host_certificate(server.host_key, "host", principals=["127.0.0.1"])
        await server.close()
        server.host_certificate = cert
        await server.start()  # again, now offering the certificate too
        server.known_hosts_path.write_text(
            f"@cert-authority [127.0.0.1]:{server.port} {ca.export_public_key().decode()}")
        return await connect_and_run(AsyncsshTransport(), target_for(server))

    assert run(scenario, tmp_path) == "ok"


def test_accept_new_records_the_key_and_a_later_run_trusts_it(tmp_path):
    known = tmp_path / "fresh" / "ssh" / "known_hosts"  # neither the file nor its directory exist

    async def scenario(server):
        target = target_for(server, options={"known_hosts": str(known)})
        first = await connect_and_run(AsyncsshTransport(host_key_checking="accept-new"), target)
        recorded = known.read_text()
        second = await connect_and_run(AsyncsshTransport(host_key_checking="yes"), target)
        return first, second, recorded, server

    first, second, recorded, server = run(scenario, tmp_path)
    assert first == second == "ok"
    algorithm, data = server.host_key.export_public_key().decode().split()[:2]
    assert recorded == f"[127.0.0.1]:{server.port} {algorithm} {data}\n"
    assert stat.S_IMODE(os.stat(known).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(known.parent).st_mode) == 0o700
    # an independent reading: asyncssh's own parser finds the server's key for that host and port
    keys = asyncssh.read_known_hosts(str(known)).match("127.0.0.1", "127.0.0.1", server.port)[0]
    assert {k.public_data for k in keys} == {server.host_key.public_data}


def test_accept_new_refuses_a_changed_key_like_yes(tmp_path):
    async def scenario(server):
        server.known_hosts_path.write_text(other_key_line(server))
        with pytest.raises(HostKeyChangedError):
            await connect_and_run(AsyncsshTransport(host_key_checking="accept-new"), target_for(server))
        return server.known_hosts_path.read_text(), other_key_line(server).split()[0]

    text, name = run(scenario, tmp_path)
    assert len(text.splitlines()) == 1 and text.startswith(name)  # nothing appended


def test_accept_new_from_many_hosts_at_once_keeps_the_file_whole(tmp_path):
    known = tmp_path / "known_hosts"

    async def scenario():
        servers = []
        for i in range(8):
            (tmp_path / f"s{i}").mkdir()
            servers.append(await CommandServer(tmp_path / f"s{i}").start())
        transport = AsyncsshTransport(host_key_checking="accept-new")
        targets = [target_for(s, f"h{i}", options={"known_hosts": str(known)}) for i, s in enumerate(servers)]
        outs = await asyncio.gather(*(connect_and_run(transport, t) for t in targets))
        for s in servers:
            await s.close()
        return outs, servers

    outs, servers = asyncio.run(scenario())
    assert outs == ["ok"] * 8
    parsed = asyncssh.read_known_hosts(str(known))
    for s in servers:
        assert {k.public_data for k in parsed.match("127.0.0.1", "127.0.0.1", s.port)[0]} == {
            s.host_key.public_data}
    assert len(known.read_text().splitlines()) == 8


def test_no_accepts_an_unknown_key_silently(tmp_path):
    async def scenario(server):
        server.known_hosts_path.write_text("")
        transport = AsyncsshTransport(host_key_checking="no")
        return await connect_and_run(transport, target_for(server)), transport.warnings, \
            server.known_hosts_path.read_text()

    out, warnings, text = run(scenario, tmp_path)
    assert out == "ok" and warnings == [] and text == ""


def test_no_accepts_a_changed_key_with_a_warning_and_never_sends_the_password(tmp_path):
    seen = []

    async def scenario(server):
        server.known_hosts_path.write_text(other_key_line(server))
        transport = AsyncsshTransport(host_key_checking="no", on_warning=lambda h, t: seen.append((h, t)))
        # password only: the password must not be sent, so the login fails
        target = target_for(server, password="s3cret", options={"client_keys": []})
        with pytest.raises(AuthError):
            await connect_and_run(transport, target)
        # keys still work
        out = await connect_and_run(transport, target_for(server, password="s3cret"))
        return out, transport.warnings, list(server.passwords)

    out, warnings, passwords = run(scenario, tmp_path, password="s3cret")
    assert out == "ok" and passwords == []
    assert seen == warnings and len(warnings) == 2 and warnings[0][0] == "a"
    assert "has changed" in warnings[0][1] and "without sending a password" in warnings[0][1]


def test_a_password_is_sent_to_a_host_whose_key_checks_out(tmp_path):
    async def scenario(server):
        target = target_for(server, password="s3cret", options={"client_keys": []})
        return await connect_and_run(AsyncsshTransport(host_key_checking="no"), target), server.passwords

    assert run(scenario, tmp_path, password="s3cret") == ("ok", ["s3cret"])


def test_a_missing_client_key_file_is_named(tmp_path):
    async def scenario(server):
        missing = tmp_path / "nope" / "id_ed25519"
        with pytest.raises(SSHSetupError) as caught:
            await connect_and_run(AsyncsshTransport(),
                                  target_for(server, options={"client_keys": [str(missing)]}))
        return caught.value, missing, server.connections

    error, missing, connections = run(scenario, tmp_path)
    assert error.kind == "ssh-setup" and str(missing) in str(error) and "No such file" in str(error)
    assert connections == 0


def test_a_missing_known_hosts_file_is_named_in_the_refusal(tmp_path):
    async def scenario(server):
        missing = tmp_path / "nope" / "known_hosts"
        with pytest.raises(HostKeyUnknownError) as caught:
            await connect_and_run(AsyncsshTransport(),
                                  target_for(server, options={"known_hosts": str(missing)}))
        return caught.value, missing

    error, missing = run(scenario, tmp_path)
    assert f"{missing} does not exist" in str(error)


def test_an_unreadable_known_hosts_file_is_named(tmp_path):
    async def scenario(server):
        directory = tmp_path / "a_directory"
        directory.mkdir()
        with pytest.raises(SSHSetupError) as caught:
            await connect_and_run(AsyncsshTransport(),
                                  target_for(server, options={"known_hosts": str(directory)}))
        return caught.value, directory

    error, directory = run(scenario, tmp_path)
    assert f"cannot read known_hosts file {directory}" in str(error)


def test_the_default_known_hosts_is_the_one_under_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))

    async def scenario(server):
        target = target_for(server)
        target = type(target)(target.name, ssh_port=server.port,
                              ssh_options={"client_keys": [str(server.client_key_path)]})
        with pytest.raises(HostKeyUnknownError) as caught:
            await connect_and_run(AsyncsshTransport(), target)
        out = await connect_and_run(AsyncsshTransport(host_key_checking="accept-new"), target)
        return caught.value, out

    error, out = run(scenario, tmp_path)
    assert str(home / ".ssh" / "known_hosts") in str(error) and out == "ok"
    assert (home / ".ssh" / "known_hosts").read_text().startswith("[127.0.0.1]:")
