"""What a failed reading or plan of a host's tunnel means for that host: the planner's pure
exceptions (fleet.tunnel.plan) turned into the host's typed failure, in one place for setup and
teardown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fleet.core.errors import CommandError
from fleet.core.transport import CommandResult
from fleet.tunnel.errors import ForeignRouteError, ForeignTunnelError
from fleet.tunnel.plan import ForeignRoute, ForeignTunnel, StateUnreadable


@contextmanager
def host_failures(host: str, probe: CommandResult) -> Iterator[None]:
    """Inside: reading `probe` (the host's answer) and planning from it. A state that cannot be
    read is a `command` failure carrying what the host said; a tunnel or route fleet did not make
    is `foreign-tunnel` or `foreign-route`, and nothing on the host is touched."""
    try:
        yield
    except StateUnreadable as exc:
        raise CommandError(host, str(exc), command=probe.command, stdout=probe.stdout) from None
    except ForeignTunnel as exc:
        raise ForeignTunnelError(host, str(exc)) from None
    except ForeignRoute as exc:
        raise ForeignRouteError(host, str(exc)) from None


__all__ = ["host_failures"]
