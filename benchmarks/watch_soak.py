"""SIMULATION soak of `fleet watch`: many rounds in one process, its memory read after each.

    python -m benchmarks.watch_soak [--sizes 10,20] [--rounds 200] [--every 0.05] [--peers K]
                                    [--keep DURATION] [--profile] [--json FILE]

For each size N it writes an inventory of N hosts on one simulated SSH server
(benchmarks/simserver.py: real SSH, generated fping replies, no packets sent; see its docstring),
runs the real CLI as a child process,

    python -m fleet watch -i INV --history DB --rounds R --every E --count 2 --json ROUNDS.jsonl
                          [--peers K] [--keep DURATION]

and, each time a round's JSON line appears (written after the round is in the history), reads
the watcher's resident memory (VmRSS in /proc/PID/status), CPU time (user+sys) and the history's
size on disk (the file and its WAL). It reports per size: the rounds done, the cost of a round
(its wall time as fleet measured it, median; the watcher's CPU per round), RSS after the first
round, settled (the median over the second half) and after the last, the largest, and the slope
of RSS over the second half of the rounds (KB per round: flat memory is ~0), the logins (one per
host when every connection was kept), the history's size at the end and its largest. --keep
is the watch's own (default: not given, so the watch's 7d); a short one (e.g. 30s) makes
retention delete rounds during the soak, and the history's largest size shows it bounded.
--peers K samples the mesh (N*K pairs) as `fleet watch --peers` does. --profile runs the
watcher under cProfile (for all its rounds: give few) and prints the top of the profile.

The server runs in a process of its own, so the figures are the watcher's alone; both share this
machine's cores. Exit code 0, or 1 when a watch failed or a round was not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.simulate import (
    LABEL,
    REPO,
    SimServerProcess,
    loadavg,
    process_cpu,
    profile_summary,
    write_inventory,
)


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def slope_kb_per_round(values: list[float]) -> float:
    """Least-squares slope of the second half of `values` (MB), in KB per round."""
    half = values[len(values) // 2:]
    if len(half) < 2:
        return 0.0
    xs = range(len(half))
    mx, my = statistics.fmean(xs), statistics.fmean(half)
    den = sum((x - mx) ** 2 for x in xs)
    return 1024 * sum((x - mx) * (y - my) for x, y in zip(xs, half)) / den


def history_mb(history: Path) -> float:
    """The history on disk: the SQLite file and its write-ahead log (MB)."""
    total = 0
    for path in (history, history.with_name(history.name + "-wal")):
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total / 1e6


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def between_rounds_ms(samples: list[dict[str, Any]]) -> list[float]:
    """From a round's end (as fleet stamps it: the probes done and judged, the round's states
    taken) to the next round's start: the watcher's own work after that (the changes, the
    history's transaction with its retention, the round's line) plus the wait for --every,
    none when --every is shorter than a round."""
    return [1000 * (_unix(b["started"]) - _unix(a["ended"])) for a, b in zip(samples, samples[1:])]


def pairs_of(n: int, peers: int | None) -> int:
    return n * (n - 1) if peers is None or peers >= n - 1 else n * peers


def soak(n: int, rounds: int, every: float, server: SimServerProcess, workdir: Path, *,
         peers: int | None = None, keep: str | None = None,
         profile: bool = False) -> dict[str, Any]:
    inventory = write_inventory(workdir / f"inv-{n}", n, server.port, workdir / "keys")
    history = workdir / f"history-{n}.sqlite"
    lines = workdir / f"rounds-{n}.jsonl"
    prof_path = workdir / f"watch-{n}.prof"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    extra = ([] if peers is None else ["--peers", str(peers)]) + ([] if keep is None else ["--keep", keep])
    profiler = ["-m", "cProfile", "-o", str(prof_path)] if profile else []
    load_before = loadavg()
    server_cpu = server.cpu()
    started = time.monotonic()
    watcher = subprocess.Popen(
        [sys.executable, *profiler, "-m", "fleet", "watch", "-i", str(inventory),
         "--history", str(history),
         "--rounds", str(rounds), "--every", f"{every:g}", "--count", "2", "--interval", "0.01",
         "--json", str(lines), "-q", "--connect-workers", "20", *extra],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[dict[str, Any]] = []
    seen = 0
    try:
        while True:
            text = lines.read_text() if lines.exists() else ""
            found = text.count("\n")
            if found > seen:
                rss, cpu = rss_mb(watcher.pid), process_cpu(watcher.pid)
                db_mb = history_mb(history)
                for line in text.splitlines()[seen:found]:
                    row = json.loads(line)
                    samples.append({"round": row["round"], "status": row["status"],
                                    "logins": row["logins"], "rss_mb": rss, "cpu_s": cpu,
                                    "seconds": row["seconds"], "history_mb": db_mb,
                                    "started": row["started"], "ended": row["ended"]})
                seen = found
            if watcher.poll() is not None:
                break
            time.sleep(0.005)
        _, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    wall = time.monotonic() - started
    rss = [s["rss_mb"] for s in samples if s["rss_mb"] is not None]
    cpu = [s["cpu_s"] for s in samples]
    sizes = [s["history_mb"] for s in samples]
    gaps = between_rounds_ms(samples)
    return {
        "hosts": n, "peers": peers, "keep": keep or "7d (default)",
        "pairs": pairs_of(n, peers), "rounds": len(samples), "exit_code": watcher.returncode,
        "not_ok_rounds": sum(1 for s in samples if s["status"] != "ok"),
        "round_s_median": statistics.median(s["seconds"] for s in samples) if samples else None,
        "cpu_ms_per_round": (1000 * (cpu[-1] - cpu[0]) / (len(cpu) - 1)) if len(cpu) > 1 else None,
        "between_rounds_ms_median": statistics.median(gaps) if gaps else None,
        "round_s_p90": statistics.quantiles([s["seconds"] for s in samples], n=10)[-1]
        if len(samples) > 1 else None,
        "rss_first_mb": rss[0] if rss else None, "rss_last_mb": rss[-1] if rss else None,
        "rss_settled_mb": statistics.median(rss[len(rss) // 2:]) if rss else None,
        "rss_max_mb": max(rss) if rss else None,
        "rss_slope_kb_per_round": slope_kb_per_round(rss),
        "rss_every_tenth_mb": [round(rss[min(len(rss) - 1, i * len(rss) // 10)], 1)
                               for i in range(11)] if rss else [],
        "logins": sum(s["logins"] for s in samples), "wall_s": wall,
        "server_cpu_s": server.cpu() - server_cpu,
        "load_before": load_before, "load_after": loadavg(),
        "history_mb": history_mb(history), "history_max_mb": max(sizes) if sizes else None,
        "profile": profile_summary(prof_path) if profile and prof_path.exists() else [],
        "stderr": err[-2000:], "samples": samples,
    }


def table(results: list[dict[str, Any]]) -> list[str]:
    head = ("| hosts | pairs | rounds | round (median) | watcher CPU / round | RSS after round 1 | "
            "RSS settled | RSS after last | RSS max | RSS slope (2nd half) | logins | --keep | "
            "history (end / max) |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in results:
        if r["rounds"] < 2:  # nothing to tell: the failure is printed below the table
            lines.append(f"| {r['hosts']} | {r['pairs']} | {r['rounds']} |" + " - |" * 10)
            continue
        lines.append(
            f"| {r['hosts']} | {r['pairs']} | {r['rounds']} | {r['round_s_median'] * 1000:.0f} ms | "
            f"{r['cpu_ms_per_round']:.0f} ms | {r['rss_first_mb']:.1f} MB | "
            f"{r['rss_settled_mb']:.1f} MB | {r['rss_last_mb']:.1f} MB | "
            f"{r['rss_max_mb']:.1f} MB | {r['rss_slope_kb_per_round']:+.2f} KB/round | {r['logins']} | "
            f"{r['keep']} | {r['history_mb']:.1f} / {r['history_max_mb']:.1f} MB |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.watch_soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,20", help="host counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--every", type=float, default=0.05, help="fleet watch --every (seconds)")
    parser.add_argument("--peers", type=int, metavar="K",
                        help="fleet watch --peers K: each host probes K peers (default: full mesh)")
    parser.add_argument("--keep", metavar="DURATION",
                        help="fleet watch --keep (default: not given, the watch's own 7d)")
    parser.add_argument("--profile", action="store_true",
                        help="run the watcher under cProfile and print the top of its profile")
    parser.add_argument("--reply-ms", type=float, default=1.0, help="the server's stand-in ping round")
    parser.add_argument("--json", type=Path, help="every figure and every round's sample as JSON")
    options = parser.parse_args(argv)
    sizes = [int(s) for s in options.sizes.split(",") if s]
    print(LABEL, file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="fleet-watch-soak-") as tmp:
        workdir = Path(tmp)
        server = SimServerProcess(workdir, "fixed", options.reply_ms, max(sizes))
        try:
            for n in sizes:
                print(f"{n} hosts: {options.rounds} rounds ...", file=sys.stderr, flush=True)
                results.append(soak(n, options.rounds, options.every, server, workdir,
                                    peers=options.peers, keep=options.keep,
                                    profile=options.profile))
        finally:
            server.stop()
    print("\n".join(table(results)))
    for r in (r for r in results if r["rounds"] >= 2):
        print(f"{r['hosts']} hosts: wall {r['wall_s']:.0f} s, round p90 {r['round_s_p90'] or 0:.3f} s, "
              f"between rounds (median) {r['between_rounds_ms_median'] or 0:.0f} ms, "
              f"server CPU {r['server_cpu_s']:.0f} s, load {r['load_before'][0]:.1f} -> "
              f"{r['load_after'][0]:.1f}; RSS every tenth of the rounds (MB): "
              f"{', '.join(f'{v:.1f}' for v in r['rss_every_tenth_mb'])}")
        for line in r["profile"]:
            print(line)
    failed = [r for r in results
              if r["exit_code"] != 0 or r["not_ok_rounds"] or r["rounds"] != options.rounds]
    for r in failed:
        print(f"{r['hosts']} hosts: exit {r['exit_code']}, {r['rounds']} rounds, "
              f"{r['not_ok_rounds']} not ok\n{r['stderr']}", file=sys.stderr)
    if options.json is not None:
        options.json.write_text(json.dumps({"label": LABEL, "rounds": options.rounds,
                                            "every_s": options.every, "peers": options.peers,
                                            "keep": options.keep, "results": results}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
