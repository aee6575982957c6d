"""The lab's failures: a local QEMU lab (or namespace bed) that could not be built, started,
inspected or stopped. They happen on this machine, not on a host of the fleet: a LocalError."""

from __future__ import annotations

from fleet.core.errors import LocalError


class LabError(LocalError):
    """The local lab could not be built, started, inspected or stopped."""


__all__ = ["LabError"]
