"""Two meshes compared: what got worse and what got better between a baseline run and a later one.

Pure: two Mesh values in, a Comparison out. Pairs are matched by their hosts' names (a host may
have come or gone, or moved in the inventory); only pairs measured in both runs are compared.
The baseline's own rows are found by bisection (Mesh.find), so no per-pair index of millions of
entries is built. Lists of pairs are cut to `listed` entries, their totals kept, so a mesh-wide
outage gives a readable comparison, not millions of lines.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from fleet.mesh.model import MTU_FAILED, MTU_UNKNOWN, STATES, Mesh, PairState, pair_loss_pct

LISTED = 20  # pairs listed per kind of change
REACHABLE = frozenset({PairState.OK, PairState.LOSSY})


@dataclass(frozen=True)
class PairChange:
    """One pair measured in both runs: its state, loss and average RTT before and after."""

    src: str
    dst: str
    before: PairState
    after: PairState
    loss_before_pct: float | None
    loss_after_pct: float | None
    rtt_before_ms: float | None
    rtt_after_ms: float | None

    @property
    def rtt_increase_ms(self) -> float | None:
        if self.rtt_before_ms is None or self.rtt_after_ms is None:
            return None
        return round(self.rtt_after_ms - self.rtt_before_ms, 3)

    @property
    def rtt_increase_pct(self) -> float | None:
        return increase_pct(self.rtt_before_ms, self.rtt_after_ms)

    @property
    def loss_increase_pct(self) -> float | None:
        """Percentage points more loss (None when either run could not tell)."""
        if self.loss_before_pct is None or self.loss_after_pct is None:
            return None
        return round(self.loss_after_pct - self.loss_before_pct, 1)


@dataclass(frozen=True)
class Changes:
    """Pairs of one kind of change: how many, and the first (or worst) `listed` of them."""

    total: int
    pairs: tuple[PairChange, ...]


@dataclass(frozen=True)
class RttSpread:
    """A mesh's RTT: the percentiles over every reply (Mesh.rtt_percentiles, the figures of its
    table and JSON report; None with too few replies), and how many pairs had replies."""

    pairs: int
    p50_ms: float | None
    p99_ms: float | None
    p90_ms: float | None = None


@dataclass(frozen=True)
class Comparison:
    """What changed from `baseline` to `current`."""

    hosts_added: tuple[str, ...]
    hosts_removed: tuple[str, ...]
    pairs_compared: int            # measured in both runs
    pairs_added: int               # measured only now (a new host, or another sample)
    pairs_removed: int             # measured only in the baseline
    new_failures: Changes          # ok before, not ok now (lossy, unreachable or error)
    recovered: Changes             # not ok before, ok now
    newly_unreachable: Changes     # reachable (ok or lossy) before; unreachable, or error, now
    newly_lossy: Changes           # ok before, lossy now
    new_pairs_failing: Changes     # not in the baseline (a new host, say); unreachable or error now
    new_mtu_failures: Changes      # MTU check failed now (small pings answered), not before
    newly_unmeasured: Changes      # measured in the baseline, between hosts still here, not now
                                   # (or its MTU check passed before and could not tell now)
    rtt_before: RttSpread          # over every reply of each whole mesh, not only compared pairs
    rtt_after: RttSpread
    rtt_increases: Changes         # compared pairs whose average RTT rose, worst (in ms) first
    loss_increases: Changes        # compared pairs with more loss now, worst first
    loss_before_pct: float | None  # over every ping of each whole mesh
    loss_after_pct: float | None

    @property
    def p50_increase_pct(self) -> float | None:
        return increase_pct(self.rtt_before.p50_ms, self.rtt_after.p50_ms)

    @property
    def p99_increase_pct(self) -> float | None:
        return increase_pct(self.rtt_before.p99_ms, self.rtt_after.p99_ms)


def increase_pct(before: float | None, after: float | None) -> float | None:
    """How much `after` is above `before`, in percent of `before` (negative: below); None when
    either is missing or `before` is 0."""
    if before is None or after is None or before <= 0:
        return None
    return round(100 * (after - before) / before, 1)


def rtt_spread(mesh: Mesh) -> RttSpread:
    found = mesh.rtt_percentiles()
    answered = sum(1 for v in mesh.columns.rtt[1::4] if v == v)  # NaN != NaN: no reply
    return RttSpread(answered, found["p50"], found["p99"], found["p90"])


def overall_loss_pct(mesh: Mesh) -> float | None:
    """Loss over every ping the mesh sent (pairs that could not tell left out)."""
    c, error = mesh.columns, STATES.index(PairState.ERROR)
    sent = received = 0
    for row in range(len(c)):
        if c.state[row] != error:
            sent += c.sent[row]
            received += c.received[row]
    return pair_loss_pct(PairState.OK, sent, received)


def compare(baseline: Mesh, current: Mesh, *, listed: int = LISTED) -> Comparison:
    """Match the pairs of the two meshes by host names and say what changed."""
    before_names = [h.name for h in baseline.hosts]
    after_names = [h.name for h in current.hosts]
    in_baseline = {name: i for i, name in enumerate(before_names)}
    now = set(after_names)
    to_baseline = [in_baseline.get(name) for name in after_names]
    new_failures, recovered, unreachable = _Collector(listed), _Collector(listed), _Collector(listed)
    new_failing, new_mtu, unmeasured = _Collector(listed), _Collector(listed), _Collector(listed)
    lossy = _Collector(listed)
    rtt_rises, loss_rises = _Worst(listed), _Worst(listed)
    compared = 0
    for row in range(current.pair_count):
        src, dst = to_baseline[current.columns.src[row]], to_baseline[current.columns.dst[row]]
        old = None if src is None or dst is None else baseline.find(src, dst)
        mtu_failed_now = _mtu_failed(current, row)
        if old is None:
            if STATES[current.columns.state[row]] not in REACHABLE:
                new_failing.add(_new_pair(current, row))
            if mtu_failed_now:
                new_mtu.add(_new_pair(current, row))
            continue
        compared += 1
        change = _Row(baseline, old, current, row)
        if mtu_failed_now and not _mtu_failed(baseline, old):
            new_mtu.add(change.made())
        elif _mtu_unknown(current, row) and not _mtu_unknown(baseline, old) \
                and not _mtu_failed(baseline, old):
            unmeasured.add(change.made())
        if change.before is PairState.OK and change.after is not PairState.OK:
            new_failures.add(change.made())
            if change.after is PairState.LOSSY:
                lossy.add(change.made())
        elif change.before is not PairState.OK and change.after is PairState.OK:
            recovered.add(change.made())
        if change.before in REACHABLE and change.after not in REACHABLE:
            unreachable.add(change.made())
        if change.rtt_before == change.rtt_before and change.rtt_after > change.rtt_before:
            rtt_rises.add(change.rtt_after - change.rtt_before, row, change)  # NaN compares False
        loss_before, loss_after = change.loss()
        if loss_before is not None and loss_after is not None and loss_after > loss_before:
            loss_rises.add(loss_after - loss_before, row, change)
    in_current = {name: i for i, name in enumerate(after_names)}
    to_current = [in_current.get(name) for name in before_names]
    error = STATES.index(PairState.ERROR)
    for old in range(baseline.pair_count):
        src, dst = to_current[baseline.columns.src[old]], to_current[baseline.columns.dst[old]]
        if src is None or dst is None or baseline.columns.state[old] == error:
            continue  # a host gone is said as such; a pair that could not tell before, as before
        if current.find(src, dst) is None:
            unmeasured.add(_gone_pair(baseline, old))
    return Comparison(
        hosts_added=tuple(n for n in after_names if n not in in_baseline),
        hosts_removed=tuple(n for n in before_names if n not in now),
        pairs_compared=compared, pairs_added=current.pair_count - compared,
        pairs_removed=baseline.pair_count - compared,
        new_failures=new_failures.changes(), recovered=recovered.changes(),
        newly_unreachable=unreachable.changes(), newly_lossy=lossy.changes(),
        new_pairs_failing=new_failing.changes(),
        new_mtu_failures=new_mtu.changes(), newly_unmeasured=unmeasured.changes(),
        rtt_before=rtt_spread(baseline), rtt_after=rtt_spread(current),
        rtt_increases=rtt_rises.changes(), loss_increases=loss_rises.changes(),
        loss_before_pct=overall_loss_pct(baseline), loss_after_pct=overall_loss_pct(current))


def _mtu_failed(mesh: Mesh, row: int) -> bool:
    """Whether the pair's MTU check failed while its small pings were answered."""
    c = mesh.columns
    return (mesh.params.mtu_size is not None and c.mtu[row] == MTU_FAILED
            and STATES[c.state[row]] in REACHABLE)


def _mtu_unknown(mesh: Mesh, row: int) -> bool:
    """Whether the pair's MTU check could not tell while its small pings were answered."""
    c = mesh.columns
    return (mesh.params.mtu_size is not None and c.mtu[row] == MTU_UNKNOWN
            and STATES[c.state[row]] in REACHABLE)


def _new_pair(current: Mesh, row: int) -> PairChange:
    """A pair measured only now, as a change from nothing."""
    after = current.row(row)
    return PairChange(after.src, after.dst, PairState.ERROR, after.state, None, after.loss_pct,
                      None, after.rtt_avg_ms)


def _gone_pair(baseline: Mesh, old: int) -> PairChange:
    """A pair measured in the baseline and not now (its state now: error, could not tell)."""
    before = baseline.row(old)
    return PairChange(before.src, before.dst, before.state, PairState.ERROR, before.loss_pct, None,
                      before.rtt_avg_ms, None)


class _Row:
    """A compared pair read straight from the two meshes' columns; a PairChange (with names and
    rounding) is made only for the few pairs that are listed."""

    def __init__(self, baseline: Mesh, old: int, current: Mesh, row: int) -> None:
        self.baseline, self.old, self.current, self.row = baseline, old, current, row
        self.before = STATES[baseline.columns.state[old]]
        self.after = STATES[current.columns.state[row]]
        self.rtt_before = baseline.columns.rtt[4 * old + 1]  # NaN: no reply
        self.rtt_after = current.columns.rtt[4 * row + 1]

    def loss(self) -> tuple[float | None, float | None]:
        b, c = self.baseline.columns, self.current.columns
        return (pair_loss_pct(self.before, b.sent[self.old], b.received[self.old]),
                pair_loss_pct(self.after, c.sent[self.row], c.received[self.row]))

    def made(self) -> PairChange:
        before, after = self.baseline.row(self.old), self.current.row(self.row)
        return PairChange(after.src, after.dst, before.state, after.state, before.loss_pct,
                          after.loss_pct, before.rtt_avg_ms, after.rtt_avg_ms)


class _Collector:
    """Counts every change of a kind, keeps the first `listed` (in the current mesh's order)."""

    def __init__(self, listed: int) -> None:
        self.listed = listed
        self.total = 0
        self.kept: list[PairChange] = []

    def add(self, change: PairChange) -> None:
        self.total += 1
        if len(self.kept) < self.listed:
            self.kept.append(change)

    def changes(self) -> Changes:
        return Changes(self.total, tuple(self.kept))


class _Worst:
    """Counts every rise, keeps the `listed` largest (ties: the earlier row) in a min-heap."""

    def __init__(self, listed: int) -> None:
        self.listed = listed
        self.total = 0
        self.heap: list[tuple[float, int, _Row]] = []

    def add(self, amount: float, row: int, change: _Row) -> None:
        self.total += 1
        item = (amount, -row, change)
        if len(self.heap) < self.listed:
            heapq.heappush(self.heap, item)
        elif self.listed and item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def changes(self) -> Changes:
        ordered = sorted(self.heap, key=lambda item: item[:2], reverse=True)
        return Changes(self.total, tuple(change.made() for _, _, change in ordered))
