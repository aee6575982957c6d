"""Ansible ad-hoc raw as in `ansible_adhoc`, with Ansible's default connection reuse
(ControlMaster=auto, ControlPersist, here 600 s) and one lasting ANSIBLE_HOME, measured warm: the
untimed warm-up run leaves a master per host. The masters' CPU and memory are counted.
"""

from __future__ import annotations

from benchmarks.bed import BenchBed
from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation
from benchmarks.peers.ansible_adhoc import adhoc, missing  # noqa: F401

NAME = "Ansible ControlPersist (warm)"
JOBS = BED_JOBS


def background_marker(bench: BenchBed) -> str:
    return str(bench.workdir / "ansible-warm-home")


def invocation(ctx: Context) -> Invocation:
    from pathlib import Path

    return adhoc(ctx, home=Path(background_marker(ctx.bench)))
