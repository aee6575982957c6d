"""The mesh's verdict: one judgement, made once, from everything a run measured and everything it
promised to measure. Every output (the exit code, the table, the JSON, JUnit, Prometheus, the
heatmap, `fleet report` and its baseline gate) renders this value; none judges again from a
subset of fields.

Pure: a Mesh in, a MeshVerdict out. The rules, in one place (docs/failure-semantics.md):

- `not-ok`: something measured failed: a tunnel pair lost pings (lossy, unreachable), or a pair
  whose small pings pass failed the MTU check (`--mtu`). The underlay (`--underlay`) explains a
  failure but does not fail the mesh by itself: the tunnel is what the mesh verifies.
- `could-not-tell`: nothing measured failed, but not everything promised was verified: fewer
  than 2 hosts (no pair to measure), a pair the plan promised (every other host, or `--peers K`)
  missing from the results, a pair whose probe could not run (`error`), a host that could not
  probe, an MTU check that could not tell, a run that was interrupted.
- `ok`: every promised pair was measured and answered every ping (and, with `--mtu`, passed the
  MTU check). Warnings (`unconfigured`: a host's sit1 lacks its address while its pairs answer)
  are said, and do not fail it.

Exit code: 0 for ok, 1 for not-ok and could-not-tell (a run that verified nothing is not green).
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain, repeat
from typing import Any

from fleet.core.results import EXIT_FAILED, EXIT_OK
from fleet.mesh.diagnosis import (
    KINDS,
    WARNING_KINDS,
    Finding,
    diagnose_mesh,
    kinds_text,
    names,
)
from fleet.mesh.model import MTU_FAILED, MTU_UNKNOWN, STATES, Mesh, PairState, peer_plan

PAIRS_SHOWN = 5


class Status(StrEnum):
    OK = "ok"
    NOT_OK = "not-ok"
    COULD_NOT_TELL = "could-not-tell"


# The verdict as the table's headline says it.
WORDS = {Status.OK: "ALL OK", Status.NOT_OK: "NOT OK", Status.COULD_NOT_TELL: "COULD NOT TELL"}
# Findings that say something was not verified (rather than that something failed).
UNKNOWN_KINDS = frozenset({"too-few-hosts", "interrupted", "source-cannot-probe", "not-measured",
                           "pair-error", "mtu-unknown"})
_ANSWERED = (STATES.index(PairState.OK), STATES.index(PairState.LOSSY))
_FAILED_STATES = (STATES.index(PairState.LOSSY), STATES.index(PairState.UNREACHABLE))
_ERROR = STATES.index(PairState.ERROR)


@dataclass(frozen=True)
class MeshVerdict:
    """The verdict (`status`), with the findings it rests on (the diagnosis, coverage included)."""

    status: Status
    findings: tuple[Finding, ...]
    pair_count: int

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def word(self) -> str:
        """ALL OK, NOT OK or COULD NOT TELL."""
        return WORDS[self.status]

    @property
    def text(self) -> str:
        """The verdict in a line: the word, then the kinds found with how many hosts or pairs."""
        if not self.findings:
            return self.word
        kinds = kinds_text(self.findings, self.pair_count)
        return f"{self.word} (warning: {kinds})" if self.ok else f"{self.word}: {kinds}"

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_FAILED

    def as_dict(self) -> dict[str, Any]:
        """The JSON report's `verdict`: status, text and the reasons (the kinds that decided it,
        each with the hosts or pairs it counts)."""
        return {"status": self.status.value, "ok": self.ok, "text": self.text,
                "reasons": [{"kind": f.kind, "hosts": len(f.hosts), "pairs": f.pairs,
                             "warning": f.kind in WARNING_KINDS} for f in self.findings]}


def judge(mesh: Mesh, *, interrupted: bool = False) -> MeshVerdict:
    """The verdict of a mesh: its diagnosis from every measurement it carries (the tunnel, and
    the underlay and MTU check where measured) plus what the run promised and did not verify."""
    findings = diagnose_mesh(mesh, mesh.underlay_state_at if mesh.params.underlay else None,
                             mesh.mtu_ok_at if mesh.params.mtu_size is not None else None)
    findings += coverage_findings(mesh)
    findings += _mtu_unknown_findings(mesh)
    if interrupted:
        findings.append(Finding("interrupted", (), "the run was interrupted: the mesh is partial"))
    order = {kind: i for i, kind in enumerate(KINDS)}
    findings.sort(key=lambda f: order[f.kind])
    return MeshVerdict(_status(mesh, findings), tuple(findings), mesh.pair_count)


def _status(mesh: Mesh, findings: Sequence[Finding]) -> Status:
    pairs = pair_statuses(mesh)
    kinds = {f.kind for f in findings}
    if pairs[Status.NOT_OK] or kinds - UNKNOWN_KINDS - WARNING_KINDS:
        return Status.NOT_OK
    if pairs[Status.COULD_NOT_TELL] or kinds & UNKNOWN_KINDS:
        return Status.COULD_NOT_TELL
    return Status.OK


def expected_pairs(host_count: int, peers: int | None) -> int:
    """How many directed pairs the plan promises: every other host, or K peers each."""
    if host_count < 2:
        return 0
    per_host = host_count - 1 if peers is None else min(peers, host_count - 1)
    return host_count * per_host


def coverage_findings(mesh: Mesh) -> list[Finding]:
    """What the run promised and the mesh does not hold: at least 2 hosts, and every pair of the
    plan (a full mesh, or K peers per host)."""
    n = len(mesh.hosts)
    if n < 2:
        return [Finding("too-few-hosts", tuple(h.name for h in mesh.hosts),
                        f"{n} host{'' if n == 1 else 's'} in the mesh: a mesh needs at least 2, "
                        "so no pair was measured")]
    if mesh.pair_count >= expected_pairs(n, mesh.peers):
        return []
    missing = _missing_pairs(mesh)
    if not missing:
        return []
    hosts = tuple(dict.fromkeys(mesh.hosts[i].name for i in chain.from_iterable(missing)))
    shown = ", ".join(f"{mesh.hosts[s].name} -> {mesh.hosts[d].name}" for s, d in missing[:PAIRS_SHOWN])
    more = f" and {len(missing) - PAIRS_SHOWN} more" if len(missing) > PAIRS_SHOWN else ""
    plan = "a full mesh" if mesh.peers is None else f"--peers {mesh.peers}"
    return [Finding("not-measured", hosts,
                    f"{len(missing)} pair{'' if len(missing) == 1 else 's'} that {plan} promised "
                    f"{'is' if len(missing) == 1 else 'are'} not in the results: {shown}{more} "
                    f"(hosts involved: {names(hosts)})", len(missing))]


def _missing_pairs(mesh: Mesh) -> list[tuple[int, int]]:
    n = len(mesh.hosts)
    c = mesh.columns
    present = set(map(int.__add__, map(n.__mul__, c.src), c.dst))
    missing = []
    for src, peers in enumerate(peer_plan(n, mesh.peers)):
        missing += [(src, dst) for dst in peers if src * n + dst not in present]
    return missing


def _mtu_unknown_findings(mesh: Mesh) -> list[Finding]:
    """Pairs whose small pings were answered but whose MTU check could not tell."""
    if mesh.params.mtu_size is None:
        return []
    c = mesh.columns
    rows = array("I", (r for r in range(len(c)) if c.mtu[r] == MTU_UNKNOWN and c.state[r] in _ANSWERED))
    if not rows:
        return []
    hosts = tuple(dict.fromkeys(mesh.hosts[i].name for r in rows for i in (c.src[r], c.dst[r])))
    shown = ", ".join(f"{mesh.hosts[c.src[r]].name} -> {mesh.hosts[c.dst[r]].name}"
                      for r in rows[:PAIRS_SHOWN])
    more = f" and {len(rows) - PAIRS_SHOWN} more" if len(rows) > PAIRS_SHOWN else ""
    return [Finding("mtu-unknown", hosts, f"{len(rows)} pair(s) answered small pings but their MTU "
                    f"check could not tell: {shown}{more}; see each pair's mtu.error in --json",
                    len(rows))]


# The layer of a pair a finding is about: what was measured on a pair for the finding to apply.
MTU_LAYER_KINDS = frozenset({"mtu-blackhole", "mtu-unknown"})
RUN_KINDS = frozenset({"too-few-hosts", "interrupted", "not-measured"})


def pair_judgement(state: PairState | str, mtu_ok: bool | None, mtu_measured: bool) -> Status:
    """One pair, by the same rules as the mesh: not-ok when its tunnel pings were lost or (its
    small pings answered) its MTU check failed; could-not-tell when its probe could not run or
    its MTU check could not tell; else ok."""
    state = PairState(state)
    if state in (PairState.LOSSY, PairState.UNREACHABLE):
        return Status.NOT_OK
    if state is PairState.ERROR:
        return Status.COULD_NOT_TELL
    if mtu_measured and mtu_ok is False:
        return Status.NOT_OK
    if mtu_measured and mtu_ok is None:
        return Status.COULD_NOT_TELL
    return Status.OK


def pair_statuses(mesh: Mesh) -> dict[Status, int]:
    """How many pairs are ok, not ok and could not tell, by `pair_judgement`'s rules, counted
    from the columns."""
    c = mesh.columns
    failed = sum(map(c.state.count, _FAILED_STATES))
    unknown = c.state.count(_ERROR)
    if mesh.params.mtu_size is not None:
        answered = list(map(operator.contains, repeat(_ANSWERED), c.state))
        failed += sum(map(operator.and_, answered, map(operator.eq, c.mtu, repeat(MTU_FAILED))))
        unknown += sum(map(operator.and_, answered, map(operator.eq, c.mtu, repeat(MTU_UNKNOWN))))
    return {Status.OK: len(c) - failed - unknown, Status.NOT_OK: failed,
            Status.COULD_NOT_TELL: unknown}


def pairs_ok(mesh: Mesh) -> list[bool]:
    """Each row's pair judged ok by `pair_judgement`'s rules, read from the columns: its tunnel
    pings all answered and, when the MTU check was made, it passed."""
    c, ok = mesh.columns, STATES.index(PairState.OK)
    judged = list(map(operator.eq, c.state, repeat(ok)))
    if mesh.params.mtu_size is None:
        return judged
    return list(map(operator.and_, judged, map(operator.not_, map(
        operator.contains, repeat((MTU_FAILED, MTU_UNKNOWN)), c.mtu))))


class PairFindings:
    """The findings about each pair, by what was measured on it: tunnel findings when its tunnel
    pings failed (or could not run), MTU findings when its MTU check failed (or could not tell),
    each only when it names one of the pair's hosts (or names none: the whole mesh). Findings
    about the run (coverage, interruption) and warnings belong to no pair."""

    def __init__(self, findings: Sequence[Any]) -> None:
        self._items = [(f, getattr(f, "kind", "") in MTU_LAYER_KINDS, frozenset(getattr(f, "hosts", ())))
                       for f in findings
                       if getattr(f, "kind", "") not in RUN_KINDS | WARNING_KINDS]

    def about(self, src: str, dst: str, *, tunnel_failed: bool, mtu_failed: bool) -> list[Any]:
        return [f for f, mtu_layer, hosts in self._items
                if (mtu_failed if mtu_layer else tunnel_failed)
                and (not hosts or src in hosts or dst in hosts)]


__all__ = ["MTU_LAYER_KINDS", "MeshVerdict", "PairFindings", "RUN_KINDS", "Status", "UNKNOWN_KINDS",
           "WORDS", "coverage_findings", "expected_pairs", "judge", "pair_judgement", "pair_statuses"]
