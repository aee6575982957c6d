"""SIMULATION of fleet's control plane at 100 to 2,000 hosts: one control node, one fake server.

    python -m benchmarks.simulate [--sizes 100,500,1000,2000] [--peers K] [--runs 1] [--json FILE]

For each size N it writes an inventory of N hosts (each at its own 127.1.x.y:PORT of one simulated SSH
server, benchmarks/simserver.py, with distinct data.ipv4 10.x.y.z), runs the real CLI,
`python -m fleet run mesh -i INV --json OUT --connect-workers 20`, as a child process and measures:

    wall      start of the fleet process to its exit (start-up, inventory, SSH, parsing, report, JSON)
    run       fleet's own elapsed_s from its JSON (connect + probe of every host, the runner only)
    cpu       user+sys of the fleet process (os.wait4 rusage)
    rss       peak RSS of the fleet process: VmHWM from /proc, sampled every 50 ms (ru_maxrss from
              wait4 is also recorded; it is a ceiling, as it includes this driver's pages at fork)
    server    CPU the simulated server used during the run (its own process)
    pairs ok  from the report's summary; json MB the size of the --json report

What is real: fleet's CLI, inventory loading, asyncssh client (key exchange, ciphers, auth, host key
checks), the runner, the probe script, the parsing, the matrix, the table and the JSON. What is
not: the hosts. One in-process asyncssh server answers every host's probe with generated replies
(a configured sit1, fping present, every reply received) and sends no packets; it only waits for
the ping round (see --round). The server runs as a separate process, so fleet's CPU and memory
are measured alone, but both share this machine's cores: the load average is recorded per run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LABEL = ("SIMULATION: a loopback asyncssh server answers every host's probe with generated "
         "replies; no packets are sent")
PREFIX = "fd00:5efe:51::/64"
DEFAULT_SIZES = (100, 500, 1000, 2000)
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def sim_ipv4(i: int) -> str:
    """A distinct private IPv4 for host i: 10.a.b.c with c in 1..254 (no .0, no .255)."""
    return f"10.{i // (254 * 256)}.{(i // 254) % 256}.{i % 254 + 1}"


def host_name(i: int, n: int) -> str:
    return f"h{i + 1:0{max(4, len(str(n)))}d}"


def write_inventory(directory: Path, n: int, port: int, keys: Path) -> Path:
    """hosts.yaml (N hosts, each at its own loopback address on PORT, with the user that tells the
    server which host it is) and defaults.yaml (prefix, client key, known_hosts with the server's
    key)."""
    from benchmarks.simserver import sim_address, sim_user
    from fleet.inventory import write_inventory as write_nornir_inventory

    hosts = {host_name(i, n): {"hostname": sim_address(i), "port": port, "username": sim_user(ipv4),
                               "data": {"ipv4": ipv4}}
             for i, ipv4 in ((i, sim_ipv4(i)) for i in range(n))}
    return write_nornir_inventory(directory, hosts, {
        "data": {"isatap_prefix": PREFIX},
        "connection_options": {"asyncssh": {"extras": {
            "client_keys": [str(keys / "client_key")], "known_hosts": str(keys / "known_hosts")}}}})


def loadavg() -> tuple[float, float, float]:
    with open("/proc/loadavg", encoding="ascii") as f:
        one, five, fifteen = f.read().split()[:3]
    return float(one), float(five), float(fifteen)


def machine_busy() -> float:
    """CPU-seconds every process on this machine has used since boot (/proc/stat, idle and iowait
    left out)."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def process_cpu(pid: int) -> float:
    """user+sys seconds of a live process (its own threads)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _tree_rss_mb(root: int) -> float:
    """RSS of `root` and every process below it (a sharded run's cluster workers), now."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    pages, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += parents.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as f:
                pages += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _SimServerChild:
    """One benchmarks.simserver process: started, and stopped by its PID, whatever happens."""

    def __init__(self, keys: Path, log: Path, round_model: str, reply_ms: float, addresses: int,
                 first: int = 0, port: int = 0, keys_from: Path | None = None) -> None:
        self.keys = keys
        self.log = open(log, "w", encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
        more = ["--first", str(first), "--port", str(port)] + (
            [] if keys_from is None else ["--keys-from", str(keys_from)])
        # Its own session: a Ctrl-C reaches the driver, which stops the server itself. Its stdin
        # is a pipe from us: if this driver dies, the server sees EOF and stops.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.simserver", "--workdir", str(keys),
             "--prefix", PREFIX, "--round", round_model, "--reply-ms", f"{reply_ms:g}",
             "--addresses", str(addresses), *more],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd=REPO, env=env,
            start_new_session=True, text=True)
        self.port = 0
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"simserver did not start: {line!r}; see {log}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self.log.close()


def hosts_per_server_process() -> int:
    """What one simserver process can play: it holds two files a host (a listening socket and a
    connection) and may open as many as the hard limit allows."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else max(1, (hard - 256) // 2)


class SimServerProcess:
    """The simulated server for `addresses` hosts, on one port with one host key: one
    benchmarks.simserver process, or as many as it takes for each to stay within the open-file
    limit (`processes` forces a count). Its files are in WORKDIR/keys (client_key, known_hosts
    for every address), its logs WORKDIR/simserver*.log."""

    def __init__(self, workdir: Path, round_model: str, reply_ms: float, addresses: int,
                 processes: int | None = None) -> None:
        self.workdir = workdir
        count = processes or math.ceil(addresses / hosts_per_server_process())
        per = math.ceil(addresses / count)  # balanced: 50,000 hosts are 6 x 8,334, not 5 x 9,872 + 640
        keys = workdir / "keys"
        self.children: list[_SimServerChild] = []
        try:
            self.children.append(_SimServerChild(keys, workdir / "simserver.log", round_model,
                                                 reply_ms, min(per, addresses)))
            for k, first in enumerate(range(per, addresses, per), start=1):
                self.children.append(_SimServerChild(
                    workdir / f"keys-{k}", workdir / f"simserver-{k}.log", round_model, reply_ms,
                    min(per, addresses - first), first=first, port=self.port, keys_from=keys))
            with open(keys / "known_hosts", "a", encoding="utf-8") as known:
                for child in self.children[1:]:
                    known.write((child.keys / "known_hosts").read_text(encoding="utf-8"))
        except BaseException:
            self.stop()
            raise

    @property
    def port(self) -> int:
        return self.children[0].port

    @property
    def pid(self) -> int:
        """The first process's (the only one up to hosts_per_server_process())."""
        return self.children[0].proc.pid

    def cpu(self) -> float:
        """CPU seconds of every process of the server so far."""
        return sum(process_cpu(child.proc.pid) for child in self.children)

    def stop(self) -> None:
        for child in self.children:
            child.stop()


@dataclass
class Run:
    hosts: int
    peers: int | None
    pairs_expected: int
    returncode: int
    wall_s: float
    cpu_s: float
    rss_mb: float
    ru_maxrss_mb: float
    server_cpu_s: float
    daemon_cpu_s: float | None
    load_before: float
    load_after: float
    others_cpu_pct: float = 0.0
    pairs: int = 0
    ok: int = 0
    hosts_ok: int = 0
    fleet_elapsed_s: float | None = None
    json_mb: float = 0.0
    headline: str = ""
    probe: str = ""
    error: str | None = None
    profile: list[str] = field(default_factory=list)
    tree_rss_mb: float = 0.0  # peak of fleet's and its children's RSS summed (cluster workers)
    cluster: str | None = None
    shards: int | None = None

    @property
    def all_ok(self) -> bool:
        return (self.returncode == 0 and self.pairs == self.pairs_expected == self.ok
                and self.hosts_ok == self.hosts)


def fleet_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}


class PersistDaemon:
    """fleet's background process for --persist, started here (under cProfile with --profile) so
    that its CPU is measured and it is stopped at the end: the runs find it by its directory."""

    def __init__(self, workdir: Path, profile: bool) -> None:
        self.directory = workdir / "persist"
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.env = {"FLEET_PERSIST_DIR": str(self.directory)}
        self.prof_path = workdir / "persist-daemon.prof"
        command = [sys.executable] + (["-m", "cProfile", "-o", str(self.prof_path)]
                                      if profile else [])
        command += ["-m", "fleet.ssh.persist.daemon", "--dir", str(self.directory),
                    "--idle", "600"]
        self.process = subprocess.Popen(command, cwd=REPO, env=fleet_env() | self.env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=open(workdir / "persist-daemon.err", "wb"))
        socket_path = self.directory / "persist.sock"
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fleet's persist daemon did not start; see "
                                   f"{workdir / 'persist-daemon.err'}")
            time.sleep(0.05)

    def cpu(self) -> float:
        return process_cpu(self.process.pid)

    def stop(self) -> list[str]:
        """Stop it (SIGTERM: it closes its connections) and return its profile, if any."""
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return profile_summary(self.prof_path) if self.prof_path.exists() else []


def _report_parts(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, tail) of fleet's streamed mesh JSON without loading the pairs: the header ends at
    `"pairs": [`, the tail (summary, diagnosis, interrupted, elapsed_s) starts at `"summary"`."""
    marker = b',\n  "pairs": ['
    head = bytearray()
    with open(path, "rb") as f:
        while marker not in head:
            chunk = f.read(1 << 20)
            if not chunk:
                raise ValueError("no pairs in the report")
            head += chunk
        header = json.loads(bytes(head[:head.index(marker)]) + b"\n}")
        size = os.path.getsize(path)
        f.seek(max(0, size - (1 << 20)))
        tail = f.read().decode("utf-8", errors="replace")
    at = tail.rfind('\n  "summary": ')  # then the diagnosis (a list too), interrupted, elapsed_s
    return header, json.loads("{" + tail[at:])


def run_fleet(n: int, peers: int | None, server: SimServerProcess, workdir: Path, *,
              connect_workers: int, workers: int | None, keep_json: bool,
              profile: bool, timeout: float, nofile: int | None = None,
              persist: PersistDaemon | None = None,
              cluster: str | None = None, shards: int | None = None) -> Run:
    inventory = write_inventory(workdir / f"inv-{n}", n, server.port, server.workdir / "keys")
    out = workdir / f"mesh-{n}{'' if peers is None else f'-k{peers}'}.json"
    stdout_path, stderr_path = out.with_suffix(".out"), out.with_suffix(".err")
    fleet = ["-m", "fleet", "run", "mesh", "-i", str(inventory), "--json", str(out),
             "--connect-workers", str(connect_workers), "--no-progress"]
    if workers is not None:
        fleet += ["--workers", str(workers)]
    if peers is not None:
        fleet += ["--peers", str(peers)]
    if persist is not None:
        fleet += ["--persist", "600"]
    fleet += ["--cluster", cluster or "no"] + ([] if shards is None else ["--shards", str(shards)])
    prof_path = out.with_suffix(".prof")
    command = [sys.executable] + (["-m", "cProfile", "-o", str(prof_path)] if profile else []) + fleet
    env = fleet_env() | (persist.env if persist is not None else {})
    daemon_cpu = persist.cpu() if persist is not None else 0.0
    expected = n * (n - 1) if peers is None or peers >= n - 1 else n * peers
    load_before = loadavg()[0]
    server_cpu = server.cpu()
    busy = machine_busy()
    hwm, tree = [0.0], [0.0]
    with open(stdout_path, "w") as so, open(stderr_path, "w") as se:
        started = time.monotonic()
        limit = None
        if nofile is not None:  # fleet's open-file limit, as a stock `ulimit -n` would have it
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))  # noqa: E731
        child = subprocess.Popen(command, stdout=so, stderr=se, stdin=subprocess.DEVNULL,
                                 cwd=REPO, env=env, preexec_fn=limit)
        done = threading.Event()

        def sample() -> None:
            ticks = 0
            while not done.wait(0.05):
                value = _vm_hwm_mb(child.pid)
                if value is not None:
                    hwm[0] = max(hwm[0], value)
                ticks += 1
                if ticks % 4 == 0:  # the whole tree every 0.2 s (it reads every /proc entry)
                    tree[0] = max(tree[0], _tree_rss_mb(child.pid))

        def kill_late() -> None:
            if not done.wait(timeout):
                try:
                    os.kill(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        threads = [threading.Thread(target=sample, daemon=True),
                   threading.Thread(target=kill_late, daemon=True)]
        for t in threads:
            t.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            # Ctrl-C or anything else: fleet must not outlive us.
            try:
                os.kill(child.pid, signal.SIGKILL)
                os.waitpid(child.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            raise
        finally:
            done.set()
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    run = Run(hosts=n, peers=peers, pairs_expected=expected, returncode=child.returncode,
              wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, rss_mb=hwm[0],
              ru_maxrss_mb=usage.ru_maxrss / 1024,
              server_cpu_s=server.cpu() - server_cpu,
              daemon_cpu_s=persist.cpu() - daemon_cpu if persist is not None else None,
              load_before=load_before, load_after=loadavg()[0],
              tree_rss_mb=max(tree[0], hwm[0]), cluster=cluster, shards=shards)
    # What everything else on the machine (another benchmark, say) used meanwhile, as a share of
    # all its CPUs: above a few percent, the numbers of this run are disturbed.
    others = machine_busy() - busy - run.cpu_s - run.server_cpu_s - (run.daemon_cpu_s or 0.0)
    run.others_cpu_pct = max(0.0, 100 * others / (wall * (os.cpu_count() or 1)))
    text = stdout_path.read_text(encoding="utf-8", errors="replace")
    run.headline = next((line for line in text.splitlines() if line.startswith("mesh ")), "")
    try:
        header, tail = _report_parts(out)
        run.pairs, run.ok = tail["summary"]["pairs"], tail["summary"]["ok"]
        run.fleet_elapsed_s = tail.get("elapsed_s")
        run.hosts_ok = sum(1 for h in header["hosts"] if h["state"] == "ok")
        run.probe = header["probe"]["method"]
        run.json_mb = os.path.getsize(out) / 1e6
    except (OSError, ValueError, KeyError) as exc:
        err = stderr_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        run.error = f"no usable JSON report ({exc}); fleet exit {run.returncode}" + (
            f": {err[-1]}" if err else "")
    if not keep_json:
        out.unlink(missing_ok=True)
    if profile and prof_path.exists():
        run.profile = profile_summary(prof_path)
    return run


def profile_summary(path: Path, top: int = 25) -> list[str]:
    import io
    import pstats
    lines: list[str] = []
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).sort_stats(key).print_stats(top)
        lines.append(f"--- cProfile, top {top} by {key} ---")
        lines += [line for line in buf.getvalue().splitlines() if line.strip()][-(top + 1):]
    return lines


def _median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x: (a, b, r^2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return my, 0.0, 1.0
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    return a, b, 1.0 if ss_tot == 0 else 1 - ss_res / ss_tot


def table(rows: list[Run]) -> list[str]:
    head = ["N", "pairs", "ok", "wall s", "run s", "per-host ms", "CPU s", "daemon CPU s",
            "peak RSS MB", "tree MB", "MB/1k pairs", "server CPU s", "JSON MB", "others CPU %",
            "load 1m"]
    body = []
    for r in rows:
        body.append([str(r.hosts), str(r.pairs_expected), f"{r.ok}" + ("" if r.all_ok else " !"),
                     f"{r.wall_s:.2f}",
                     "-" if r.fleet_elapsed_s is None else f"{r.fleet_elapsed_s:.2f}",
                     f"{1000 * r.wall_s / r.hosts:.1f}", f"{r.cpu_s:.2f}",
                     "-" if r.daemon_cpu_s is None else f"{r.daemon_cpu_s:.2f}", f"{r.rss_mb:.0f}",
                     f"{r.tree_rss_mb:.0f}",
                     f"{1000 * r.rss_mb / max(1, r.pairs_expected):.3f}",
                     f"{r.server_cpu_s:.2f}", f"{r.json_mb:.1f}", f"{r.others_cpu_pct:.0f}",
                     f"{r.load_before:.2f}>{r.load_after:.2f}"])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    return ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in [head, *body]]


def linearity(rows: list[Run]) -> list[str]:
    """Per step: ratios of N, pairs and each metric, and the log-log exponent vs N (1: linear in
    hosts, 2: linear in pairs); then least-squares fits against N and against pairs."""
    rows = sorted(rows, key=lambda r: r.hosts)
    if len(rows) < 2:
        return []
    metrics = {"wall": lambda r: r.wall_s, "cpu": lambda r: r.cpu_s, "rss": lambda r: r.rss_mb}
    lines = ["step          N x   pairs x   wall x (exp)   CPU x (exp)    RSS x (exp)"]
    for a, b in zip(rows, rows[1:]):
        nx = b.hosts / a.hosts
        cells = []
        for get in metrics.values():
            ratio = get(b) / get(a) if get(a) > 0 else float("nan")
            exponent = math.log(ratio) / math.log(nx) if ratio > 0 and nx > 1 else float("nan")
            cells.append(f"{ratio:6.2f} ({exponent:4.2f})")
        px = b.pairs_expected / max(1, a.pairs_expected)
        lines.append(f"{a.hosts:>5}->{b.hosts:<5} {nx:5.2f}  {px:7.2f}"
                     f"   {cells[0]}  {cells[1]}  {cells[2]}")
    lines.append("(exp = log(metric ratio) / log(N ratio): ~1 grows with hosts, ~2 with pairs)")
    if len(rows) >= 3:
        for name, get in metrics.items():
            ys = [get(r) for r in rows]
            _, bn, r2n = _fit([r.hosts for r in rows], ys)
            a, bp, r2p = _fit([r.pairs_expected for r in rows], ys)
            unit = {"wall": "s", "cpu": "s", "rss": "MB"}[name]
            lines.append(f"fit {name:<4}: {bn * 1000:9.3f} {unit}/1k hosts (r2 {r2n:.3f});  "
                         f"{a:8.2f} {unit} + {bp * 1e6:8.3f} {unit}/1M pairs (r2 {r2p:.3f})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate", description=LABEL)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="host counts, comma-separated (default 100,500,1000,2000)")
    parser.add_argument("--peers", type=int, default=None, metavar="K",
                        help="sampled mesh: each host probes K peers (pairs = N*K); default full")
    parser.add_argument("--runs", type=int, default=1, help="runs per size; the median is shown")
    parser.add_argument("--json", metavar="FILE", help="write every measurement as JSON")
    parser.add_argument("--connect-workers", type=int, default=20)
    parser.add_argument("--workers", type=int, default=None,
                        help="fleet --workers (default: fleet's own default)")
    parser.add_argument("--round", choices=("fixed", "fping", "none"), default="fixed",
                        help="the server's stand-in for the ping round (see benchmarks/simserver.py)")
    parser.add_argument("--reply-ms", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="kill a fleet run after this many seconds (default 900)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep inventories, outputs and logs here (default: a temp dir, removed)")
    parser.add_argument("--keep-json", action="store_true", help="keep fleet's JSON reports")
    parser.add_argument("--nofile", type=int, default=None, metavar="N",
                        help="run fleet with this soft open-file limit (e.g. 1024, a common "
                             "default); by default fleet gets the hard limit")
    parser.add_argument("--cluster", default=None, metavar="local|ADDRESS|no",
                        help="fleet --cluster: shard each run (default: no, one process)")
    parser.add_argument("--shards", type=int, default=None, metavar="N",
                        help="fleet --shards (with --cluster local: one per core by default)")
    parser.add_argument("--server-processes", type=int, default=None, metavar="N",
                        help="simserver processes (default: as few as the open-file limit allows, "
                             "two files a host each)")
    parser.add_argument("--profile", action="store_true",
                        help="run fleet under cProfile (slower) and print its top functions")
    parser.add_argument("--persist", action="store_true",
                        help="warm runs: fleet --persist 600 with a background process started "
                             "here; one untimed run per size logs in first; its CPU during each "
                             "run is the 'daemon CPU s' column")
    options = parser.parse_args(argv)
    sizes = [int(s) for s in options.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 2:
        parser.error("--sizes: at least 2 hosts each")

    temp = None
    if options.workdir is None:
        temp = tempfile.TemporaryDirectory(prefix="fleet-sim-")
        workdir = Path(temp.name)
    else:
        workdir = options.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    # Every host's connection stays open for the whole run (fleet pools them): 2 fds a host here.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    round_text = {"fixed": "(count-1) x period + reply", "fping": "fping pacing model",
                  "none": "none"}[options.round]
    print(LABEL)
    processes = options.server_processes or math.ceil(max(sizes) / hosts_per_server_process())
    server_text = "one process" if processes == 1 else f"{processes} processes"
    print(f"server: {server_text}, round stand-in {options.round} ({round_text}, reply "
          f"{options.reply_ms:g} ms); fleet: --connect-workers {options.connect_workers}"
          f"{'' if options.workers is None else f' --workers {options.workers}'}"
          f" --cluster {options.cluster or 'no'}"
          f"{'' if options.shards is None else f' --shards {options.shards}'}; "
          f"mesh: {'full' if options.peers is None else f'--peers {options.peers}'}"
          f"{'; warm (--persist)' if options.persist else ''}; "
          f"{os.cpu_count()} CPUs; load {' '.join(f'{x:.2f}' for x in loadavg())}", flush=True)
    server = None
    persist: PersistDaemon | None = None
    runs: list[Run] = []
    interrupted = False
    try:
        server = SimServerProcess(workdir, options.round, options.reply_ms, max(sizes),
                                  options.server_processes)
        if options.persist:
            persist = PersistDaemon(workdir, options.profile)
        for n in sizes:
            if persist is not None:  # logs in to every host; not timed
                run_fleet(n, options.peers, server, workdir,
                          connect_workers=options.connect_workers, workers=options.workers,
                          keep_json=False, profile=False, timeout=options.timeout,
                          nofile=options.nofile, persist=persist)
            for k in range(options.runs):
                run = run_fleet(n, options.peers, server, workdir,
                                connect_workers=options.connect_workers, workers=options.workers,
                                keep_json=options.keep_json, profile=options.profile,
                                timeout=options.timeout, nofile=options.nofile, persist=persist,
                                cluster=options.cluster, shards=options.shards)
                runs.append(run)
                state = "all ok" if run.all_ok else f"NOT OK: {run.error or run.headline}"
                print(f"  N={n} run {k + 1}/{options.runs}: {run.wall_s:.2f} s wall, "
                      f"{run.cpu_s:.2f} s CPU, {run.rss_mb:.0f} MB peak, {run.ok}/{run.pairs_expected}"
                      f" pairs ok, load {run.load_before:.2f}, others {run.others_cpu_pct:.0f}% CPU: "
                      f"{state}", flush=True)
                for line in run.profile:
                    print("    " + line)
    except KeyboardInterrupt:
        interrupted = True
        print("simulate: interrupted", file=sys.stderr)
    finally:
        if persist is not None:
            for line in persist.stop():
                print("    daemon " + line)
        if server is not None:
            server.stop()
    rows = [_median_run([r for r in runs if r.hosts == n]) for n in dict.fromkeys(r.hosts for r in runs)]
    print()
    print(LABEL)
    print("\n".join(table(rows)))
    lin = linearity(rows)
    if lin:
        print()
        print("\n".join(lin))
    driver_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwall: fleet process start to exit; run s: fleet's own elapsed_s (connect + probe); "
          f"peak RSS: fleet's VmHWM (ru_maxrss ceiling in --json; driver itself {driver_rss:.0f} MB); "
          f"tree MB: peak of the RSS of fleet and every process below it (a cluster's workers), "
          f"sampled every 0.2 s; CPU s: fleet's and its waited-for children's (the workers); "
          f"others CPU %: what other processes used of this machine's CPUs during the run")
    if options.json:
        document = {"label": LABEL, "simulation": True,
                    "server": {"round": options.round, "reply_ms": options.reply_ms},
                    "fleet_options": {"connect_workers": options.connect_workers,
                                      "workers": options.workers, "peers": options.peers,
                                      "cluster": options.cluster, "shards": options.shards},
                    "cpus": os.cpu_count(), "interrupted": interrupted,
                    "runs": [{k: v for k, v in asdict(r).items() if k != "profile"} | {"all_ok": r.all_ok}
                             for r in runs],
                    "linearity": lin}
        Path(options.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if temp is not None:
        temp.cleanup()
    if interrupted:
        return 130
    return 0 if runs and all(r.all_ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
