"""fleet's own work per pair of a mesh, alone: no SSH, no hosts, no packets.

    python -m benchmarks.mesh_work [--hosts 100] [--peers K] [--count 3] [--runs 5] [--profile]
                                   [--underlay] [--mtu] [--loss 0.01] [--write-outputs DIR]

For N hosts it generates, once, the answer every source's probe script would print (fping -C
lines with pseudo-random RTTs, a few lost replies and send errors), then times, in this process,
what a mesh run does with those answers after the SSH traffic:

    parse     MeshProbe.parse of every source's answer (the fping lines into outcomes)
    fold      source_report of every source (the outcomes into columns, stats and percentiles)
    build     build_mesh (the sources' columns into the matrix)
    json      the JSON report written to memory (MeshReport.to_json().write_json)
    text      the table (MeshReport.render)

CPU time of this process (time.process_time), median of --runs; the machine's load average is
printed with it. --profile prints a cProfile of one more run instead. --write-outputs DIR writes
the JSON report, the table, the JUnit file, the Prometheus text and the heatmap page of one run,
byte for byte, to compare two versions of fleet on the same generated answers.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Network
from pathlib import Path
from typing import Any

from nornir.core.inventory import Host

from fleet.inventory import FleetHost
from fleet.mesh.model import SourceReport, build_mesh, peer_plan, source_report
from fleet.mesh.probe import DEFAULT_MTU_SIZE, MeshProbe, ProbeParams
from fleet.mesh.report import MeshReport

PREFIX = IPv6Network("fd00:5efe:bed::/64")
PROBE = MeshProbe()
STAGES = ("parse", "fold", "build", "json", "text")


def make_hosts(n: int) -> list[FleetHost]:
    hosts = []
    for i in range(n):
        name = f"h{i + 1:04d}"
        hosts.append(FleetHost(name, f"10.9.{i // 250}.{i % 250 + 1}", 22, "root", None, (),
                               IPv4Address(f"10.9.{i // 250}.{i % 250 + 1}"), PREFIX, {},
                               Host(name)))
    return hosts


def _times(rng: random.Random, count: int, loss: float) -> str:
    return " ".join("-" if rng.random() < loss else f"{rng.uniform(0.02, 3.0):.3f}"
                    for _ in range(count))


def fping_lines(rng: random.Random, targets: list[str], count: int, loss: float) -> list[str]:
    """`fping -C` lines for `targets`, names padded as fping pads them; one in 500 peers had a
    send error and no reply."""
    width = max(map(len, targets))
    lines, errors = [], []
    for target in targets:
        if rng.random() < 0.002:
            errors.append(f"{target}: error while sending ping: Network is unreachable")
            lines.append(f"{target.ljust(width)} : " + " ".join("-" * count))
        else:
            lines.append(f"{target.ljust(width)} : {_times(rng, count, loss)}")
    return errors + lines


def answer_text(rng: random.Random, own: FleetHost, peers: list[FleetHost], params: ProbeParams,
                loss: float) -> str:
    """What the probe script prints on a configured host with fping."""
    inet6 = own.address.exploded.replace(":", "")
    out = [f"@@fleet tunnel\n{inet6} 40\n@@fleet method fping"]
    out += fping_lines(rng, [p.address_text for p in peers], params.count, loss)
    out.append("@@fleet-rc 0")
    if params.underlay:
        out.append("@@fleet underlay fping")
        out += fping_lines(rng, [str(p.ipv4) for p in peers], params.count, loss)
        out.append("@@fleet-rc 0")
    if params.mtu_size is not None:
        out.append("@@fleet mtu fping")
        out += fping_lines(rng, [p.address_text for p in peers], 2, loss)
        out.append("@@fleet-rc 0")
    return "\n".join(out) + "\n"


class Workload:
    def __init__(self, n: int, peers: int | None, params: ProbeParams, loss: float) -> None:
        rng = random.Random(n * 7919 + (peers or 0))
        self.hosts = make_hosts(n)
        self.params, self.peers = params, peers
        self.plan = peer_plan(n, peers)
        self.answers = [answer_text(rng, h, [self.hosts[j] for j in self.plan[i]], params, loss)
                        for i, h in enumerate(self.hosts)]

    def run(self, clock: Callable[[], float] = time.process_time) -> tuple[dict[str, float],
                                                                          MeshReport]:
        spent = dict.fromkeys(STAGES, 0.0)
        reports: dict[str, SourceReport | str | BaseException] = {}
        underlay, mtu = self.params.underlay, self.params.mtu_size is not None
        for i, host in enumerate(self.hosts):
            peers = [self.hosts[j] for j in self.plan[i]]
            addresses = [p.address_text for p in peers]
            ipv4s = [str(p.ipv4) for p in peers] if underlay else []
            t0 = clock()
            parsed = PROBE.parse(self.answers[i], addresses, ipv4s if underlay else None, mtu)
            t1 = clock()
            targets = [(j, p.address_text) for j, p in zip(self.plan[i], peers)]
            reports[host.name] = source_report(
                i, targets, parsed.method, parsed.tunnel_addresses, parsed.outcomes, parsed.notes,
                (ipv4s, parsed.underlay) if parsed.underlay is not None else None, parsed.mtu)
            t2 = clock()
            spent["parse"] += t1 - t0
            spent["fold"] += t2 - t1
        t0 = clock()
        mesh = build_mesh(self.hosts, reports, self.params, self.plan, self.peers)
        report = MeshReport(mesh, interrupted=False, elapsed=1.0)
        t1 = clock()
        report.to_json().write_json(io.StringIO())
        t2 = clock()
        report.render()
        t3 = clock()
        spent.update(build=t1 - t0, json=t2 - t1, text=t3 - t2)
        return spent, report


def write_outputs(report: MeshReport, directory: Path) -> None:
    """Every output of one report, as the CLI writes them (fixed times where they print one)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from fleet.formats import heatmap, junit, prometheus

    directory.mkdir(parents=True, exist_ok=True)
    stream = io.StringIO()
    report.to_json().write_json(stream)
    (directory / "report.json").write_text(stream.getvalue())
    (directory / "table.txt").write_text(report.render())
    outcomes = [SimpleNamespace(task="mesh", report=report)]
    when = datetime(2026, 1, 1, tzinfo=UTC)
    texts = {"junit.xml": junit.render(outcomes, directory / "junit.xml"),
             "metrics.prom": prometheus.render(outcomes, directory / "metrics.prom",
                                               now=lambda: 0.0, pairs=True),
             "heatmap.html": heatmap.render(outcomes, directory / "heatmap.html", generated=when),
             "heatmap.svg": heatmap.render(outcomes, directory / "heatmap.svg", generated=when)}
    for name, text in texts.items():
        (directory / name).write_text("".join(text or ()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--peers", type=int, default=None)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--loss", type=float, default=0.01, help="share of replies lost")
    parser.add_argument("--underlay", action="store_true")
    parser.add_argument("--mtu", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--write-outputs", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    params = ProbeParams(count=args.count, method="fping", underlay=args.underlay,
                         mtu_size=DEFAULT_MTU_SIZE if args.mtu else None)
    work = Workload(args.hosts, args.peers, params, args.loss)
    pairs = sum(map(len, work.plan))
    print(f"{args.hosts} hosts, {pairs} pairs, count {args.count}"
          f"{', underlay' if args.underlay else ''}{', mtu' if args.mtu else ''}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if args.write_outputs:
        write_outputs(work.run()[1], args.write_outputs)
        print(f"outputs written to {args.write_outputs}")
        return 0
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        work.run()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        return 0
    runs: list[dict[str, float]] = []
    for _ in range(args.runs):
        runs.append(work.run()[0])
    medians: dict[str, Any] = {s: statistics.median(r[s] for r in runs) for s in STAGES}
    total = statistics.median(sum(r.values()) for r in runs)
    print("  ".join(f"{s} {medians[s]:.3f}" for s in STAGES) + f"  total {total:.3f} s CPU "
          f"(median of {args.runs}); {1e6 * total / pairs:.1f} us per pair")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
