"""A transport that keeps each host's session open from one round to the next.

Each round runs through fleet.api.execute, whose runner closes the sessions it was given when
the round ends. Here those sessions are lent, not handed over: closing a lent session does
nothing, and the session stays open for the next round, in this one process (the cross-process
variant is fleet.ssh.persist). A session that ended (the host's sshd killed, the host gone) is
replaced by a new connection, with the runner's connect timeout; the watcher drops the session of
a host that failed a round, so the next round logs in afresh (a half-dead connection is never
trusted twice).
"""

from __future__ import annotations

import asyncio
import contextlib

from fleet.core.transport import CommandResult, Session, SSHTarget, Transport, run_kept


class LentSession:
    """A kept session as one round sees it: runs commands, and `close()` keeps it open."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def closed(self) -> bool:
        return bool(getattr(self._session, "closed", False))

    async def run(self, command: str, *, timeout: float) -> CommandResult:
        return await run_kept(self._session, command, timeout=timeout)

    async def close(self) -> None:
        """Kept for the next round: KeptTransport.drop or .close closes it."""


class KeptTransport:
    """Wraps a transport: one session per host, kept until dropped or until the transport
    closes. `logins` counts the connections opened (the first round's and every reconnection)."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self._kept: dict[str, Session] = {}
        self.logins = 0

    @property
    def kept(self) -> int:
        return len(self._kept)

    def start_round(self) -> None:
        """A new round tries again what failed before (a jump host's login, say)."""
        forget = getattr(self._inner, "forget_failures", None)
        if forget is not None:
            forget()

    async def connect(self, host: SSHTarget, *, timeout: float) -> Session:
        kept = self._kept.get(host.name)
        if kept is not None and not getattr(kept, "closed", False):
            return LentSession(kept)
        if kept is not None:
            await self.drop([host.name])
        session = await self._inner.connect(host, timeout=timeout)
        self._kept[host.name] = session
        self.logins += 1
        return LentSession(session)

    async def drop(self, names: list[str] | tuple[str, ...]) -> None:
        """Close these hosts' sessions: their next round connects again."""
        sessions = [self._kept.pop(name) for name in names if name in self._kept]
        await _close_all(sessions)

    async def close(self) -> None:
        sessions, self._kept = list(self._kept.values()), {}
        try:
            await _close_all(sessions)
        finally:
            await self._inner.close()


async def _close_all(sessions: list[Session]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
