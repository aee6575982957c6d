"""What `fleet report` shows about saved runs: the mesh again, or its comparison with a baseline,
and the gates; as text, as JSON, and as an exit code (the Report protocol of fleet.core.results).

Without gates or a baseline the exit code is the saved run's own verdict (0, 1, or 130 for a run
that was interrupted), as `fleet run mesh` returned it, judged again by today's rules (a file
with a missing pair or no host is not ok); with either, the gates decide: 0 all pass, 1 not.
"""

from __future__ import annotations

from typing import Any

from fleet.core.output import columns
from fleet.core.terminal import printable
from fleet.mesh.compare import Changes, Comparison, PairChange, RttSpread
from fleet.mesh.gates import Verdict
from fleet.mesh.report import MeshJson, render_mesh
from fleet.mesh.saved import SavedMesh


class SavedMeshReport:
    """A saved mesh shown again, with the gates judged on it (if any), or compared with a
    baseline (`baseline` and `comparison` both given)."""

    def __init__(self, current: SavedMesh, verdict: Verdict, *, baseline: SavedMesh | None = None,
                 comparison: Comparison | None = None) -> None:
        if (baseline is None) != (comparison is None):
            raise ValueError("a baseline and its comparison go together")
        self.current, self.verdict = current, verdict
        self.baseline, self.comparison = baseline, comparison

    @property
    def exit_code(self) -> int:
        if not self.verdict.checks:
            return self.current.report().exit_code
        return self.verdict.exit_code

    def render(self) -> str:
        if self.baseline is None or self.comparison is None:
            text = render_mesh(self.current.mesh)
            if self.current.interrupted:
                text += "\n\nthis run was interrupted: the mesh is partial"
        else:
            text = render_comparison(self.comparison, self.baseline, self.current)
        if self.verdict.checks:
            text += "\n\n" + "\n".join(render_verdict(self.verdict))
        return printable(text)

    def to_json(self) -> Any:
        """Alone: the mesh report as `fleet run mesh --json` wrote it (fields this version does
        not read are not carried over), with the gates; compared: the comparison."""
        gates = verdict_json(self.verdict) if self.verdict.checks else {}
        if self.baseline is None or self.comparison is None:
            saved = self.current
            elapsed = {} if saved.elapsed is None else {"elapsed_s": saved.elapsed}
            return MeshJson(saved.mesh, None, interrupted=saved.interrupted, **elapsed, **gates)
        return {**comparison_json(self.comparison, self.baseline, self.current), **gates}


def render_comparison(comparison: Comparison, baseline: SavedMesh, current: SavedMesh) -> str:
    c = comparison
    lines = [f"baseline {_run(baseline)}", f"current  {_run(current)}",
             f"pairs: {c.pairs_compared} compared, {c.pairs_added} only in the current run, "
             f"{c.pairs_removed} only in the baseline"]
    if c.hosts_added or c.hosts_removed:
        lines.append(f"hosts: {len(c.hosts_added)} new ({_names(c.hosts_added)}), "
                     f"{len(c.hosts_removed)} gone ({_names(c.hosts_removed)})")
    lines += _change_lines("new failures (ok before, not ok now)", c.new_failures, _state_change)
    if c.new_pairs_failing.total:
        lines += _change_lines("new pairs not answering (not in the baseline)", c.new_pairs_failing,
                               _state_change)
    if c.new_mtu_failures.total:
        lines += _change_lines("new MTU check failures", c.new_mtu_failures, _pair_only)
    if c.newly_unmeasured.total:
        lines += _change_lines("measured in the baseline, not in this run", c.newly_unmeasured,
                               _pair_only)
    lines += _change_lines("recovered (not ok before, ok now)", c.recovered, _state_change)
    lines += ["", f"rtt ms, every reply of the mesh: "
              f"P50 {_ms(c.rtt_before.p50_ms)} -> {_ms(c.rtt_after.p50_ms)} "
              f"({_pct(c.p50_increase_pct)}), "
              f"P99 {_ms(c.rtt_before.p99_ms)} -> {_ms(c.rtt_after.p99_ms)} "
              f"({_pct(c.p99_increase_pct)})"]
    lines += _change_lines("largest rtt increases", c.rtt_increases, _rtt_change, blank=False)
    lines += ["", f"loss over every ping: {_loss(c.loss_before_pct)} -> {_loss(c.loss_after_pct)}"]
    lines += _change_lines("pairs losing more", c.loss_increases, _loss_change, blank=False)
    return "\n".join(lines)


def render_verdict(verdict: Verdict) -> list[str]:
    lines = ["gates:"]
    for check in verdict.checks:
        limit = "" if check.limit is None else f" {check.limit:g}"
        lines.append(f"  {'PASS' if check.passed else 'FAIL'} {check.name}{limit}: {check.detail}")
        lines += [f"       {offender}" for offender in check.offenders if not check.passed]
    failed = sum(not check.passed for check in verdict.checks)
    lines.append(f"verdict: {'PASS' if verdict.passed else 'FAIL'} "
                 f"({failed} of {len(verdict.checks)} gate(s) failed)")
    return lines


def comparison_json(comparison: Comparison, baseline: SavedMesh, current: SavedMesh) -> dict[str, Any]:
    c = comparison
    return {
        "comparison": "mesh",
        "baseline": _run_json(baseline),
        "current": _run_json(current),
        "hosts": {"added": list(c.hosts_added), "removed": list(c.hosts_removed)},
        "pairs": {"compared": c.pairs_compared, "added": c.pairs_added, "removed": c.pairs_removed},
        "new_failures": _changes_json(c.new_failures),
        "recovered": _changes_json(c.recovered),
        "newly_unreachable": _changes_json(c.newly_unreachable),
        "new_pairs_failing": _changes_json(c.new_pairs_failing),
        "new_mtu_failures": _changes_json(c.new_mtu_failures),
        "newly_unmeasured": _changes_json(c.newly_unmeasured),
        "rtt_ms": {"baseline": _spread_json(c.rtt_before), "current": _spread_json(c.rtt_after),
                   "p50_increase_pct": c.p50_increase_pct, "p99_increase_pct": c.p99_increase_pct,
                   "largest_increases": _changes_json(c.rtt_increases)},
        "loss_pct": {"baseline": c.loss_before_pct, "current": c.loss_after_pct,
                     "largest_increases": _changes_json(c.loss_increases)},
    }


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {"gates": [{"name": check.name, "limit": check.limit, "passed": check.passed,
                       "detail": check.detail, "offenders": list(check.offenders)}
                      for check in verdict.checks],
            "passed": verdict.passed}


def _ok(saved: SavedMesh) -> bool:
    """The saved run's own verdict, from its diagnosis (an MTU black hole fails a mesh whose
    pairs all answered), as the run itself said it."""
    return saved.report().verdict.ok


def _run(saved: SavedMesh) -> str:
    mesh = saved.mesh
    verdict = saved.report().verdict.word
    tail = ", INTERRUPTED" if saved.interrupted else ""
    return f"{saved.source}: {verdict}, {len(mesh.hosts)} hosts, {mesh.pair_count} pairs{tail}"


def _run_json(saved: SavedMesh) -> dict[str, Any]:
    return {"file": saved.source, "summary": saved.mesh.summary(), "all_ok": _ok(saved),
            "verdict": saved.report().verdict.as_dict(), "interrupted": saved.interrupted}


def _change_lines(title: str, changes: Changes, line: Any, blank: bool = True) -> list[str]:
    lines = [""] if blank else []
    if not changes.total:
        return lines + [f"{title}: none"]
    lines.append(f"{title}: {changes.total}")
    lines += columns([line(p) for p in changes.pairs], indent=2)
    if changes.total > len(changes.pairs):
        lines.append(f"  ... and {changes.total - len(changes.pairs)} more")
    return lines


def _state_change(p: PairChange) -> list[str]:
    return [f"{p.src} -> {p.dst}", f"{p.before.value} -> {p.after.value}",
            f"loss {_loss(p.loss_before_pct)} -> {_loss(p.loss_after_pct)}"]


def _pair_only(p: PairChange) -> list[str]:
    return [f"{p.src} -> {p.dst}", f"{p.before.value} -> {p.after.value}"]


def _rtt_change(p: PairChange) -> list[str]:
    return [f"{p.src} -> {p.dst}", f"{_ms(p.rtt_before_ms)} -> {_ms(p.rtt_after_ms)} ms",
            f"+{_ms(p.rtt_increase_ms)} ms", f"({_pct(p.rtt_increase_pct)})"]


def _loss_change(p: PairChange) -> list[str]:
    return [f"{p.src} -> {p.dst}", f"{_loss(p.loss_before_pct)} -> {_loss(p.loss_after_pct)}",
            f"{p.before.value} -> {p.after.value}"]


def _changes_json(changes: Changes) -> dict[str, Any]:
    return {"total": changes.total, "listed": [
        {"src": p.src, "dst": p.dst, "state_before": p.before.value, "state_after": p.after.value,
         "loss_pct_before": p.loss_before_pct, "loss_pct_after": p.loss_after_pct,
         "rtt_avg_ms_before": p.rtt_before_ms, "rtt_avg_ms_after": p.rtt_after_ms,
         "rtt_increase_ms": p.rtt_increase_ms, "rtt_increase_pct": p.rtt_increase_pct}
        for p in changes.pairs]}


def _spread_json(spread: RttSpread) -> dict[str, Any]:
    return {"pairs": spread.pairs, "p50": spread.p50_ms, "p90": spread.p90_ms, "p99": spread.p99_ms}


def _names(names: tuple[str, ...], shown: int = 10) -> str:
    if not names:
        return "none"
    more = f", ... {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}%"
