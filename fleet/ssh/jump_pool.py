"""Jump host logins shared by every host behind them: one login per jump host (at its place in a
chain, with the same keys and config), started by the first host that needs it and awaited by
the others; a failed login is the same failure for all of them, a lost one is replaced, and the
last session to let go of one closes it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncssh

from fleet.core.errors import ConnectError

CLOSE_WAIT = 10.0  # seconds closing waits for the jump connections it closes

Login = Callable[[], Awaitable[asyncssh.SSHClientConnection]]


class SharedJump:
    """One jump host's login, shared by every host behind it for as long as any uses it."""

    def __init__(self, label: str, login: asyncio.Future[asyncssh.SSHClientConnection]) -> None:
        self.label = label
        self.login = login
        self.users = 0

    async def connection(self, name: str) -> asyncssh.SSHClientConnection:
        """The jump connection, or the jump host's failure as this host's (same kind, same words:
        they name the jump host)."""
        try:
            return await asyncio.shield(self.login)
        except ConnectError as exc:
            raise type(exc)(name, exc.reason, via=exc.via) from exc

    def failed(self) -> bool:
        """Its login failed (the failure is kept: the hosts behind it share it, not retry it)."""
        return self.login.done() and (self.login.cancelled() or self.login.exception() is not None)

    def lost(self) -> bool:
        """It logged in, and the connection has closed since."""
        return self.login.done() and not self.failed() and bool(self.login.result().is_closed())

    async def close(self) -> None:
        if not self.login.done():
            self.login.cancel()
        await asyncio.wait([self.login])  # its outcome, without taking a cancellation of ours
        if self.failed():  # a failed or cancelled login has nothing to close
            return
        connection = self.login.result()
        connection.close()
        try:
            await asyncio.wait_for(connection.wait_closed(), timeout=5)
        except (TimeoutError, OSError, asyncssh.Error):
            pass


class JumpPool:
    """The shared jump logins of one transport, by chain: what decides sharing (trust_key), then
    each (hop, route) from the first hop to this one."""

    def __init__(self) -> None:
        self._shared: dict[tuple[Any, ...], SharedJump] = {}
        self._closing: set[asyncio.Task[None]] = set()  # jump connections being closed
        self._closed = False

    @staticmethod
    def trust_key(ssh_options: Mapping[str, Any]) -> str:
        """What, besides the route, decides whether two hosts may share a jump login: the keys,
        known_hosts files, passphrase and ssh config their extras name."""
        return repr(sorted((k, repr(v)) for k, v in ssh_options.items()
                           if k in ("client_keys", "known_hosts", "passphrase", "config", "agent_path")))

    def share(self, chain: tuple[Any, ...], label: str, login: Login) -> SharedJump:
        """The one login at this place in a chain, started with `login` unless one is under way
        or up; a login that ended is replaced. The caller holds it until `release`."""
        shared = self._shared.get(chain)
        if shared is not None and shared.lost():  # log in again, once, for all behind it
            del self._shared[chain]
            shared = None
        if shared is None:
            shared = SharedJump(label, asyncio.ensure_future(login()))
            self._shared[chain] = shared
        shared.users += 1
        return shared

    def release(self, held: Sequence[SharedJump]) -> list[asyncio.Task[None]]:
        """Let go of jump connections; the ones no session uses any more that are lost, or whose
        transport is closed, start closing: returned, and kept until they are done (close()
        waits for them)."""
        closing = []
        for shared in held:
            shared.users -= 1
            if shared.users == 0 and (self._closed or shared.lost()):
                for key, value in list(self._shared.items()):
                    if value is shared:
                        del self._shared[key]
                closing.append(self._close_jump(shared))
        return closing

    def _close_jump(self, shared: SharedJump) -> asyncio.Task[None]:
        task = asyncio.create_task(shared.close(), name=f"close jump {shared.label}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return task

    async def release_and_close(self, held: Sequence[SharedJump]) -> None:
        await self._closed_jumps(self.release(held))

    @staticmethod
    async def _closed_jumps(tasks: Sequence[asyncio.Task[None]]) -> None:
        """Wait for jump connections to close, CLOSE_WAIT at most; one that takes longer is
        cancelled and waited for (a cancelled close returns at once)."""
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=CLOSE_WAIT)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def close(self) -> None:
        """Close the shared jump connections no session uses any more, and wait (CLOSE_WAIT at
        most) for every jump connection being closed; the others close when their last session
        does, which waits for them."""
        self._closed = True
        for key, shared in list(self._shared.items()):
            if shared.users == 0:
                del self._shared[key]
                self._close_jump(shared)
        await self._closed_jumps(list(self._closing))

    def forget_failures(self) -> None:
        """Log in to a jump host again next time even though it failed before."""
        for key, shared in list(self._shared.items()):
            if shared.failed():
                del self._shared[key]
