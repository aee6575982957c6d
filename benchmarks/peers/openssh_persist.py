"""OpenSSH fan-out as in `openssh` (curve25519), with ControlMaster=auto and ControlPersist=600,
measured warm: the untimed warm-up run leaves a master per host, and every timed run's `ssh`
opens a session through it. The masters' CPU and memory are counted with the run's.

The masters' sockets are in /tmp/fleet-bench-cm-TAG: a Unix socket path has at most 107 bytes,
and OpenSSH adds a 40-character hash and a temporary suffix to the directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from benchmarks.bed import BenchBed
from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation
from benchmarks.peers.openssh import KEX, fan_out, missing  # noqa: F401

NAME = "OpenSSH ControlPersist (warm)"
JOBS = BED_JOBS
CONTROL_PREFIX = "/tmp/fleet-bench-cm-"


def background_marker(bench: BenchBed) -> str:
    return f"{CONTROL_PREFIX}{bench.bed.tag}"


def cleanup(bench: BenchBed) -> None:
    """The masters' directory, once they are stopped."""
    shutil.rmtree(background_marker(bench), ignore_errors=True)


def invocation(ctx: Context) -> Invocation:
    control = background_marker(ctx.bench)
    with contextlib.suppress(FileExistsError):
        os.mkdir(control, 0o700)
    return fan_out(ctx, KEX, control)
