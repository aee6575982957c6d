"""The tunnel's own failures, registered by kind as every HostError is (fleet.core.errors).

    HostError
    ├── ForeignTunnelError  a sit1 that fleet did not make: left untouched   kind `foreign-tunnel`
    └── ForeignRouteError   a route for a prefix fleet was asked to route,   kind `foreign-route`
                            not fleet's: left untouched
"""

from __future__ import annotations

from fleet.core.errors import HostError


class ForeignTunnelError(HostError):
    """The host has a tunnel of the same name that fleet did not make; it was left untouched."""

    kind = "foreign-tunnel"


class ForeignRouteError(HostError):
    """The host has a route for a prefix fleet was asked to route, not fleet's; left untouched."""

    kind = "foreign-route"


__all__ = ["ForeignRouteError", "ForeignTunnelError"]
