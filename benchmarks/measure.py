"""Running one tool once and measuring its control side.

- wall: from starting the tool's process to its exit (Python start-up and imports included).
- cpu: user+sys of the tool's whole process tree, from os.wait4 on it (every descendant that was
  waited for is in it: ssh children of xargs, Ansible's forks, ...).
- rss_tree: peak of the summed RSS of the tool's process tree, sampled every `interval` seconds
  with psutil (short-lived children between two samples can be missed).
- rss_one: the largest RSS of any single process of the tree, from the same samples (wait4's
  ru_maxrss is useless here: it counts the benchmark's own pages in the forked child before exec).
- target_cpu: CPU the bed's sshds and everything they ran (sessions, shells, pings) used in that
  time (the listening sshds' and their live descendants' own and waited-for children's times:
  an sshd serving a kept connection lives on across runs).
- relay_cpu: CPU of the bed's forwarder in that time (0 when clients do not go through it).
- background: a tool that keeps connections between runs (fleet --persist, OpenSSH and Ansible
  with ControlPersist) runs helper processes outside its process tree. Their CPU in that time is
  added to `cpu`, and their RSS after the run to `rss_tree` (and to `rss_one` when larger), so a
  warm tool is not measured cheaper than it is.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Measurement:
    wall_s: float
    cpu_s: float
    rss_tree_mb: float
    rss_one_mb: float
    target_cpu_s: float
    relay_cpu_s: float
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


def processes_with(marker: str) -> list[int]:
    """PIDs of the processes whose command line contains `marker` (a tool's private path)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or ()):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def stop_processes(pids: Sequence[int], timeout: float = 5.0) -> None:
    """SIGTERM each (processes a tool of ours started), wait for them, SIGKILL what is left."""
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _cpu_each(pids: Sequence[int]) -> dict[int, float]:
    each = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        each[pid] = times.user + times.system
    return each


def _rss(pids: Sequence[int]) -> list[int]:
    sizes = []
    for pid in pids:
        try:
            sizes.append(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            continue
    return sizes


def _process_cpu(pids: Sequence[int], children: bool) -> float:
    """CPU of `pids`; with `children`, also of every descendant, the live ones (an sshd serving a
    kept connection) as well as those that ended and were waited for."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)] if children else [proc]
        except psutil.Error:
            continue
        for each in procs:
            try:
                times = each.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
            if children:
                total += times.children_user + times.children_system
    return total


class _RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self.peak_one = pid, interval, 0, 0
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._halt.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_one = max(self.peak_one, rss)
            self.peak = max(self.peak, total)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_measured(argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None,
                 timeout: float = 600.0, rss_interval: float = 0.1,
                 target_pids: Sequence[int] = (), relay_pid: int | None = None,
                 stdout_file: Path | None = None,
                 background: Callable[[], list[int]] | None = None) -> Measurement:
    """Run argv to completion and measure it (see the module docstring)."""
    background_before = _cpu_each(background()) if background else {}
    out_path = stdout_file or cwd / ".measure-stdout"
    err_path = out_path.with_name(out_path.name + ".err")
    target_before = _process_cpu(target_pids, children=True)
    relay_before = _process_cpu([relay_pid], children=False) if relay_pid else 0.0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, start_new_session=True)
        sampler = _RssSampler(process.pid, rss_interval)
        sampler.start()
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # blocks; the sampler samples meanwhile
        except BaseException:  # Ctrl-C or SIGTERM: stop the tool's whole tree, then unwind
            kill()
            os.waitpid(process.pid, 0)
            raise
        finally:
            timer.cancel()
            sampler.stop()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    # Target sessions may still be finishing their accounting: a short settle, outside `wall`.
    time.sleep(0.2)
    target_after = _process_cpu(target_pids, children=True)
    relay_after = _process_cpu([relay_pid], children=False) if relay_pid else 0.0
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    helpers = background() if background else []
    helper_cpu = sum(cpu - background_before.get(pid, 0.0) for pid, cpu in _cpu_each(helpers).items())
    helper_rss = _rss(helpers)
    return Measurement(
        wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime + helper_cpu,
        rss_tree_mb=(sampler.peak + sum(helper_rss)) / 2**20,
        rss_one_mb=max([sampler.peak_one, *helper_rss]) / 2**20,
        target_cpu_s=target_after - target_before, relay_cpu_s=relay_after - relay_before,
        returncode=process.returncode, stdout=stdout, stderr=stderr,
        timed_out=timed_out.is_set())


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells as aligned columns, the first row a heading underlined with dashes."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
