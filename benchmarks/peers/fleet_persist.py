"""fleet with kept connections: `fleet run ... --persist 600`, measured warm.

The untimed warm-up run starts fleet's background process and logs in to every host; every timed
run after it opens channels on those connections (OpenSSH users know this as ControlPersist). The
background process's CPU and memory during a run are counted with fleet's (benchmarks/measure.py).
Its socket directory is private to the benchmark; it is stopped (SIGTERM: it closes every
connection) before the bed is torn down.
"""

from __future__ import annotations

from benchmarks.bed import BenchBed
from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation, python_env
from benchmarks.peers.fleet import fleet_invocation, missing  # noqa: F401

NAME = "fleet --persist (warm)"
JOBS = BED_JOBS
PERSIST_S = 600


def _env(bench: BenchBed) -> dict[str, str]:
    return python_env() | {"FLEET_PERSIST_DIR": background_marker(bench)}


def background_marker(bench: BenchBed) -> str:
    return str(bench.workdir / "fleet-persist")


def invocation(ctx: Context) -> Invocation:
    return fleet_invocation(ctx, ["--persist", str(PERSIST_S)], _env(ctx.bench))
