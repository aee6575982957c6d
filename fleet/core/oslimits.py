"""Process limits that a fleet-sized number of open connections needs."""

from __future__ import annotations

import errno
import os
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


def open_file_limit() -> int | None:
    """The files this process may open (its soft limit; None when unlimited)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def out_of_files() -> str:
    """Why this process cannot open a file now ("" when it can): what an error of a library
    that hides the cause (asyncssh reading the ssh config says "Unknown local username") is
    really about when every descriptor is taken."""
    try:
        os.close(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            limit = open_file_limit()
            return f"{exc.strerror} (this process may hold {limit} files, ulimit -n)"
    return ""
