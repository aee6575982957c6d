"""Nornir over fleet against in-process SSH servers (asyncssh's, sshserver.CommandServer), each on
its own event loop in a thread: shared by the Nornir tests of tests/inproc and of tests/package."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from conftest import write_inventory
from nornir import InitNornir
from nornir.core.plugins.connections import ConnectionPluginRegister
from nornir.core.plugins.inventory import InventoryPluginRegister
from sshserver import CommandServer

from fleet.nornir.connection import CONNECTION, FleetConnection
from fleet.nornir.inventory import FleetInventory

InventoryPluginRegister.register("FleetInventory", FleetInventory)
ConnectionPluginRegister.register(CONNECTION, FleetConnection)  # an installed copy: entry point

PREFIX = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"


def init(directory) -> object:
    return InitNornir(inventory={"plugin": "FleetInventory",
                                 "options": {"inventory_dir": str(directory)}},
                      logging={"enabled": False})


@contextlib.contextmanager
def ssh_server(workdir):
    """An in-process SSH server on its own event loop in a thread: Nornir's runners are
    synchronous and start loops of their own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    workdir.mkdir()
    server = CommandServer(workdir)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@contextlib.contextmanager
def fleet_of(tmp_path, *, refuse=()):
    """Hosts a, b (and c), each on its own in-process SSH server; those in `refuse` refuse every
    login. Yields (nr, {name: server}); closes what the test left open."""
    names = ["a", "b"] + (["c"] if refuse else [])
    with contextlib.ExitStack() as stack:
        servers = {n: stack.enter_context(ssh_server(tmp_path / f"server-{n}")) for n in names}
        for name in refuse:
            servers[name].accept_auth = False
        entries = "".join(servers[n].inventory_entry(n, f"10.0.0.{i}")
                          for i, n in enumerate(names, 1))
        nr = init(write_inventory(tmp_path / "inv", entries, defaults=PREFIX))
        try:
            yield nr, servers
        finally:
            nr.close_connections(on_failed=True)


def eventually(check, timeout=10.0):
    """The server sees a disconnect on its own loop, a moment after the client closed."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
