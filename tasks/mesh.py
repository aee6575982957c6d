"""Ping every host's ISATAP address from every other host; show the reachability matrix.

One SSH command per source host probes all of its peers; loss and round-trip times per pair.
"""

from __future__ import annotations

import argparse

from nornir.core.task import Result

from fleet.errors import CommandError, PreflightError, UsageError
from fleet.iproute import ParseError, parse_global_ipv6
from fleet.matrix import SourceProbe, build_mesh
from fleet.probe import PingProbe, ProbeParams
from fleet.report import mesh_to_json, render_mesh
from fleet.runner import HostRun, RunOutcome
from fleet.sections import split_sections
from fleet.task import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, TaskContext, host_error

PROBE = PingProbe()
NO_PING_STATUS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mesh")
    group.add_argument("--count", type=int, default=3, help="pings per pair (default 3)")
    group.add_argument("--interval", type=float, default=0.2,
                       help="seconds between pings of one pair (default 0.2)")
    group.add_argument("--timeout", type=float, default=1.0,
                       help="seconds to wait for each reply (default 1)")
    group.add_argument("--parallel", type=int, default=16,
                       help="peers one source probes at once (default 16)")


def params(options: argparse.Namespace) -> ProbeParams:
    return ProbeParams(count=options.count, interval=options.interval, timeout=options.timeout,
                       parallel=options.parallel)


def prepare(context: TaskContext) -> None:
    try:
        params(context.options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


async def run(host: HostRun) -> Result:
    peers = [h for h in host.fleet if h.name != host.name]
    probe_params = params(host.options)
    targets = [peer.address for peer in peers]
    script = "command -v ping >/dev/null 2>&1 || exit %d\n%s" % (
        NO_PING_STATUS, PROBE.script(targets, probe_params))
    budget = max(host.limits.command_timeout, probe_params.expected_seconds(len(peers)) * 2 + 10)
    answer = await host.run(script, timeout=budget)
    if answer.exit_status == NO_PING_STATUS:
        raise PreflightError(host.name, "`ping` (iputils-ping) is not installed")
    if answer.exit_status != 0:
        reason = (answer.stderr.strip() or f"exit status {answer.exit_status}").splitlines()[-1]
        raise CommandError(host.name, f"probe failed: {reason}", command=script,
                           exit_status=answer.exit_status, stdout=answer.stdout, stderr=answer.stderr)
    parts = split_sections(answer.stdout)
    try:
        addresses = parse_global_ipv6(parts.get("addr", ""))
    except ParseError:
        addresses = ()
    outcomes = PROBE.parse(answer.stdout, targets)
    return host.result(SourceProbe(addresses, outcomes))


def report(context: TaskContext, outcome: RunOutcome) -> int:
    reports: dict[str, SourceProbe | str] = {}
    for host in context.hosts:
        result = outcome.results[host.name][0]
        reports[host.name] = host_error(result) if result.failed else result.result
    mesh = build_mesh(context.hosts, reports, PROBE.name, params(context.options))
    print(render_mesh(mesh), file=context.out)
    context.emit_json(mesh_to_json(mesh) | {"interrupted": outcome.interrupted,
                                            "elapsed_s": round(outcome.elapsed, 3)})
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if mesh.all_ok else EXIT_FAILED
