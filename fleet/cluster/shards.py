"""How a fleet is cut into shards: by count, balanced, in inventory order (pure)."""

from __future__ import annotations


def split(count: int, shards: int) -> list[range]:
    """`count` host indexes cut into at most `shards` consecutive ranges whose sizes differ by at
    most one (the first ones take the extra host); no range is empty, so fewer hosts than shards
    give one shard per host."""
    if shards < 1:
        raise ValueError("a run needs at least one shard")
    shards = min(shards, count) or 1
    size, extra = divmod(count, shards)
    ranges, start = [], 0
    for index in range(shards):
        end = start + size + (1 if index < extra else 0)
        ranges.append(range(start, end))
        start = end
    return ranges


__all__ = ["split"]
