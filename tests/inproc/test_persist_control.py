"""`fleet persist status|stop` talk only to a daemon that is this user's alone, as runs do."""

import asyncio
import io
import os
import socket

import pytest
import test_persist as tp
from sshserver import CommandServer

from fleet.ssh.persist import control, wire
from fleet.ssh.persist.client import PersistentTransport

persist_dir = tp.persist_dir
STRANGER = 54321  # a uid that is not ours
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")


@pytest.mark.parametrize(("peer", "ours", "allowed"), [(1000, 1000, True), (0, 0, True),
                                                       (1000, 0, False), (0, 1000, False),
                                                       (None, 1000, False)])
def test_only_a_peer_of_our_own_uid_is_talked_to(peer, ours, allowed):
    assert wire.peer_is_ours(peer, ours) is allowed


def test_the_peer_of_a_real_socket_is_this_process(tmp_path):
    one, other = socket.socketpair(socket.AF_UNIX)
    with one, other:
        assert wire.peer_uid(one) == os.getuid()


@pytest.fixture
def running(tmp_path, persist_dir):
    """A daemon in persist_dir keeping one connection; its pid."""
    async def scenario():
        server = await CommandServer(tmp_path).start()
        await tp._one_run(persist_dir, tp._inventory(tmp_path, server).hosts[0], "true")
        await server.close()

    asyncio.run(scenario())
    return tp._daemon_pid(persist_dir)


def _status(directory):
    out, err = io.StringIO(), io.StringIO()
    return control.status(directory, out, as_json=False, err=err), out.getvalue(), err.getvalue()


def test_a_directory_others_may_enter_is_refused_not_talked_to(persist_dir, running):
    persist_dir.chmod(0o755)
    try:
        code, out, err = _status(persist_dir)
        stop_err = io.StringIO()
        stopped = control.stop(persist_dir, io.StringIO(), err=stop_err)
        alive = tp._alive(running)
    finally:
        persist_dir.chmod(0o700)
    assert (code, out) == (2, "")
    assert err == (f"fleet persist: refused: {persist_dir}: mode 755; others could use its socket "
                   "(chmod 700)\n")
    assert stopped == 2 and "mode 755" in stop_err.getvalue()
    assert alive  # refused means not even asked to stop
    assert _status(persist_dir)[0] == 0


@needs_root
def test_a_directory_of_another_user_is_refused(persist_dir, running):
    os.chown(persist_dir, STRANGER, -1)
    try:
        code, _, err = _status(persist_dir)
    finally:
        os.chown(persist_dir, os.getuid(), -1)
    assert code == 2 and f"{persist_dir}: owned by uid {STRANGER}, not by this user" in err


@needs_root
def test_a_socket_of_another_user_is_refused_by_status_and_by_runs(persist_dir, running):
    sock = persist_dir / wire.SOCKET_NAME
    os.chown(sock, STRANGER, -1, follow_symlinks=False)
    try:
        code, _, err = _status(persist_dir)
        with pytest.raises(wire.PersistRefused, match=f"owned by uid {STRANGER}"):
            asyncio.run(PersistentTransport(persist=30, directory=persist_dir).start())
    finally:
        os.chown(sock, os.getuid(), -1, follow_symlinks=False)
    assert code == 2 and f"{sock}: owned by uid {STRANGER}, not by this user" in err


def test_something_else_in_the_sockets_place_is_refused(tmp_path):
    directory = wire.prepare_runtime_dir(tmp_path / "persist")
    (directory / wire.SOCKET_NAME).write_text("not a socket")
    code, _, err = _status(directory)
    assert code == 2 and "persist.sock: not a socket" in err


def test_no_directory_is_nothing_running_and_stays_absent(tmp_path):
    directory = tmp_path / "never-made"
    code, out, _ = _status(directory)
    assert code == 1 and "no persistent connections" in out
    assert control.stop(directory, io.StringIO()) == 0
    assert not directory.exists()
