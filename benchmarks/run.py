"""Benchmark fleet against its peers on a bed of OpenSSH hosts in network namespaces.

    python -m benchmarks.run [--hosts 100] [--runs 3] [--jobs mesh-fping,mesh-ping,command,setup]
                             [--tools NAME,...] [--via hub|forwarder] [--json FILE] [--smoke]

Needs root (namespaces) and the peers (`benchmarks/install`). Builds the many-host bed of
shared/lab.md section 2 (fleet.lab.nsbed), runs every tool on every job, interleaved
(for each run: for each job: every tool, the tools' order rotated from run to run), prints
median/min/max wall time, client CPU, peak RSS, pairs OK and the ratio to fleet, and tears the
bed down (also on failure and Ctrl-C). The `setup` job runs on the QEMU lab (4 guests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bed import VIA, BenchBed, describe, machine_facts
from benchmarks.jobs import ALL_JOBS, BED_JOBS, commands, expected
from benchmarks.measure import processes_with, run_measured, stop_processes, text_table
from benchmarks.peers import REPO, Context, peer_modules

DEFAULT_JOBS = ",".join(ALL_JOBS)
SETTLE_S = 1.0  # the default pause after each tool's run (--settle)
# The default-kex OpenSSH column costs ~7 s a run at 100 hosts; on by default, --tools can drop it.


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100,
                        help="hosts in the bed (default 100, max 240: full meshes; a sampled mesh "
                             "on up to 2,000 hosts is benchmarks.bigbed)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every tool on every job (default 3)")
    parser.add_argument("--jobs", default=DEFAULT_JOBS, help=f"comma-separated (default {DEFAULT_JOBS})")
    parser.add_argument("--tools", default="", help="comma-separated tool names (default: all installed)")
    parser.add_argument("--via", choices=VIA, default="hub",
                        help="how every client reaches the hosts: from inside the hub namespace "
                             "(default) or through the bed's 127.0.0.1 forwarder")
    parser.add_argument("--setup-guests", type=int, default=4, help="QEMU guests for `setup` (default 4)")
    parser.add_argument("--rss-interval", type=float, default=0.1,
                        help="seconds between RSS samples of a tool's process tree (default 0.1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per tool run (default 600)")
    parser.add_argument("--settle", type=float, default=SETTLE_S,
                        help="seconds to pause after each tool's run, so that the targets' sessions "
                             f"end before the next tool is timed (default {SETTLE_S:g}; 0 with --smoke)")
    parser.add_argument("--json", metavar="FILE", help="also write every run and the summary as JSON")
    parser.add_argument("--workdir", type=Path, help="keep the bed's files here (default: a temporary "
                        "directory, removed at the end)")
    parser.add_argument("--smoke", action="store_true",
                        help="CI size: 4 hosts, 1 run, every installed tool, setup on 2 guests, no "
                             "pause between tools (a smoke run checks results, it times nothing)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hosts, args.runs, args.setup_guests, args.settle = 4, 1, 2, 0.0
    args.jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    unknown = [j for j in args.jobs if j not in ALL_JOBS]
    if unknown:
        parser.error(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(ALL_JOBS)}")
    if not 2 <= args.hosts <= 240:
        parser.error("--hosts must be between 2 and 240 (full meshes; for more hosts, a sampled "
                     "mesh: python -m benchmarks.bigbed)")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def select_tools(wanted: str) -> tuple[list[Any], list[str]]:
    modules = peer_modules()
    names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted else list(modules)
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise SystemExit(f"unknown tool(s) {unknown}; known: {list(modules)}")
    tools, skipped = [], []
    for name in names:
        reason = modules[name].missing()
        if reason:
            skipped.append(f"{name}: {reason}")
        else:
            tools.append(modules[name])
    return tools, skipped


def run_bed_jobs(args: argparse.Namespace, tools: list[Any], workdir: Path,
                 record: Any) -> dict[str, Any]:
    from fleet.lab.nsbed import NamespaceBed

    jobs = [j for j in args.jobs if j in BED_JOBS]
    tag = f"bn{os.getpid() % 100000}"
    started = time.monotonic()
    with NamespaceBed(args.hosts, workdir=workdir / "bed", tag=tag) as bed, \
            _kept_connections_closed(tools) as kept:
        bench = BenchBed(bed, args.via)
        kept.append(bench)
        bed_info = {"hosts": args.hosts, "tag": tag, "via": args.via, "start_s":
                    round(time.monotonic() - started, 2), "description": describe(bench)}
        say(f"{describe(bench)}\nbed: started in {bed_info['start_s']} s")
        hosts = [(t.name, t.ipv6) for t in bench.targets]
        relay = bench.forwarder_pid() if args.via == "forwarder" else None
        sshds = bench.sshd_pids()
        # One untimed warm-up of every tool (page cache, Python bytecode, ARP-free pinned bed).
        for tool in tools:
            _one(args, bench, tool, "command", hosts, workdir / "warmup" / _slug(tool.NAME),
                 relay, sshds)
        for run in range(args.runs):
            for job in jobs:
                shift = run % len(tools)
                for tool in tools[shift:] + tools[:shift]:
                    if job not in tool.JOBS:
                        continue
                    rundir = workdir / f"run{run + 1}" / job / _slug(tool.NAME)
                    row = _one(args, bench, tool, job, hosts, rundir, relay, sshds)
                    row["run"] = run + 1
                    record(row)
        return bed_info


@contextlib.contextmanager
def _kept_connections_closed(tools: list[Any]) -> Iterator[list[BenchBed]]:
    """Whatever a warm tool kept open (its daemon, its ssh masters) is stopped before the bed goes,
    also on failure and Ctrl-C: SIGTERM (each closes its connections), then the tool's `cleanup`."""
    benches: list[BenchBed] = []
    try:
        yield benches
    finally:
        for bench in benches:
            for tool in tools:
                if hasattr(tool, "background_marker"):
                    stop_processes(processes_with(tool.background_marker(bench)))
                if hasattr(tool, "cleanup"):
                    tool.cleanup(bench)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _one(args: argparse.Namespace, bench: BenchBed, tool: Any, job: str,
         hosts: list, rundir: Path, relay: int | None, sshds: list[int]) -> dict[str, Any]:
    rundir.mkdir(parents=True, exist_ok=True)
    ctx = Context(bench, job, commands(job, hosts), rundir)
    invocation = tool.invocation(ctx)
    marker = tool.background_marker(bench) if hasattr(tool, "background_marker") else None
    measured = run_measured(invocation.argv, cwd=invocation.cwd or REPO, env=invocation.env,
                            timeout=args.timeout, rss_interval=args.rss_interval,
                            target_pids=sshds, relay_pid=relay,
                            stdout_file=rundir / "stdout",
                            background=(lambda: processes_with(marker)) if marker else None)
    outcome = invocation.collect(measured)
    if measured.timed_out:
        outcome.errors.insert(0, f"killed after --timeout {args.timeout:g} s")
    if measured.returncode not in (0, 1) and not outcome.errors:
        outcome.errors.append(f"exit {measured.returncode}: {measured.stderr.strip()[-300:]}")
    time.sleep(args.settle)  # let the targets' sessions finish before the next tool starts
    return {"job": job, "tool": tool.NAME, "wall_s": measured.wall_s, "cpu_s": measured.cpu_s,
            "rss_tree_mb": measured.rss_tree_mb, "rss_one_mb": measured.rss_one_mb,
            "target_cpu_s": measured.target_cpu_s, "relay_cpu_s": measured.relay_cpu_s,
            "ok": outcome.ok, "expected": expected(job, len(hosts)),
            "returncode": measured.returncode, "note": outcome.note, "errors": outcome.errors[:5]}


def summarize(rows: list[dict[str, Any]], jobs: list[str], tool_order: list[str]) -> list[dict[str, Any]]:
    summary = []
    for job in jobs:
        fleet_rows = [r["wall_s"] for r in rows if r["job"] == job and r["tool"] == "fleet"]
        fleet_median = statistics.median(fleet_rows) if fleet_rows else None
        for tool in tool_order:
            mine = [r for r in rows if r["job"] == job and r["tool"] == tool]
            if not mine:
                continue
            walls = [r["wall_s"] for r in mine]
            median = statistics.median(walls)

            def med(key: str, mine: list[dict[str, Any]] = mine) -> float | None:
                values = [r[key] for r in mine if r[key] is not None]
                return statistics.median(values) if values else None

            notes = sorted({r["note"] for r in mine if r["note"]})
            summary.append({
                "job": job, "tool": tool, "runs": len(mine), "wall_median_s": median,
                "wall_min_s": min(walls), "wall_max_s": max(walls), "cpu_median_s": med("cpu_s"),
                "rss_tree_peak_mb": max(r["rss_tree_mb"] for r in mine),
                "rss_one_peak_mb": max(r["rss_one_mb"] for r in mine),
                "target_cpu_median_s": med("target_cpu_s"), "relay_cpu_median_s": med("relay_cpu_s"),
                "ok_min": min(r["ok"] for r in mine), "expected": mine[0]["expected"],
                "ratio_to_fleet": median / fleet_median if fleet_median else None,
                "note": "; ".join(notes),
                "errors": sorted({e for r in mine for e in r["errors"]})[:3]})
    return summary


def render(summary: list[dict[str, Any]], relay: bool) -> str:
    head = ["job", "tool", "median s", "min s", "max s", "CPU s", "RSS tree MB", "RSS 1 proc MB",
            "target CPU s"] + (["relay CPU s"] if relay else []) + ["OK", "x fleet", "note"]
    table = [head]
    for s in summary:
        def f(value: float | None, digits: int = 2) -> str:
            return "-" if value is None else f"{value:.{digits}f}"

        table.append([s["job"], s["tool"], f(s["wall_median_s"]), f(s["wall_min_s"]),
                      f(s["wall_max_s"]), f(s["cpu_median_s"]), f(s["rss_tree_peak_mb"], 0),
                      f(s["rss_one_peak_mb"], 0), f(s["target_cpu_median_s"])]
                     + ([f(s["relay_cpu_median_s"])] if relay else [])
                     + [f"{s['ok_min']}/{s['expected']}",
                        "-" if s["ratio_to_fleet"] is None else f"{s['ratio_to_fleet']:.2f}x",
                        s["note"]])
    return text_table(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        say("benchmarks: needs root (network namespaces); run as root")
        return 2
    tools, skipped = select_tools(args.tools)
    for line in skipped:
        say(f"benchmarks: skipping {line}")
    if not any(t.NAME == "fleet" for t in tools):
        say("benchmarks: fleet itself is not installed (scripts/install)")
        return 2

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the beds' `with`: everything is torn down

    signal.signal(signal.SIGTERM, terminate)
    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-")) if own_workdir else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        rows.append(row)
        errors = f"  ! {row['errors'][0]}" if row["errors"] else ""
        say(f"  run {row['run']} {row['job']:<10} {row['tool']:<20} {row['wall_s']:6.2f} s  "
            f"cpu {row['cpu_s']:5.2f} s  rss {row['rss_tree_mb']:5.0f} MB  "
            f"ok {row['ok']}/{row['expected']}  {row['note']}{errors}")

    machine = machine_facts()
    say("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    bed_info: dict[str, Any] = {}
    setup_skipped = None
    try:
        if any(j in BED_JOBS for j in args.jobs):
            bed_info = run_bed_jobs(args, tools, workdir, record)
        if "setup" in args.jobs:
            from benchmarks.setup_job import run_setup_job, unavailable

            setup_skipped = unavailable()
            if setup_skipped:
                say(f"benchmarks: skipping the setup job: {setup_skipped}")
            else:
                run_setup_job(guests=args.setup_guests, runs=args.runs, workdir=workdir,
                              rss_interval=args.rss_interval, record=record, say=say)
    except KeyboardInterrupt:
        say("benchmarks: interrupted; the beds were torn down")
        return 130
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    order = [t.NAME for t in tools] + ["asyncssh script"]
    order = list(dict.fromkeys(order))
    summary = summarize(rows, args.jobs, order)
    print(f"fleet benchmark: {args.hosts} hosts, {args.runs} run(s) each, interleaved; "
          f"median wall of the control side")
    if bed_info:
        print(bed_info["description"])
    print(f"machine: {machine['cores']} cores, {machine['memory']}, Debian {machine['debian']}, "
          f"kernel {machine['kernel']}, Python {machine['python']}, {machine['openssh']}")
    print(render(summary, relay=args.via == "forwarder"))
    for line in skipped:
        print(f"skipped: {line}")
    if setup_skipped:
        print(f"skipped: setup job: {setup_skipped}")
    failures = [s for s in summary if s["ok_min"] != s["expected"]]
    for s in failures:
        print(f"NOT ALL OK: {s['job']} {s['tool']}: {s['ok_min']}/{s['expected']} "
              f"{'; '.join(s['errors'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine, "bed": bed_info, "options": {
                "hosts": args.hosts, "runs": args.runs, "jobs": args.jobs, "via": args.via,
                "setup_guests": args.setup_guests, "rss_interval": args.rss_interval,
                "settle_s": args.settle},
            "skipped": skipped + ([f"setup: {setup_skipped}"] if setup_skipped else []),
            "summary": summary, "runs": rows}, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
