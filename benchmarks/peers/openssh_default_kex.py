"""OpenSSH fan-out as in `openssh`, with OpenSSH's default key exchange (no KexAlgorithms)."""

from __future__ import annotations

from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation
from benchmarks.peers.openssh import fan_out, missing  # noqa: F401

NAME = "OpenSSH default kex"
JOBS = BED_JOBS


def invocation(ctx: Context) -> Invocation:
    return fan_out(ctx, None)
