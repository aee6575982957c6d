"""The soak's tables and verdict lines (plain text, for the terminal and docs/soak.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.soak.plan import Verdict

COLUMNS = [("iteration", "iter"), ("elapsed_s", "elapsed s"), ("faults", "faults"),
           ("fds", "fds"), ("rss_mb", "rss MB"), ("tasks", "tasks"), ("tcp", "tcp"),
           ("threads", "threads"), ("sshd_conns", "sshd conns")]
PERSIST_COLUMNS = [("kept", "kept"), ("channels", "channels")]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render_phase(phase: Any) -> str:
    persist = phase.name == "persist"
    columns = COLUMNS + (PERSIST_COLUMNS if persist else []) + [("expected", "as expected")]
    who = "the persistent-connection daemon" if persist else "this process (the engine)"
    table = [[title for _, title in columns]] + [[_cell(row.get(key)) for key, _ in columns]
                                                 for row in phase.rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = [f"phase {phase.name}: fds, rss, tasks, tcp, threads of {who}; sshd conns: established "
             "SSH connections the bed's sshds hold"]
    lines += ["  ".join(c.rjust(w) if i not in (2,) else c.ljust(w) for i, (c, w) in
                        enumerate(zip(r, widths))).rstrip() for r in table]
    if phase.stopped_early:
        lines.append(f"(stopped early: {phase.stopped_early})")
    return "\n".join(lines)


def verdict_lines(phase: Any, verdict: Verdict) -> list[str]:
    lines = [f"{phase.name} trends over iterations {len(phase.rows) // 2}..{len(phase.rows) - 1} "
             "(least-squares slope per iteration, limit; first -> last):"]
    for t in verdict.trends:
        ceiling = "" if t.limit.ceiling is None else f", highest {t.highest:g} (must stay <= " \
            f"{t.limit.ceiling:g})"
        lines.append(f"  {t.metric:<22} {t.slope:+.3f} (limit {t.limit.slope:g})  {t.first:g} -> "
                     f"{t.last:g}{ceiling}" + ("  LEAK" if t.leak else ""))
    for iteration in verdict.unexpected:
        lines.append(f"  iteration {iteration} not as expected:")
        lines += [f"    {p}" for p in _first(phase.problems[iteration], 10)]
    lines.append(f"{phase.name} verdict: {'LEAK' if verdict.leak else 'no leak'}; "
                 f"{len(verdict.unexpected)} of {len(phase.rows)} iterations not as expected")
    return lines


def _first(items: Sequence[str], n: int) -> list[str]:
    return list(items[:n]) + ([f"... and {len(items) - n} more"] if len(items) > n else [])
