"""Ending a command the way its parent expects after a signal stopped it cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def end_by(signum: signal.Signals) -> int:
    """End the process by `signum` itself, its handler reset, once everything is closed: the
    parent sees a process stopped by that signal (a shell: 128 + its number; systemd: a clean
    stop), which a handler's exit code cannot say. Returns 128 + the number only where the signal
    does not end it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, a closed stream
            stream.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + int(signum)


__all__ = ["end_by"]
