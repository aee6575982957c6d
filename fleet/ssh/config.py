"""Where the ssh config puts a host: its address, port, user and ProxyJump (`Route`), and the
hops of a jump host chain, each with its own route. The user's ~/.ssh/config (or the `config`
extra) applies wherever the inventory says nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncssh

from fleet.core.errors import SSHSetupError
from fleet.core.oslimits import out_of_files
from fleet.core.transport import DEFAULT_SSH_PORT, SSHTarget
from fleet.jumps import Hop, parse_jumps, parse_port

MAX_JUMPS = 8  # jump hosts in one route, nested ProxyJump included


@dataclass(frozen=True)
class Route:
    """Where a host really is once ~/.ssh/config has had its say."""

    host: str
    port: int
    username: str
    tunnel: str | None  # ProxyJump, when the config gives one

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


def resolve_route(host: str, port: int | None, username: str | None, config: Any = ()) -> Route:
    """Host, port, user and ProxyJump for a host, the given values first, then the ssh config
    (~/.ssh/config, or the `config` extra), then the defaults. Reads files: call off the loop.
    ValueError for a port that is not 1-65535."""
    options = asyncssh.SSHClientConnectionOptions(
        host=host, port=port if port is not None else (), username=username if username else (),
        config=config, client_keys=[], agent_identities=None, agent_path=None, known_hosts=None)
    tunnel = options.tunnel if isinstance(options.tunnel, str) else None
    return Route(options.host, parse_port(str(options.port)), options.username, tunnel)


def effective_port(host: SSHTarget) -> int:
    """The port fleet connects to for a host: the inventory's, else the ssh config's, else 22.
    For display (`fleet inventory`); reads ~/.ssh/config."""
    if host.ssh_port is not None:
        return host.ssh_port
    try:
        return resolve_route(host.ssh_host, None, host.username,
                             host.ssh_options.get("config", ())).port
    except (OSError, ValueError, asyncssh.Error):
        return DEFAULT_SSH_PORT


async def jump_routes(name: str, spec: str, config: Any) -> list[tuple[Hop, Route]]:
    """The hops of a ProxyJump, first hop first, each with where the ssh config puts it; the
    first hop's own ProxyJump (from the ssh config) expanded in front of it."""
    hops: list[tuple[Hop, Route]] = []
    pending = spec
    while pending:
        try:
            parsed = parse_jumps(pending)
        except ValueError as exc:
            raise SSHSetupError(name, f"bad jump host {pending!r}: {exc}") from exc
        if not parsed:
            break
        resolved = []
        for hop in parsed:
            try:
                route = await asyncio.to_thread(resolve_route, hop.host, hop.port, hop.username, config)
            except (OSError, ValueError, asyncssh.Error) as exc:
                raise SSHSetupError(name, f"cannot read the ssh config for jump host {hop.host}: "
                                    f"{out_of_files() or exc}") from exc
            resolved.append((hop, route))
        hops[:0] = resolved
        pending = resolved[0][1].tunnel or ""
        if len(hops) > MAX_JUMPS:
            raise SSHSetupError(name, f"more than {MAX_JUMPS} jump hosts (a ProxyJump loop?)")
    return hops
