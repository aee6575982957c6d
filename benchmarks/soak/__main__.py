"""`python3 -m benchmarks.soak`: a bounded soak of fleet on OpenSSH namespace hosts, as root.

See docs/soak.md. Exit codes: 0 no leak and every result as expected; 1 a leak or an unexpected
result; 2 the soak cannot run here (not root, a tool missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.soak import plan
from benchmarks.soak.report import render_phase, verdict_lines

TOOLS = ("ip", "/usr/sbin/sshd", "ssh-keygen", "unshare", "nft", "ping")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=50, help="OpenSSH namespace hosts (default 50)")
    parser.add_argument("--iterations", type=int, default=30,
                        help="`fleet run setup mesh` runs per phase (default 30)")
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="stop starting iterations after this long, per phase (default 30)")
    parser.add_argument("--phases", default="in-process,persist",
                        help="comma-separated: in-process, persist (default both)")
    parser.add_argument("--via", choices=("hub", "forwarder"), default="hub",
                        help="reach the hosts from inside the bed's hub namespace (default), or "
                             "through its 127.0.0.1 forwarder")
    parser.add_argument("--connect-timeout", type=float, default=5.0)
    parser.add_argument("--command-timeout", type=float, default=10.0)
    parser.add_argument("--host-timeout", type=float, default=60.0)
    parser.add_argument("--count", type=int, default=2, help="pings per pair (default 2)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    parser.add_argument("--report", metavar="FILE", help="run nothing: print the tables and the "
                        "verdict of an earlier run's --json FILE, by today's limits")
    return parser


def prerequisites() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root: the bed makes network namespaces and starts sshds")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        problems.append(f"missing {', '.join(missing)} (apt-get install iproute2 openssh-server "
                        "openssh-client util-linux nftables iputils-ping)")
    return problems


def kernel_has_sit() -> bool:
    from fleet.tunnel.preflight import FACTS_SCRIPT, parse_facts

    done = subprocess.run(["sh", "-c", FACTS_SCRIPT], capture_output=True, text=True)
    return parse_facts(done.stdout).sit != "missing"


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    if options.report:
        return report_of(Path(options.report))
    phases = [p.strip() for p in options.phases.split(",") if p.strip()]
    if not set(phases) <= {"in-process", "persist"} or not phases:
        print("soak: --phases takes in-process and/or persist", file=sys.stderr)
        return 2
    if options.hosts < plan.KILL_GROUP + plan.DROP_GROUP + 1 or options.iterations < 2:
        print(f"soak: at least {plan.KILL_GROUP + plan.DROP_GROUP + 1} hosts and 2 iterations",
              file=sys.stderr)
        return 2
    problems = prerequisites()
    if problems:
        print("soak: cannot run here:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    from fleet.core.oslimits import raise_open_file_limit

    raise_open_file_limit()
    return run(options, phases)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(options: argparse.Namespace, phase_names: list[str]) -> int:
    from benchmarks.bed import BenchBed, machine_facts
    from benchmarks.soak import phases
    from fleet.lab.forwarder import enter_netns
    from fleet.lab.nsbed import NamespaceBed

    has_sit = kernel_has_sit()
    results: list[phases.Phase] = []
    started = time.monotonic()
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    with tempfile.TemporaryDirectory(prefix="fleet-soak-") as scratch, \
            NamespaceBed(options.hosts, workdir=Path(scratch) / "bed") as bed:
        bench = BenchBed(bed, options.via)
        log(f"soak: {options.hosts} hosts up in {time.monotonic() - started:.0f} s "
            f"(tag {bed.tag}, via {options.via})")
        state = phases.BedState(bed)
        state.drops.set(())  # the nftables table exists (or the soak stops here, before any run)
        try:
            if options.via == "hub":
                enter_netns(f"/run/netns/{bench.hub}")  # before any thread: all of this process

            def arguments(dry_run: bool) -> list[str]:
                return phases.fleet_arguments(
                    bench.inventory_dir, dry_run=dry_run, connect_timeout=options.connect_timeout,
                    command_timeout=options.command_timeout, host_timeout=options.host_timeout,
                    count=options.count)

            for name in phase_names:
                settings = phases.Settings(options.iterations, time.monotonic() + options.minutes * 60,
                                           bench.inventory_dir, (), has_sit, log)
                if name == "in-process":
                    results.append(asyncio.run(phases.in_process(settings, state, arguments)))
                else:
                    results.append(phases.persist(settings, state, arguments,
                                                  Path(scratch) / "persist"))
        finally:
            enter_netns(f"/proc/self/fd/{home}")
            os.close(home)
            state.drops.remove()
    verdicts = conclude(results)
    ok = all(v.ok for v in verdicts.values())
    if options.json:
        document: dict[str, Any] = {
            "settings": {k: v for k, v in vars(options).items()}, "kernel_has_sit": has_sit,
            "machine": machine_facts(), "limits": {"count_slope": plan.COUNT_SLOPE_LIMIT,
                                                   "rss_slope_mb": plan.RSS_SLOPE_LIMIT_MB,
                                                   "ceilings": "0 where the right value is 0"},
            "phases": [{"name": p.name, "rows": p.rows, "problems": {str(k): v for k, v in
                                                                   p.problems.items()},
                        "stopped_early": p.stopped_early,
                        "trends": [t.as_dict() for t in verdicts[p.name].trends],
                        "leak": verdicts[p.name].leak, "unexpected": list(verdicts[p.name].unexpected)}
                       for p in results],
            "pass": ok}
        Path(options.json).write_text(json.dumps(document, indent=1) + "\n")
    return 0 if ok else 1


def conclude(results: list[Any]) -> dict[str, plan.Verdict]:
    """Print each phase's table and trends, and the overall verdict; return the verdicts."""
    verdicts = {phase.name: _verdict(phase) for phase in results}
    for phase in results:
        print(render_phase(phase))
        print("\n".join(verdict_lines(phase, verdicts[phase.name])) + "\n")
    ok = all(v.ok for v in verdicts.values())
    print(f"soak verdict: {'PASS' if ok else 'FAIL'}: "
          + "; ".join(f"{name}: {'leak' if v.leak else 'no leak'}, "
                      f"{len(v.unexpected)} unexpected iteration(s)" for name, v in verdicts.items()))
    return verdicts


def report_of(path: Path) -> int:
    """The tables and verdict of a --json file (the figures are kept; the verdict is redone)."""
    from benchmarks.soak.phases import Phase

    document = json.loads(path.read_text())
    results = [Phase(p["name"], p["rows"], {int(k): v for k, v in p["problems"].items()},
                     p.get("stopped_early")) for p in document["phases"]]
    return 0 if all(v.ok for v in conclude(results).values()) else 1


def _verdict(phase: Any) -> plan.Verdict:
    return plan.verdict(phase.name, phase.rows, list(phase.problems))


if __name__ == "__main__":
    sys.exit(main())
