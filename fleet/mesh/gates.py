"""Gates: the limits a CI job sets on a mesh, alone or against a baseline, and whether it passes.

Pure: a Mesh (and a Comparison when there is a baseline) and the Gates in, a Verdict out. Each
gate names what it measured, so a failing job says which limit and which pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet.core.results import EXIT_FAILED, EXIT_OK
from fleet.mesh.compare import Comparison
from fleet.mesh.model import STATES, Mesh, pair_loss_pct, rtts_ms

LISTED = 10  # offending pairs named per gate


@dataclass(frozen=True)
class Gates:
    """The limits; None: that gate is off. New unreachable pairs fail unless allowed."""

    max_loss_pct: float | None = None          # any pair's loss above it fails
    max_rtt_ms: float | None = None            # any pair's average RTT above it fails
    max_rtt_increase_pct: float | None = None  # the mesh's P50 or P99 rising more fails (baseline)
    allow_new_failures: bool = False           # baseline: pairs reachable before, not now, pass

    @property
    def any_limit(self) -> bool:
        return any(v is not None for v in (self.max_loss_pct, self.max_rtt_ms,
                                           self.max_rtt_increase_pct))


@dataclass(frozen=True)
class GateCheck:
    """One gate's outcome: its name (as the option), its limit, and what it found."""

    name: str
    limit: float | None
    passed: bool
    detail: str
    offenders: tuple[str, ...] = ()  # e.g. "h1 -> h2 33.3%", the worst first


@dataclass(frozen=True)
class Verdict:
    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_FAILED


def check_gates(gates: Gates, mesh: Mesh, comparison: Comparison | None = None) -> Verdict:
    """Every gate that applies: the limits on `mesh`; with a comparison, the increase and new
    failures too (a rise cannot be judged without a baseline: the caller refuses that)."""
    checks: list[GateCheck] = []
    if gates.max_loss_pct is not None:
        checks.append(_loss_gate(mesh, gates.max_loss_pct))
    if gates.max_rtt_ms is not None:
        checks.append(_rtt_gate(mesh, gates.max_rtt_ms))
    if comparison is not None:
        if gates.max_rtt_increase_pct is not None:
            checks.append(_increase_gate(comparison, gates.max_rtt_increase_pct))
        checks.append(_new_failures_gate(comparison, gates.allow_new_failures))
    return Verdict(tuple(checks))


def _loss_gate(mesh: Mesh, limit: float) -> GateCheck:
    c = mesh.columns
    above: list[tuple[float, str]] = []
    for row in range(len(c)):
        loss = pair_loss_pct(STATES[c.state[row]], c.sent[row], c.received[row])
        if loss is not None and loss > limit:
            above.append((loss, _pair_name(mesh, row)))
    above.sort(key=lambda item: -item[0])
    return GateCheck("max-loss-pct", limit, not above,
                     f"{len(above)} pair(s) lose more than {limit:g}%" if above
                     else f"no pair loses more than {limit:g}%",
                     tuple(f"{name} {loss:g}%" for loss, name in above[:LISTED]))


def _rtt_gate(mesh: Mesh, limit: float) -> GateCheck:
    averages = rtts_ms(mesh.columns.rtt[1::4])
    above = sorted(((v, row) for row, v in enumerate(averages) if v is not None and v > limit),
                   key=lambda item: -item[0])
    return GateCheck("max-rtt-ms", limit, not above,
                     f"{len(above)} pair(s) average more than {limit:g} ms" if above
                     else f"no pair averages more than {limit:g} ms",
                     tuple(f"{_pair_name(mesh, row)} {v:.3f} ms" for v, row in above[:LISTED]))


def _increase_gate(comparison: Comparison, limit: float) -> GateCheck:
    rises = {"P50": comparison.p50_increase_pct, "P99": comparison.p99_increase_pct}
    over = [name for name, rise in rises.items() if rise is not None and rise > limit]
    shown = ", ".join(f"{name} {_signed(rise)}" for name, rise in rises.items())
    worst = tuple(f"{p.src} -> {p.dst} {p.rtt_before_ms:.3f} -> {p.rtt_after_ms:.3f} ms "
                  f"({_signed(p.rtt_increase_pct)})" for p in comparison.rtt_increases.pairs[:LISTED])
    return GateCheck("max-rtt-increase-pct", limit, not over,
                     f"mesh RTT {shown}" + (f": {' and '.join(over)} above {limit:g}%" if over
                                            else f", within {limit:g}%"), worst)


def _new_failures_gate(comparison: Comparison, allowed: bool) -> GateCheck:
    lost = comparison.newly_unreachable
    named = tuple(f"{p.src} -> {p.dst} {p.before.value} -> {p.after.value}" for p in lost.pairs[:LISTED])
    if not lost.total:
        return GateCheck("new-failures", None, True, "no pair reachable in the baseline is "
                         "unreachable now")
    return GateCheck("new-failures", None, allowed,
                     f"{lost.total} pair(s) reachable in the baseline are unreachable or could not "
                     "be measured now" + (" (allowed)" if allowed else ""), named)


def _pair_name(mesh: Mesh, row: int) -> str:
    return f"{mesh.hosts[mesh.columns.src[row]].name} -> {mesh.hosts[mesh.columns.dst[row]].name}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"
