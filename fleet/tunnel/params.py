"""The parameters of the tunnel's tasks, setup and teardown."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.core.params import option
from fleet.isatap import TUNNEL_NAME


@dataclass(frozen=True)
class TunnelParams:
    """The parameters of setup and teardown (one class, so the two share `--replace`)."""

    replace: bool = option(False, help=f"setup and teardown: also replace (setup) or remove "
                           f"(teardown) a {TUNNEL_NAME} that fleet did not make; by default it is "
                           "refused and left untouched")
