"""RTT percentiles by nearest rank, for one pair's replies and for every reply of a mesh. Pure.

Nearest rank: the p-th percentile of n sorted samples is the ceil(p/100 * n)-th smallest, always a
value that was measured. A percentile is reported only when at least one sample lies above its
rank, i.e. when n >= 100 / (100 - p): p50 needs 2 replies, p90 10, p99 100. With fewer, the
"percentile" would just be the largest sample, which says nothing about the tail, so it is None.

A mesh has millions of replies; they are kept as a Counter of microseconds (the resolution the
report shows), whose size is bounded by the spread of the RTTs, not by their number.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from operator import mul

PERCENTILES = (50, 90, 99)
MICROS_PER_MS = 1000


def enough_samples(p: int, n: int) -> bool:
    """Whether n samples can give a p-th percentile that is not simply their maximum."""
    return n * (100 - p) >= 100


def rank(p: int, n: int) -> int:
    """The 1-based nearest rank of the p-th percentile among n samples."""
    return max(1, math.ceil(p * n / 100))


@functools.cache
def percentile_indexes(n: int) -> tuple[int | None, ...]:
    """Where (p50, p90, p99) are among n sorted samples (0-based); None where there are too few."""
    return tuple(rank(p, n) - 1 if enough_samples(p, n) else None for p in PERCENTILES)


def sample_percentiles(samples_ms: Sequence[float]) -> tuple[float | None, ...]:
    """(p50, p90, p99) of one pair's replies, in ms; None where there are too few."""
    ordered = sorted(samples_ms)
    return tuple(None if i is None else ordered[i] for i in percentile_indexes(len(ordered)))


def micro_counts(samples_ms: Iterable[float]) -> Iterator[int]:
    """Replies as whole microseconds, one by one (what a Counter of them counts)."""
    return map(round, map(mul, samples_ms, repeat(MICROS_PER_MS)))


def micros(samples_ms: Iterable[float]) -> Counter[int]:
    """Replies as a Counter of whole microseconds."""
    return Counter(micro_counts(samples_ms))


def counter_percentiles(counts: Counter[int]) -> dict[str, float | None]:
    """{"p50": ms, "p90": ms, "p99": ms} over every reply counted (microseconds), None where
    there are too few."""
    n = sum(counts.values())
    wanted = {p: rank(p, n) for p in PERCENTILES if enough_samples(p, n)}
    found: dict[str, float | None] = {f"p{p}": None for p in PERCENTILES}
    seen = 0
    pending = sorted(wanted.items(), key=lambda item: item[1])
    for value in sorted(counts):
        seen += counts[value]
        while pending and pending[0][1] <= seen:
            found[f"p{pending.pop(0)[0]}"] = value / MICROS_PER_MS
        if not pending:
            break
    return found
