"""Every kind of host failure fleet defines, registered: the core's and each feature's.

A kind joins the registry (fleet.core.errors.HOST_ERROR_KINDS) when its class is defined, that is
when the module defining it is imported. Code that rebuilds a failure from its kind (a reply of
the persistent-connection process) imports this module first, so that a feature's kind is rebuilt
as its own class, never as a plain HostError. The core knows no feature; this module, above it,
names each feature's errors module (tests/unit/test_error_kinds.py checks that none is missing).
"""

from __future__ import annotations

import fleet.tunnel.errors  # noqa: F401  (registers foreign-tunnel, foreign-route)
from fleet.core.errors import HOST_ERROR_KINDS

FEATURE_ERROR_MODULES = ("fleet.tunnel.errors",)

__all__ = ["FEATURE_ERROR_MODULES", "HOST_ERROR_KINDS"]
