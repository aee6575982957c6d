"""Process limits that a fleet-sized number of open connections needs."""

from __future__ import annotations

import resource


def raise_open_file_limit() -> None:
    """Every host's SSH connection stays open for the whole run (the pool, or the persistent-
    connection process): a 1,024 soft limit, the usual default, would fail hosts past ~1,000 with
    "Too many open files". Raise the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
