"""fleet itself, through its command line, exactly as a user runs it.

    mesh-fping: fleet run mesh -i INV --count 3 --interval 0.2 --timeout 1 --json F
    mesh-ping:  the same with --parallel N-1 (one ping process per peer, all at once: the same
                probe design as the peers' 99 background pings)
    command:    fleet run noop --tasks-dir benchmarks/tasks -i INV --json F   (`true` per host)

fleet chooses its own probe (`probe.method` in its JSON: `ping`, or `fping` where the hosts have
it); when fleet grows a `--probe` option, mesh-fping passes `--probe fping` and mesh-ping
`--probe ping`. The table names the method fleet used. Everything else is fleet's defaults
(20 handshakes in flight, curve25519 preferred, host keys checked).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.jobs import BED_JOBS, COUNT, INTERVAL_S, TIMEOUT_S
from benchmarks.peers import REPO, Context, Invocation, Outcome, python_env

NAME = "fleet"
JOBS = BED_JOBS


def missing() -> str | None:
    try:
        import fleet  # noqa: F401
    except ImportError:
        return "fleet is not installed (scripts/install)"
    return None


@functools.cache
def mesh_options() -> frozenset[str]:
    """The options `fleet run mesh` has (to use --probe once fleet offers it)."""
    done = subprocess.run([sys.executable, "-m", "fleet", "run", "mesh", "--help"],
                          capture_output=True, text=True, env=python_env(), cwd=REPO)
    return frozenset(word.strip(",[]") for word in done.stdout.split() if word.startswith("--"))


def invocation(ctx: Context) -> Invocation:
    return fleet_invocation(ctx)


def fleet_invocation(ctx: Context, extra: Sequence[str] = (),
                     env: dict[str, str] | None = None, cwd: Path | None = None) -> Invocation:
    report = ctx.rundir / "fleet.json"
    base = [*ctx.bench.prefix, sys.executable, "-m", "fleet", "run"]
    common = ["-i", str(ctx.bench.inventory_dir), "--json", str(report), "--no-progress", *extra]
    if ctx.job == "command":
        argv = [*base, "noop", "--tasks-dir", str(REPO / "benchmarks" / "tasks"), *common]
    else:
        argv = [*base, "mesh", *common, "--count", str(COUNT), "--interval", f"{INTERVAL_S:g}",
                "--timeout", f"{TIMEOUT_S:g}"]
        if ctx.job == "mesh-ping":
            argv += ["--parallel", str(max(1, len(ctx.sources) - 1))]
        if "--probe" in mesh_options():
            argv += ["--probe", "fping" if ctx.job == "mesh-fping" else "ping"]

    def collect(_: object) -> Outcome:
        try:
            document = json.loads(report.read_text())
        except (OSError, ValueError) as exc:
            return Outcome(0, errors=[f"no JSON report: {exc}"])
        summary = document.get("summary", {})
        if ctx.job == "command":
            errors = [f"{h['name']}: {h['error']}" for h in document.get("hosts", []) if h.get("error")]
            return Outcome(int(summary.get("ok", 0)) + int(summary.get("changed", 0)), errors=errors)
        probe = document.get("probe", {})
        note = f"probe {probe.get('method', '?')}"
        if "parallel" in probe and ctx.job == "mesh-ping":
            note += f", parallel {probe['parallel']}"
        # `unconfigured` hosts (no sit1 on this bed: the stand-in addresses) are measured as usual.
        errors = [f"{h['name']}: {h['error']}" for h in document.get("hosts", [])
                  if h.get("state") == "error"]
        return Outcome(int(summary.get("ok", 0)), note=note, errors=errors)

    # `python -m` puts the working directory first on the path: it picks the tree that runs
    return Invocation(argv, collect, env or python_env(), cwd)
