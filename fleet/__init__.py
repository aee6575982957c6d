"""fleet: ISATAP (IPv6 over IPv4) tunnels on a fleet of Linux hosts, set up and measured over SSH.

    import fleet
    outcome = fleet.run(["setup", "mesh"], "inventory")

`fleet.run` and `fleet.run_async` are fleet.api's (imported on first use, so that `import fleet`
stays cheap for the command line).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("run", "run_async", "Outcome", "TaskOutcome")


def __getattr__(name: str) -> Any:
    if name in _API:
        from fleet import api

        return getattr(api, name)
    raise AttributeError(f"module 'fleet' has no attribute {name!r}")


__all__ = ["__version__", *_API]
