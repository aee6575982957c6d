"""Ping every host's ISATAP address from every other host; show the reachability matrix.

One SSH command per source host probes all of its peers (fping, else fleet's own single-process
prober, else parallel ping -6); loss and round-trip times per directed pair.
"""

from __future__ import annotations

import argparse
import asyncio
import functools

from nornir.core.task import Result

from fleet.core.errors import CommandError, PreflightError, UsageError
from fleet.core.runner import HostRun, RunOutcome
from fleet.core.task import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, TaskContext, host_error
from fleet.inventory import FleetHost
from fleet.mesh.model import build_mesh, peer_plan, source_report
from fleet.mesh.probe import METHODS, NO_PROBER_STATUS, MeshProbe, ProbeParams
from fleet.mesh.report import MeshJson, render_mesh

PROBE = MeshProbe()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mesh")
    group.add_argument("--count", type=int, default=3, help="pings per pair (default 3)")
    group.add_argument("--interval", type=float, default=0.2,
                       help="seconds between pings of one pair (default 0.2)")
    group.add_argument("--timeout", type=float, default=1.0,
                       help="seconds to wait for each reply (default 1)")
    group.add_argument("--parallel", type=int, default=16,
                       help="peers one source pings at once with the ping method (default 16)")
    group.add_argument("--probe", choices=METHODS, default="auto",
                       help="fping, python (fleet's own prober), ping, or auto: the first the "
                            "host has, in that order (default)")
    group.add_argument("--peers", type=int, default=None, metavar="K",
                       help="sampled mesh: each host probes K peers and is probed by K others "
                            "(default: every other host)")


def params(options: argparse.Namespace) -> ProbeParams:
    return ProbeParams(count=options.count, interval=options.interval, timeout=options.timeout,
                       parallel=options.parallel, method=options.probe)


def prepare(context: TaskContext) -> None:
    try:
        params(context.options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if context.options.peers is not None and context.options.peers < 1:
        raise UsageError("--peers must be at least 1")


@functools.lru_cache(maxsize=4)
def _plan(count: int, peers: int | None) -> list[list[int]]:
    return peer_plan(count, peers)


def _targets(host: HostRun) -> tuple[int, list[tuple[int, FleetHost]]]:
    index = next(i for i, h in enumerate(host.fleet) if h.name == host.name)
    plan = _plan(len(host.fleet), host.options.peers)
    return index, [(j, host.fleet[j]) for j in plan[index]]


async def run(host: HostRun) -> Result:
    index, peers = _targets(host)
    probe_params = params(host.options)
    addresses = [peer.address_text for _, peer in peers]
    script = PROBE.script(addresses, probe_params)
    budget = max(host.limits.command_timeout, probe_params.expected_seconds(len(peers)) * 2 + 10)
    answer = await host.run(script, timeout=budget)
    if len(addresses) > 200:  # a big reply: fold it off the event loop, which runs handshakes
        parsed = await asyncio.to_thread(PROBE.parse, answer.stdout, addresses)
    else:
        parsed = PROBE.parse(answer.stdout, addresses)
    if answer.exit_status == NO_PROBER_STATUS:
        if parsed.notes:
            raise CommandError(host.name, "every prober failed: " + "; ".join(parsed.notes),
                               command=script, exit_status=answer.exit_status)
        raise PreflightError(host.name, "no prober: neither fping, python3 nor ping (iputils-ping) "
                             "is installed")
    if answer.exit_status != 0:
        raise CommandError(host.name,
                           f"probe failed (exit status {answer.exit_status}): {answer.last_words}",
                           command=script, exit_status=answer.exit_status, stdout=answer.stdout,
                           stderr=answer.stderr)
    targets = [(j, peer.address_text) for j, peer in peers]
    fold = functools.partial(source_report, index, targets, parsed.method, parsed.tunnel_addresses,
                             parsed.outcomes, parsed.notes)
    report = await asyncio.to_thread(fold) if len(targets) > 200 else fold()
    return host.result(report)


def report(context: TaskContext, outcome: RunOutcome) -> int:
    reports = {}
    for host in context.hosts:
        result = outcome.results[host.name][0]
        reports[host.name] = (result.exception or host_error(result)) if result.failed \
            else result.result
    mesh = build_mesh(context.hosts, reports, params(context.options),
                      _plan(len(context.hosts), context.options.peers), context.options.peers)
    print(render_mesh(mesh), file=context.out)
    context.emit_json(MeshJson(mesh, interrupted=outcome.interrupted,
                               elapsed_s=round(outcome.elapsed, 3)))
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if mesh.all_ok else EXIT_FAILED
