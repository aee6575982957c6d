"""fleet --persist from another source tree (`FLEET_BASELINE_TREE`, see fleet_baseline), with a
background process of its own."""

from __future__ import annotations

from benchmarks.bed import BenchBed
from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation
from benchmarks.peers.fleet import fleet_invocation
from benchmarks.peers.fleet_baseline import baseline_env, missing, tree  # noqa: F401
from benchmarks.peers.fleet_persist import PERSIST_S

NAME = "fleet --persist (warm) baseline"
JOBS = BED_JOBS


def background_marker(bench: BenchBed) -> str:
    # no other tool's marker may be a part of it (processes are found by their command line)
    return str(bench.workdir / "baseline-fleet-keeps")


def invocation(ctx: Context) -> Invocation:
    return fleet_invocation(ctx, ["--persist", str(PERSIST_S)],
                            baseline_env() | {"FLEET_PERSIST_DIR": background_marker(ctx.bench)},
                            cwd=tree())
