"""Gates: the limits a CI job sets on a mesh, alone or against a baseline, and whether it passes.

Pure: a Mesh with its verdict (and a Comparison when there is a baseline) and the Gates in, a
Verdict out. Each gate names what it measured, so a failing job says which limit and which pairs.

Besides the limits asked for, three gates are always judged, so that no limit can make a run
green that failed in a way the limit does not measure, each allowed only deliberately:
`mtu` (a pair's MTU check failed; with a baseline, one that did not fail before:
--allow-mtu-failures), `unmeasured` (a pair the run promised and did not measure, a pair that
could not tell, fewer than 2 hosts; with a baseline, a pair measured before and not now:
--allow-unmeasured) and, with a baseline, `hosts-gone` (a host of the baseline not in the run:
--allow-hosts-gone) and `new-failures` (a pair reachable before and not now, or a new pair that
does not answer: --allow-new-failures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fleet.core.results import EXIT_FAILED, EXIT_OK
from fleet.mesh.compare import Changes, Comparison, PairChange
from fleet.mesh.model import (
    MTU_FAILED,
    MTU_UNKNOWN,
    STATES,
    Mesh,
    PairColumns,
    PairState,
    pair_loss_pct,
    rtts_ms,
)
from fleet.mesh.verdict import RUN_KINDS, MeshVerdict, judge

LISTED = 10  # offending pairs named per gate


@dataclass(frozen=True)
class Gates:
    """The limits; None: that gate is off. New unreachable pairs fail unless allowed."""

    max_loss_pct: float | None = None          # any pair's loss above it fails
    max_rtt_ms: float | None = None            # any pair's average RTT above it fails
    max_rtt_increase_pct: float | None = None  # the mesh's P50 or P99 rising more fails (baseline)
    allow_new_failures: bool = False           # baseline: pairs reachable before, not now, pass
    allow_mtu_failures: bool = False           # MTU checks failing (new ones, with a baseline) pass
    allow_unmeasured: bool = False             # pairs not measured (newly, with a baseline) pass
    allow_hosts_gone: bool = False             # baseline: hosts of the baseline missing now pass

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


def check_gates(gates: Gates, mesh: Mesh, comparison: Comparison | None = None, *,
                verdict: MeshVerdict | None = None) -> Verdict:
    """Every gate that applies: the limits on `mesh`; with a comparison, the increase, new
    failures and hosts gone too (a rise cannot be judged without a baseline: the caller refuses
    that); and the MTU and measurement gates. `verdict`: the mesh's own (its coverage findings;
    judged here when not given)."""
    verdict = judge(mesh) if verdict is None else verdict
    checks: list[GateCheck] = []
    if gates.max_loss_pct is not None:
        checks.append(_loss_gate(mesh, gates.max_loss_pct))
    if gates.max_rtt_ms is not None:
        checks.append(_rtt_gate(mesh, gates.max_rtt_ms))
    if comparison is not None:
        if gates.max_rtt_increase_pct is not None:
            checks.append(_increase_gate(comparison, gates.max_rtt_increase_pct))
        checks.append(_new_failures_gate(comparison, gates.allow_new_failures,
                                         losses=gates.max_loss_pct is None))
        checks.append(_hosts_gone_gate(comparison, gates.allow_hosts_gone))
    checks.append(_mtu_gate(mesh, comparison, gates.allow_mtu_failures))
    checks.append(_unmeasured_gate(mesh, verdict, comparison, gates.allow_unmeasured))
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


def _new_failures_gate(comparison: Comparison, allowed: bool, *, losses: bool) -> GateCheck:
    """Pairs reachable before and not now, new pairs that do not answer, and (unless a loss
    limit judges loss: `losses` False) pairs ok before that lose pings now."""
    lost, new = comparison.newly_unreachable, comparison.new_pairs_failing
    if losses:
        lossy = comparison.newly_lossy
        lost = Changes(lost.total + lossy.total, lost.pairs + lossy.pairs)
    named = tuple(f"{p.src} -> {p.dst} {p.before.value} -> {p.after.value}" for p in lost.pairs[:LISTED])
    named += tuple(f"{p.src} -> {p.dst} (new) {p.after.value}"
                   for p in new.pairs[:max(0, LISTED - len(named))])
    if not lost.total and not new.total:
        return GateCheck("new-failures", None, True, "no pair reachable in the baseline is "
                         "unreachable now, and every new pair answers")
    said = []
    if lost.total:
        said.append(f"{lost.total} pair(s) reachable in the baseline are unreachable or could not "
                    "be measured now" + (", or lose pings (no --max-loss-pct)" if losses else ""))
    if new.total:
        said.append(f"{new.total} pair(s) not in the baseline do not answer")
    return GateCheck("new-failures", None, allowed, "; ".join(said) + _allowed(allowed), named)


def _hosts_gone_gate(comparison: Comparison, allowed: bool) -> GateCheck:
    gone = comparison.hosts_removed
    if not gone:
        return GateCheck("hosts-gone", None, True, "every host of the baseline is in the run")
    return GateCheck("hosts-gone", None, allowed,
                     f"{len(gone)} host(s) of the baseline are not in the run" + _allowed(allowed),
                     gone[:LISTED])


def _mtu_gate(mesh: Mesh, comparison: Comparison | None, allowed: bool) -> GateCheck:
    if comparison is not None:
        failing = comparison.new_mtu_failures
        what = "pair(s) fail the MTU check that did not in the baseline"
    else:
        failing = _rows_where(mesh, lambda c, r: c.mtu[r] == MTU_FAILED
                              and STATES[c.state[r]] in (PairState.OK, PairState.LOSSY))
        what = "pair(s) fail the MTU check (small pings pass, full-size ones do not)"
    if mesh.params.mtu_size is None and comparison is None:
        return GateCheck("mtu", None, True, "not measured (no --mtu)")
    if not failing.total:
        return GateCheck("mtu", None, True, "no pair fails the MTU check"
                         + (" that passed in the baseline" if comparison is not None else ""))
    return GateCheck("mtu", None, allowed, f"{failing.total} {what}" + _allowed(allowed),
                     _named(failing))


def _unmeasured_gate(mesh: Mesh, verdict: MeshVerdict, comparison: Comparison | None,
                     allowed: bool) -> GateCheck:
    """What the run did not verify: its own coverage findings (a promised pair missing, fewer
    than 2 hosts); without a baseline also every pair that could not tell; with one, the pairs
    measured in the baseline and missing now (those that could not tell now are new failures)."""
    said: list[str] = []
    named: tuple[str, ...] = ()
    for finding in verdict.findings:
        if finding.kind in RUN_KINDS and finding.kind != "interrupted":
            said.append(f"{finding.kind}: {finding.text}")
    if comparison is None:
        unknown = _rows_where(mesh, lambda c, r: STATES[c.state[r]] is PairState.ERROR or (
            mesh.params.mtu_size is not None and c.mtu[r] == MTU_UNKNOWN))
        if unknown.total:
            said.append(f"{unknown.total} pair(s) could not tell")
            named = _named(unknown)
    elif comparison.newly_unmeasured.total:
        said.append(f"{comparison.newly_unmeasured.total} pair(s) measured in the baseline are not "
                    "in the run")
        named = _named(comparison.newly_unmeasured)
    if not said:
        return GateCheck("unmeasured", None, True, "every pair the run promised was measured")
    return GateCheck("unmeasured", None, allowed, "; ".join(said) + _allowed(allowed), named)


def _rows_where(mesh: Mesh, test: Callable[[PairColumns, int], bool]) -> Changes:
    """The pairs of `mesh` for which test(columns, row) holds, as Changes naming the first few."""
    c = mesh.columns
    rows = [r for r in range(len(c)) if test(c, r)]
    listed = []
    for r in rows[:LISTED]:
        pair = mesh.row(r)
        listed.append(PairChange(pair.src, pair.dst, pair.state, pair.state, pair.loss_pct,
                                 pair.loss_pct, pair.rtt_avg_ms, pair.rtt_avg_ms))
    return Changes(len(rows), tuple(listed))


def _named(changes: Changes) -> tuple[str, ...]:
    return tuple(f"{p.src} -> {p.dst}" for p in changes.pairs[:LISTED])


def _allowed(allowed: bool) -> str:
    return " (allowed)" if allowed else ""


def _pair_name(mesh: Mesh, row: int) -> str:
    return f"{mesh.hosts[mesh.columns.src[row]].name} -> {mesh.hosts[mesh.columns.dst[row]].name}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"
