"""The tools compared, one module each. A peer module defines

    NAME                       its column in the table
    JOBS                       the bed jobs it can run
    missing() -> str | None    why it cannot run on this machine (a package is missing), or None
    invocation(ctx) -> Invocation
                               the process to start for one job, and how to read what it did

Python peers (floor, asyncssh, nornir, parallel-ssh) are driver scripts run as their own process
(`python -m benchmarks.peers.NAME SPEC.json`) so that every tool is measured the same way: a
process tree, from start to exit. A driver reads the spec (hosts, each host's command, key,
known_hosts, concurrency) and writes {host: {exit, output, error}} to spec["results"].
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.bed import BenchBed
from benchmarks.jobs import SourceCommand, ok_pairs
from benchmarks.measure import Measurement

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Context:
    bench: BenchBed
    job: str
    sources: list[SourceCommand]
    rundir: Path


@dataclass
class Outcome:
    ok: int
    note: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass
class Invocation:
    argv: list[str]
    collect: Callable[[Measurement], Outcome]
    env: dict[str, str] | None = None
    cwd: Path | None = None  # where it starts (default: this repository)


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONWARNINGS", None)
    # An installed package runs from its cached bytecode; without the cache every run of a tool
    # run from this tree compiles each module it imports again (~0.1 s of CPU for fleet). The
    # untimed warm-up run writes the cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def driver_invocation(ctx: Context, module: str, **extra: Any) -> Invocation:
    """Run `python -m benchmarks.peers.<module> SPEC` (inside the hub namespace in hub mode)."""
    targets = {t.name: t for t in ctx.bench.targets}
    results = ctx.rundir / "results.json"
    spec = {"hosts": [{"name": s.host, "address": targets[s.host].address,
                       "port": targets[s.host].port, "netns": targets[s.host].netns,
                       "command": s.command} for s in ctx.sources],
            "user": ctx.bench.user, "key": str(ctx.bench.key),
            "known_hosts": str(ctx.bench.known_hosts), "results": str(results), **extra}
    spec_path = ctx.rundir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    prefix = [] if extra.get("local") else ctx.bench.prefix
    argv = [*prefix, sys.executable, "-m", f"benchmarks.peers.{module}", str(spec_path)]
    return Invocation(argv, lambda m: collect_results(ctx, results), python_env())


def collect_results(ctx: Context, results: Path) -> Outcome:
    try:
        data = json.loads(results.read_text())
    except (OSError, ValueError) as exc:
        return Outcome(0, errors=[f"no results: {exc}"])
    return count(ctx, {name: (r.get("output"), r.get("exit"), r.get("error"))
                       for name, r in data.items()})


def count(ctx: Context, per_host: dict[str, tuple[str | None, int | None, str | None]]) -> Outcome:
    """Count OK pairs (hosts for `command`) from each host's output and exit status."""
    total, errors = 0, []
    for source in ctx.sources:
        output, status, error = per_host.get(source.host, (None, None, "no result"))
        total += ok_pairs(ctx.job, source, output, status)
        if error:
            errors.append(f"{source.host}: {error}")
    return Outcome(total, errors=errors)


def load_spec() -> dict[str, Any]:
    return json.loads(Path(sys.argv[1]).read_text())


def write_results(spec: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    Path(spec["results"]).write_text(json.dumps(results))


def peer_modules() -> dict[str, Any]:
    """Every peer, in the table's order."""
    from benchmarks.peers import (
        ansible_adhoc,
        ansible_persist,
        asyncssh_baseline,
        fleet,
        fleet_baseline,
        fleet_persist,
        fleet_persist_baseline,
        floor,
        nornir_paramiko,
        openssh,
        openssh_default_kex,
        openssh_persist,
        parallel_ssh,
    )

    modules = [fleet, floor, asyncssh_baseline, nornir_paramiko, parallel_ssh, openssh,
               openssh_default_kex, ansible_adhoc, fleet_persist, openssh_persist, ansible_persist]
    if fleet_baseline.tree() is not None:  # fleet from another tree, when one is named
        modules += [fleet_baseline, fleet_persist_baseline]
    return {m.NAME: m for m in modules}
