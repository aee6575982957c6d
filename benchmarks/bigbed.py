"""fleet at 1,000 real SSH hosts: the namespace bed, a sampled mesh cold, warm, sharded, and the
logins alone.

    python -m benchmarks.bigbed [--hosts 1000] [--runs 3] [--peers 20]
                                [--modes cold,warm,sharded,logins,asyncssh-logins]
                                [--profile-warm FILE] [--json FILE] [--workdir DIR]

As root. Builds fleet.lab.nsbed's bed of `--hosts` OpenSSH hosts (above 200 it raises the kernel's
neighbour tables and restores them at teardown), and from inside its hub namespace (the
benchmark's `--via hub`: every client connects to each sshd's 172.31.x.y:22 directly) runs,
interleaved (the order rotated from run to run):

    cold     fleet run mesh --peers P -i INV --json F --no-progress
    warm     the same with --persist 600 (its background process logged in during an untimed
             first run, and keeps every connection; its CPU and memory are counted with the run's)
    sharded  the same as cold with --cluster local --shards 2
    logins   fleet run noop --tasks-dir benchmarks/tasks -i INV --json F --no-progress: one login
             and `true` per host, what a cold mesh pays before any probing
    asyncssh-logins
             the hand-written asyncssh script of benchmarks/peers doing the same (`true`)
    watch1, watch6
             fleet watch --peers P -i INV --rounds 1|6 --every 0.1 -q --json F (one process, its
             connections and kept shells held from round to round, a history in the run's
             directory): a steady round's cost is (watch6 - watch1) / 5, in wall, fleet's CPU
             and the targets' CPU; each round's own time is in F

Per run: wall, CPU (the process tree, plus the background process for warm), peak RSS of the
tree, the targets' CPU (every sshd and what ran under it), every process's CPU on the machine in
that time, the 1-minute load before and after, and the report's counts. `--profile-warm FILE`
adds one untimed warm run under cProfile at the end. The bed is torn down on exit, failure and
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bed import BenchBed, describe, machine_facts
from benchmarks.jobs import commands
from benchmarks.measure import processes_with, run_measured, stop_processes, text_table
from benchmarks.peers import REPO, Context, python_env

MODES = ("cold", "warm", "sharded", "logins", "asyncssh-logins", "watch1", "watch6")
WATCH_ROUNDS = {"watch1": 1, "watch6": 6}
PERSIST_S = 600
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bigbed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000, help="hosts in the bed (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every mode (default 3)")
    parser.add_argument("--peers", type=int, default=20, help="--peers of the mesh (default 20)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {MODES}")
    parser.add_argument("--shards", type=int, default=2, help="shards of `sharded` (default 2)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to pause after each run (default 3)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run (default 600)")
    parser.add_argument("--profile-warm", type=Path, metavar="FILE",
                        help="also one untimed warm run under cProfile, its profile to FILE")
    parser.add_argument("--json", type=Path, metavar="FILE", help="every run and the summary")
    parser.add_argument("--workdir", type=Path, help="keep the bed's and the runs' files here")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; known: {', '.join(MODES)}")
    if not 2 <= args.hosts <= 2000:
        parser.error("--hosts must be between 2 and 2000")
    if args.runs < 1 or args.peers < 1 or args.shards < 1:
        parser.error("--runs, --peers and --shards must be at least 1")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine_cpu_s() -> float:
    """CPU-seconds every process of the machine used since boot (idle and iowait left out)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def tree_cpu_s(roots: set[int]) -> float:
    """CPU of the processes under `roots` (the bed's sshd launchers) and of the children they
    waited for, live ones included: one pass over /proc, so 1,000 roots cost one scan."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry)
        parent[pid] = int(fields[1])
        cpu[pid] = sum(int(v) for v in fields[11:15]) / _CLK_TCK  # utime stime cutime cstime
    total = 0.0
    for pid, seconds in cpu.items():
        walk, seen = pid, 0
        while walk and walk not in roots and seen < 64:
            walk, seen = parent.get(walk, 0), seen + 1
        if walk in roots:
            total += seconds
    return total


class Runner:
    """The bed, the files of every run, and the invocation of each mode."""

    def __init__(self, args: argparse.Namespace, bench: BenchBed, workdir: Path) -> None:
        self.args, self.bench, self.workdir = args, bench, workdir
        self.persist_dir = workdir / "fleet-persist"
        self.hosts = [(t.name, t.ipv6) for t in bench.targets]

    def argv_env(self, mode: str, report: Path) -> tuple[list[str], dict[str, str]]:
        env = python_env()
        base = [*self.bench.prefix, sys.executable, "-m", "fleet", "run"]
        common = ["-i", str(self.bench.inventory_dir), "--json", str(report), "--no-progress"]
        if mode == "logins":
            return [*base, "noop", "--tasks-dir", str(REPO / "benchmarks" / "tasks"), *common], env
        if mode in WATCH_ROUNDS:
            watch = [*self.bench.prefix, sys.executable, "-m", "fleet", "watch", "-i",
                     str(self.bench.inventory_dir), "--peers", str(self.args.peers), "--rounds",
                     str(WATCH_ROUNDS[mode]), "--every", "0.1", "-q", "--json", str(report),
                     "--history", str(report.with_suffix(".sqlite"))]
            return watch, env
        argv = [*base, "mesh", "--peers", str(self.args.peers), *common]
        if mode == "warm":
            env["FLEET_PERSIST_DIR"] = str(self.persist_dir)
            argv += ["--persist", str(PERSIST_S)]
        elif mode == "sharded":
            argv += ["--cluster", "local", "--shards", str(self.args.shards)]
        return argv, env

    def one(self, mode: str, rundir: Path) -> dict[str, Any]:
        rundir.mkdir(parents=True, exist_ok=True)
        report = rundir / "report.json"
        collect = None
        if mode == "asyncssh-logins":
            from benchmarks.peers import asyncssh_baseline

            ctx = Context(self.bench, "command", commands("command", self.hosts), rundir)
            invocation = asyncssh_baseline.invocation(ctx)
            argv, env, collect = invocation.argv, invocation.env or python_env(), invocation.collect
        else:
            argv, env = self.argv_env(mode, report)
        marker = str(self.persist_dir) if mode == "warm" else None
        sshds = set(self.bench.sshd_pids())
        load_before, machine_before = load1(), machine_cpu_s()
        target_before = tree_cpu_s(sshds)
        measured = run_measured(argv, cwd=REPO, env=env, timeout=self.args.timeout,
                                rss_interval=0.2, stdout_file=rundir / "stdout",
                                background=(lambda: processes_with(marker)) if marker else None)
        machine_s = machine_cpu_s() - machine_before
        target_s = tree_cpu_s(sshds) - target_before
        load_after = load1()
        row: dict[str, Any] = {
            "mode": mode, "wall_s": round(measured.wall_s, 2), "cpu_s": round(measured.cpu_s, 2),
            "rss_tree_mb": round(measured.rss_tree_mb), "rss_one_mb": round(measured.rss_one_mb),
            "target_cpu_s": round(target_s, 2), "machine_cpu_s": round(machine_s, 2),
            "others_cpu_s": round(max(0.0, machine_s - measured.cpu_s - target_s), 2),
            "load_before": load_before, "load_after": load_after,
            "returncode": measured.returncode, "timed_out": measured.timed_out,
            "argv": argv}
        if collect is not None:
            outcome = collect(measured)
            row.update(ok=outcome.ok, expected=len(self.hosts), errors=outcome.errors[:3])
        else:
            row.update(_read_report(report, mode, len(self.hosts), self.args.peers))
        if measured.returncode not in (0, 1) and not row.get("errors"):
            row["errors"] = [measured.stderr.strip()[-300:]]
        time.sleep(self.args.settle)
        return row

    def stop_background(self) -> None:
        """fleet's background process of the warm runs (SIGTERM: it closes every connection)."""
        stop_processes(processes_with(str(self.persist_dir)))


def _read_report(report: Path, mode: str, hosts: int, peers: int) -> dict[str, Any]:
    if mode in WATCH_ROUNDS:
        return _read_rounds(report, hosts * peers)
    try:
        document = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        return {"ok": 0, "expected": hosts if mode == "logins" else hosts * peers,
                "errors": [f"no JSON report: {exc}"]}
    summary = document.get("summary", {})
    run_s = document.get("elapsed_s")  # fleet's runner alone: connect and probe every host
    if mode == "logins":
        errors = [f"{h['name']}: {h['error']}" for h in document.get("hosts", []) if h.get("error")]
        return {"ok": int(summary.get("ok", 0)) + int(summary.get("changed", 0)),
                "expected": hosts, "errors": errors[:3], "run_s": run_s}
    # `unconfigured` hosts (no sit1 on this bed: the stand-in addresses) are measured as usual
    errors = [f"{h['name']}: {h.get('error')}" for h in document.get("hosts", [])
              if h.get("state") == "error"][:3]
    return {"ok": int(summary.get("ok", 0)), "expected": hosts * peers, "run_s": run_s,
            "pairs": int(summary.get("pairs", 0)), "errors": errors,
            "states": {k: v for k, v in summary.items() if isinstance(v, int) and v
                       and k not in ("hosts", "pairs")}}


def _read_rounds(report: Path, expected: int) -> dict[str, Any]:
    """A watch's JSON lines: the last round's counts, and every round's own time."""
    try:
        rounds = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        return {"ok": 0, "expected": expected, "errors": [f"no JSON lines: {exc}"]}
    if not rounds:
        return {"ok": 0, "expected": expected, "errors": ["no round"]}
    counts = rounds[-1]["counts"]
    return {"ok": int(counts.get("ok", 0)), "expected": expected,
            "pairs": int(rounds[-1]["pairs"]), "errors": [],
            "round_s": [r["seconds"] for r in rounds], "logins": rounds[-1]["logins"],
            "states": {k: v for k, v in counts.items() if v}}


def steady_round(rows: list[dict[str, Any]]) -> dict[str, float] | None:
    """A steady watch round's cost, (watch6 - watch1) / 5 by medians: wall, fleet's CPU, the
    targets' CPU and the rest of the machine's."""
    one = [r for r in rows if r["mode"] == "watch1"]
    six = [r for r in rows if r["mode"] == "watch6"]
    if not one or not six:
        return None
    extra = WATCH_ROUNDS["watch6"] - WATCH_ROUNDS["watch1"]
    return {key: round((statistics.median(r[key] for r in six)
                        - statistics.median(r[key] for r in one)) / extra, 3)
            for key in ("wall_s", "cpu_s", "target_cpu_s", "others_cpu_s")}


def summarize(rows: list[dict[str, Any]], modes: list[str]) -> list[dict[str, Any]]:
    out = []
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        if not mine:
            continue

        def med(key: str, mine: list[dict[str, Any]] = mine) -> float:
            return round(statistics.median(r[key] for r in mine), 2)

        out.append({"mode": mode, "runs": len(mine), "wall_median_s": med("wall_s"),
                    "wall_min_s": min(r["wall_s"] for r in mine),
                    "wall_max_s": max(r["wall_s"] for r in mine), "cpu_median_s": med("cpu_s"),
                    "rss_tree_peak_mb": max(r["rss_tree_mb"] for r in mine),
                    "target_cpu_median_s": med("target_cpu_s"),
                    "others_cpu_median_s": med("others_cpu_s"),
                    "loads": [f"{r['load_before']:.1f}-{r['load_after']:.1f}" for r in mine],
                    "ok_min": min(r["ok"] for r in mine), "expected": mine[0]["expected"]})
    return out


def render(summary: list[dict[str, Any]]) -> str:
    head = ["mode", "median s", "min s", "max s", "CPU s", "RSS tree MB", "target CPU s",
            "others CPU s", "OK", "load before-after"]
    table = [head] + [[s["mode"], f"{s['wall_median_s']:.2f}", f"{s['wall_min_s']:.2f}",
                       f"{s['wall_max_s']:.2f}", f"{s['cpu_median_s']:.2f}",
                       str(s["rss_tree_peak_mb"]), f"{s['target_cpu_median_s']:.2f}",
                       f"{s['others_cpu_median_s']:.2f}", f"{s['ok_min']}/{s['expected']}",
                       ", ".join(s["loads"])] for s in summary]
    return text_table(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        say("benchmarks.bigbed: needs root (network namespaces); run as root")
        return 2

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the bed's `with`: everything is torn down

    signal.signal(signal.SIGTERM, terminate)
    from fleet.lab.nsbed import NamespaceBed

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bigbed-")) if own_workdir else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_facts()
    say("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    rows: list[dict[str, Any]] = []
    bed_info: dict[str, Any] = {}
    runner: Runner | None = None
    try:
        started, load_before = time.monotonic(), load1()
        with NamespaceBed(args.hosts, workdir=workdir / "bed", tag=f"bb{os.getpid() % 100000}",
                          say=lambda text: say(f"bed: {text}")) as bed:
            bench = BenchBed(bed, "hub")
            bed_info = {"hosts": args.hosts, "start_s": round(time.monotonic() - started, 1),
                        "load_before": load_before, "load_after": load1(),
                        "description": describe(bench)}
            say(f"{describe(bench)}\nbed: started in {bed_info['start_s']} s "
                f"(load {load_before:.1f} -> {bed_info['load_after']:.1f})")
            runner = Runner(args, bench, workdir)
            try:
                if "warm" in args.modes:  # untimed: starts the background process, logs in
                    row = runner.one("warm", workdir / "warmup")
                    say(f"  warm-up (untimed, --persist logs in) {row['wall_s']:6.2f} s  "
                        f"ok {row['ok']}/{row['expected']}")
                for run in range(args.runs):
                    shift = run % len(args.modes)
                    for mode in args.modes[shift:] + args.modes[:shift]:
                        row = runner.one(mode, workdir / f"run{run + 1}" / mode)
                        row["run"] = run + 1
                        rows.append(row)
                        errors = f"  ! {row['errors'][0]}" if row.get("errors") else ""
                        run_s = f" (runner {row['run_s']:.2f} s)" if row.get("run_s") else ""
                        rounds = (" rounds " + " ".join(f"{r:.2f}" for r in row["round_s"])
                                  if row.get("round_s") else "")
                        say(f"  run {row['run']} {mode:<16} {row['wall_s']:6.2f} s{run_s}  "
                            f"cpu {row['cpu_s']:5.2f} s  rss {row['rss_tree_mb']:5} MB  "
                            f"target {row['target_cpu_s']:5.1f} s  others {row['others_cpu_s']:5.1f} s  "
                            f"ok {row['ok']}/{row['expected']}  load {row['load_before']:.1f}"
                            f"->{row['load_after']:.1f}{rounds}{errors}")
                if args.profile_warm:
                    if not (runner.persist_dir.exists() and "warm" in args.modes):
                        runner.one("warm", workdir / "profile-warmup")
                    argv, env = runner.argv_env("warm", workdir / "profile" / "report.json")
                    (workdir / "profile").mkdir(exist_ok=True)
                    at = argv.index("-m")
                    argv[at:at] = ["-m", "cProfile", "-o", str(args.profile_warm.resolve())]
                    measured = run_measured(argv, cwd=REPO, env=env, timeout=args.timeout,
                                            stdout_file=workdir / "profile" / "stdout")
                    say(f"  profiled warm run (untimed): {measured.wall_s:.2f} s, "
                        f"profile in {args.profile_warm}")
            finally:
                runner.stop_background()
    except KeyboardInterrupt:
        say("benchmarks.bigbed: interrupted; the bed was torn down")
        return 130
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(rows, args.modes)
    print(f"fleet at {args.hosts} real SSH hosts: `fleet run mesh --peers {args.peers}`, "
          f"{args.runs} run(s) of each mode, interleaved")
    print(bed_info.get("description", ""))
    print(f"bed start: {bed_info.get('start_s')} s")
    print(render(summary))
    steady = steady_round(rows)
    if steady is not None:
        print(f"a steady watch round, (watch6 - watch1) / 5: wall {steady['wall_s']:.2f} s, fleet CPU "
              f"{steady['cpu_s']:.2f} s, targets' CPU {steady['target_cpu_s']:.2f} s, the rest "
              f"{steady['others_cpu_s']:.2f} s")
    failures = [s for s in summary if s["ok_min"] != s["expected"]]
    for s in failures:
        print(f"NOT ALL OK: {s['mode']}: {s['ok_min']}/{s['expected']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "bed": bed_info,
                                         "options": {k: (str(v) if isinstance(v, Path) else v)
                                                     for k, v in vars(args).items()},
                                         "summary": summary, "steady_watch_round": steady,
                                         "runs": rows}, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
