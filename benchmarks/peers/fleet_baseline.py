"""fleet from another source tree (`FLEET_BASELINE_TREE`, e.g. an older commit unpacked with
`git archive`), run exactly as `fleet` is: a before/after of fleet itself in one interleaved run,
on the same bed and under the same load.

    mkdir /tmp/base && git archive COMMIT | tar -x -C /tmp/base
    FLEET_BASELINE_TREE=/tmp/base python -m benchmarks.run --jobs mesh-fping \
        --tools "fleet,fleet (baseline),fleet --persist (warm),fleet --persist (warm) baseline"
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.jobs import BED_JOBS
from benchmarks.peers import Context, Invocation, python_env
from benchmarks.peers.fleet import fleet_invocation

NAME = "fleet (baseline)"
JOBS = BED_JOBS
TREE_ENV = "FLEET_BASELINE_TREE"


def tree() -> Path | None:
    value = os.environ.get(TREE_ENV)
    return Path(value).resolve() if value else None


def missing() -> str | None:
    where = tree()
    if where is None:
        return f"no baseline: set {TREE_ENV} to a fleet source tree"
    if not (where / "fleet" / "__main__.py").is_file():
        return f"{TREE_ENV}={where} holds no fleet source tree"
    return None


def baseline_env() -> dict[str, str]:
    """The usual environment with the baseline tree first on the path (before this one)."""
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree()), env.get("PYTHONPATH")]))
    return env


def invocation(ctx: Context) -> Invocation:
    return fleet_invocation(ctx, env=baseline_env(), cwd=tree())
