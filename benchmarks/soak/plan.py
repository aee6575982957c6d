"""The soak's pure core: the fault schedule, what each iteration must report, and the verdict.

Values in, values out; nothing here touches a host, a process or a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KILL_GROUP = 3  # hosts whose sshd is killed together
DROP_GROUP = 2  # hosts whose packets are dropped together
CYCLE = 3  # iterations per fault cycle: kill, kill + drops, clean (after the restart)

# A counted resource that grows by more than this per iteration (least-squares slope over the
# second half of the iterations) is a leak: one more fd every five iterations. A leak tied to a
# fault (once per cycle of three iterations) grows by at least 1/3.
COUNT_SLOPE_LIMIT = 0.2
# Memory: more than this many MB per iteration over the second half is a leak (7.5 MB over 30).
RSS_SLOPE_LIMIT_MB = 0.25


@dataclass(frozen=True)
class Faults:
    """The faults in force during one iteration: hosts whose sshd is dead, hosts dropping."""

    killed: frozenset[str] = frozenset()
    dropped: frozenset[str] = frozenset()

    @property
    def faulted(self) -> frozenset[str]:
        return self.killed | self.dropped

    def describe(self) -> str:
        parts = [f"sshd down {','.join(sorted(self.killed, key=_natural))}" if self.killed else "",
                 f"drops {','.join(sorted(self.dropped, key=_natural))}" if self.dropped else ""]
        return "; ".join(p for p in parts if p) or "none"


def _natural(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return head, int(tail) if tail else -1


def schedule(hosts: Sequence[str], iterations: int) -> list[Faults]:
    """The faults of every iteration, on a fixed cycle of three.

    Iteration 3c kills the sshd of hosts 3c..3c+2 (mod N-2), which stay down for two iterations
    and are restarted before iteration 3c+2; iteration 3c+1 also drops every packet the last two
    hosts send, for that iteration only. The dropping hosts are always the same two and never
    killed, so that whatever a drop leaves behind on a kept connection (a channel, a task)
    accumulates instead of vanishing with a later kill. A kill is scheduled only if its restart
    happens within the run, and the last iteration is always clean, so the run ends where it began.
    """
    n = len(hosts)
    if n < KILL_GROUP + DROP_GROUP + 1:
        raise ValueError(f"the soak needs at least {KILL_GROUP + DROP_GROUP + 1} hosts")
    plan = [Faults() for _ in range(iterations)]
    killable = n - DROP_GROUP
    dropped = frozenset(hosts[killable:])
    for start in range(0, iterations, CYCLE):
        if start + 2 > iterations - 1:  # the restart would not happen before the run ends
            break
        cycle = start // CYCLE
        killed = frozenset(hosts[(KILL_GROUP * cycle + j) % killable] for j in range(KILL_GROUP))
        plan[start] = Faults(killed)
        plan[start + 1] = Faults(killed, dropped)
    return plan


@dataclass(frozen=True)
class Expectation:
    """What the reports of one iteration must say.

    `down_kinds`/`drop_kinds`: the error kinds a host with a dead sshd / dropping host may fail
    with; `healthy_setup_kind`: the kind every other host's setup fails with (`preflight` on a
    kernel without sit), None when it must succeed; `silent_pair`: the state of a pair whose
    destination drops (`unreachable`, but `error`, "could not tell", from a source without its
    ISATAP address, as on the bed without sit)."""

    faults: Faults
    down_kinds: frozenset[str]
    drop_kinds: frozenset[str]
    healthy_setup_kind: str | None
    silent_pair: str = "unreachable"


def expectation(faults: Faults, *, persistent: bool, kernel_has_sit: bool) -> Expectation:
    """A dead sshd is `unreachable` either way. A dropping host is `unreachable` on a fresh
    connection (the login times out); on a kept connection (--persist) its first command times
    out (`timeout`), which gives the stalled connection up, so a later task of the same run logs
    in again and finds it `unreachable`."""
    return Expectation(faults, frozenset({"unreachable"}),
                       frozenset({"timeout", "unreachable"} if persistent else {"unreachable"}),
                       None if kernel_has_sit else "preflight",
                       "unreachable" if kernel_has_sit else "error")


def _kind_problem(where: str, kind: object, allowed: frozenset[str]) -> str | None:
    if kind in allowed:
        return None
    return f"{where}: error_kind {kind!r}, expected {'/'.join(sorted(allowed))}"


def check_setup(document: Mapping[str, Any], expect: Expectation) -> list[str]:
    """Problems with a setup report (`fleet run setup --json`): every faulted host failed with its
    fault's kind, every other host as the kernel says."""
    problems = []
    rows = {row["name"]: row for row in document.get("hosts", [])}
    for name, row in sorted(rows.items(), key=lambda item: _natural(item[0])):
        allowed = (expect.down_kinds if name in expect.faults.killed else
                   expect.drop_kinds if name in expect.faults.dropped else
                   frozenset({expect.healthy_setup_kind}) if expect.healthy_setup_kind else None)
        if allowed is None:
            if row.get("failed"):
                problems.append(f"setup {name}: failed ({row.get('error_kind')}: {row.get('error')})")
            continue
        if not row.get("failed"):
            problems.append(f"setup {name}: {row.get('status')}, expected a failure")
            continue
        problem = _kind_problem(f"setup {name}", row.get("error_kind"), allowed)
        if problem:
            problems.append(f"{problem} ({row.get('error')})")
    return problems


def expected_pair_state(src: str, dst: str, expect: Expectation) -> str:
    """A faulted source cannot probe (`error`); a dropping destination answers no ping
    (`expect.silent_pair`); a host whose sshd is down still answers pings (`ok`)."""
    if src in expect.faults.faulted:
        return "error"
    if dst in expect.faults.dropped:
        return expect.silent_pair
    return "ok"


def check_mesh(document: Mapping[str, Any], expect: Expectation) -> list[str]:
    """Problems with a mesh report: each host row's state and kind, each pair's state."""
    problems = []
    faults = expect.faults
    for row in document.get("hosts", []):
        name, state = row["name"], row.get("state")
        if name in faults.faulted:
            allowed = expect.down_kinds if name in faults.killed else expect.drop_kinds
            if state != "error":
                problems.append(f"mesh {name}: state {state}, expected error")
            elif problem := _kind_problem(f"mesh {name}", row.get("error_kind"), allowed):
                problems.append(f"{problem} ({row.get('error')})")
        elif state == "error":
            problems.append(f"mesh {name}: error ({row.get('error_kind')}: {row.get('error')})")
    wrong: dict[tuple[str, str], int] = {}
    for pair in document.get("pairs", []):
        want = expected_pair_state(pair["src"], pair["dst"], expect)
        if pair["state"] != want:
            wrong[(pair["state"], want)] = wrong.get((pair["state"], want), 0) + 1
            if sum(wrong.values()) <= 3:
                problems.append(f"mesh pair {pair['src']}->{pair['dst']}: {pair['state']}, "
                                f"expected {want}" + (f" ({pair['error']})" if pair.get("error") else ""))
    if sum(wrong.values()) > 3:
        problems.append(f"mesh: {sum(wrong.values())} pairs not as expected in all: "
                        + ", ".join(f"{n} {got} (expected {want})"
                                    for (got, want), n in sorted(wrong.items())))
    return problems


def expected_exit_code(expect: Expectation) -> int:
    """`fleet run setup mesh` exits 1 when any host or pair failed, else 0."""
    failing = bool(expect.faults.faulted) or expect.healthy_setup_kind is not None
    return 1 if failing else 0


# -- the verdict --------------------------------------------------------------------------------

def slope(values: Sequence[float]) -> float:
    """Least-squares slope of `values` against their index (units per iteration)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / sxx


def second_half(values: Sequence[float]) -> list[float]:
    """The iterations after the first half (the first ones warm caches and pools)."""
    return list(values[len(values) // 2:])


@dataclass(frozen=True)
class Limit:
    """A figure leaks when its slope exceeds `slope`, or when it is ever above `ceiling` (for a
    figure whose right value between runs is known, such as 0 channels with no command running:
    a slope alone misses a leak that is reset now and then, when its connection is replaced)."""

    slope: float
    ceiling: float | None = None


@dataclass(frozen=True)
class Trend:
    metric: str
    slope: float
    limit: Limit
    first: float
    last: float
    highest: float

    @property
    def above_ceiling(self) -> bool:
        return self.limit.ceiling is not None and self.highest > self.limit.ceiling

    @property
    def leak(self) -> bool:
        return self.slope > self.limit.slope or self.above_ceiling

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "slope_per_iteration": round(self.slope, 4),
                "slope_limit": self.limit.slope, "ceiling": self.limit.ceiling,
                "second_half_first": self.first, "second_half_last": self.last,
                "highest": self.highest, "leak": self.leak}


@dataclass(frozen=True)
class Verdict:
    trends: tuple[Trend, ...]
    unexpected: tuple[int, ...] = field(default=())  # iterations whose results were wrong

    @property
    def leak(self) -> bool:
        return any(t.leak for t in self.trends)

    @property
    def ok(self) -> bool:
        return not self.leak and not self.unexpected


def trends(rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Limit]) -> tuple[Trend, ...]:
    """A Trend per metric present in the rows: the slope over their second half, the highest
    value over all of them."""
    found = []
    for metric, limit in metrics.items():
        values = [row[metric] for row in rows if row.get(metric) is not None]
        if len(values) < 2:
            continue
        half = second_half(values)
        found.append(Trend(metric, slope(half), limit, half[0], half[-1], max(values)))
    return tuple(found)


COUNT = Limit(COUNT_SLOPE_LIMIT)
NONE_LEFT = Limit(COUNT_SLOPE_LIMIT, ceiling=0)
IN_PROCESS_METRICS = {"fds": COUNT, "tcp": NONE_LEFT, "tasks": NONE_LEFT, "threads": COUNT,
                      "sshd_conns": NONE_LEFT, "sshd_procs": NONE_LEFT,
                      "resource_warnings": COUNT, "rss_mb": Limit(RSS_SLOPE_LIMIT_MB)}
# With --persist the servers may hold a connection a little longer than the daemon: one the daemon
# gave up while the host's packets were dropped stays ESTABLISHED on the server until its TCP
# retransmissions (backed off) reach the client and are reset, up to a minute later. So no
# ceiling there, only the slope.
PERSIST_METRICS = {"fds_less_kept": COUNT, "tcp_less_kept": NONE_LEFT, "tasks": COUNT,
                   "channels": NONE_LEFT, "threads": COUNT, "sshd_conns_less_kept": COUNT,
                   "rss_mb": Limit(RSS_SLOPE_LIMIT_MB)}


def verdict(name: str, rows: Sequence[Mapping[str, Any]], unexpected: Sequence[int]) -> Verdict:
    """The verdict of a phase (`in-process` or `persist`) from its rows."""
    metrics = IN_PROCESS_METRICS if name == "in-process" else PERSIST_METRICS
    return Verdict(trends(rows, metrics), tuple(sorted(unexpected)))
