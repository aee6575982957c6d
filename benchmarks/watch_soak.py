"""SIMULATION soak of `fleet watch`: many rounds in one process, its memory read after each.

    python -m benchmarks.watch_soak [--sizes 10,20] [--rounds 200] [--every 0.05] [--json FILE]

For each size N it writes an inventory of N hosts on one simulated SSH server
(benchmarks/simserver.py: real SSH, generated fping replies, no packets sent; see its docstring),
runs the real CLI as a child process,

    python -m fleet watch -i INV --history DB --rounds R --every E --count 2 --json ROUNDS.jsonl

and, each time a round's JSON line appears (written after the round is in the history), reads
the watcher's resident memory (VmRSS in /proc/PID/status) and CPU time (user+sys). It reports per
size: the rounds done, the cost of a round (its wall time as fleet measured it, median; the
watcher's CPU per round), RSS after the first and the last round, the largest, and the slope of
RSS over the second half of the rounds (KB per round: flat memory is ~0), the logins (one per
host when every connection was kept) and the history's size.

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
from pathlib import Path
from typing import Any

from benchmarks.simulate import LABEL, REPO, SimServerProcess, process_cpu, write_inventory


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


def soak(n: int, rounds: int, every: float, server: SimServerProcess, workdir: Path) -> dict[str, Any]:
    inventory = write_inventory(workdir / f"inv-{n}", n, server.port, workdir / "keys")
    history = workdir / f"history-{n}.sqlite"
    lines = workdir / f"rounds-{n}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "fleet", "watch", "-i", str(inventory), "--history", str(history),
         "--rounds", str(rounds), "--every", f"{every:g}", "--count", "2", "--interval", "0.01",
         "--json", str(lines), "-q", "--connect-workers", "20"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[dict[str, Any]] = []
    seen = 0
    try:
        while True:
            text = lines.read_text() if lines.exists() else ""
            found = text.count("\n")
            if found > seen:
                rss, cpu = rss_mb(watcher.pid), process_cpu(watcher.pid)
                for line in text.splitlines()[seen:found]:
                    row = json.loads(line)
                    samples.append({"round": row["round"], "status": row["status"],
                                    "logins": row["logins"], "rss_mb": rss, "cpu_s": cpu,
                                    "seconds": row["seconds"]})
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
    return {
        "hosts": n, "pairs": n * (n - 1), "rounds": len(samples), "exit_code": watcher.returncode,
        "not_ok_rounds": sum(1 for s in samples if s["status"] != "ok"),
        "round_s_median": statistics.median(s["seconds"] for s in samples) if samples else None,
        "cpu_ms_per_round": (1000 * (cpu[-1] - cpu[0]) / (len(cpu) - 1)) if len(cpu) > 1 else None,
        "rss_first_mb": rss[0] if rss else None, "rss_last_mb": rss[-1] if rss else None,
        "rss_max_mb": max(rss) if rss else None,
        "rss_slope_kb_per_round": slope_kb_per_round(rss),
        "logins": sum(s["logins"] for s in samples), "wall_s": wall,
        "history_mb": history.stat().st_size / 1e6 if history.exists() else None,
        "stderr": err[-2000:], "samples": samples,
    }


def table(results: list[dict[str, Any]]) -> list[str]:
    head = ("| hosts | pairs | rounds | round (median) | watcher CPU / round | RSS after round 1 | "
            "RSS after last | RSS max | RSS slope (2nd half) | logins | history |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in results:
        lines.append(
            f"| {r['hosts']} | {r['pairs']} | {r['rounds']} | {r['round_s_median'] * 1000:.0f} ms | "
            f"{r['cpu_ms_per_round']:.0f} ms | {r['rss_first_mb']:.1f} MB | {r['rss_last_mb']:.1f} MB | "
            f"{r['rss_max_mb']:.1f} MB | {r['rss_slope_kb_per_round']:+.2f} KB/round | {r['logins']} | "
            f"{r['history_mb']:.1f} MB |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.watch_soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,20", help="host counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--every", type=float, default=0.05, help="fleet watch --every (seconds)")
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
                results.append(soak(n, options.rounds, options.every, server, workdir))
        finally:
            server.stop()
    print("\n".join(table(results)))
    failed = [r for r in results
              if r["exit_code"] != 0 or r["not_ok_rounds"] or r["rounds"] != options.rounds]
    for r in failed:
        print(f"{r['hosts']} hosts: exit {r['exit_code']}, {r['rounds']} rounds, "
              f"{r['not_ok_rounds']} not ok\n{r['stderr']}", file=sys.stderr)
    if options.json is not None:
        options.json.write_text(json.dumps({"label": LABEL, "rounds": options.rounds,
                                            "every_s": options.every, "results": results}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
