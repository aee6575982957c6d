"""The two phases of the soak, each a loop of `fleet run setup mesh` under scheduled faults.

in-process: fleet's engine (inventory, Runner, AsyncsshTransport, the built-in tasks) driven
    again and again inside this one Python process, as `fleet run` drives it once; after each
    run, this process's fds, TCP sockets, asyncio tasks, threads and memory.
persist: `python -m fleet run setup mesh --persist 10m` run again and again against one
    persistent-connection daemon; after each run, the daemon's fds, TCP sockets, memory, asyncio
    tasks, kept connections and the SSH channels open on them.
After every iteration of either phase, the SSH connections the bed's sshds still hold.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.soak import faults as bed_faults
from benchmarks.soak import plan, procfs
from fleet import api
from fleet.catalog import task as load_task
from fleet.cli import build_parser
from fleet.cli.run_tasks import run_limits
from fleet.inventory import Inventory, load_inventory
from fleet.lab.nsbed import SSHD, NamespaceBed
from fleet.ssh.transport import AsyncsshTransport

TASKS = ("setup", "mesh")
PERSIST = "10m"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    iterations: int
    deadline: float  # time.monotonic() after which no new iteration starts
    inventory: Path
    fleet_args: tuple[str, ...]  # the options after `fleet run setup mesh`, both phases
    kernel_has_sit: bool
    log: Callable[[str], None]


@dataclass
class Phase:
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: dict[int, list[str]] = field(default_factory=dict)
    stopped_early: str | None = None


def fleet_arguments(inventory: Path, *, dry_run: bool, connect_timeout: float, command_timeout: float,
                    host_timeout: float, count: int) -> list[str]:
    return ["run", *TASKS, "-i", str(inventory), "--no-progress", "--connect-timeout",
            f"{connect_timeout:g}", "--command-timeout", f"{command_timeout:g}", "--host-timeout",
            f"{host_timeout:g}", "--count", str(count), *(["--dry-run"] if dry_run else [])]


class BedState:
    """Makes the bed match one iteration's Faults: kills, restarts, drops; and reads its sshds."""

    def __init__(self, bed: NamespaceBed) -> None:
        self.bed = bed
        self.killed: set[str] = set()
        self.restarted: list[subprocess.Popen[bytes]] = []  # held until the bed stops them
        self.drops = bed_faults.Drops(bed)
        self.namespaces = {h.name: procfs.netns_inode(Path("/run/netns", h.netns)) for h in bed.hosts}

    def apply(self, faults: plan.Faults) -> None:
        for name in sorted(self.killed - faults.killed):
            self.restarted.append(bed_faults.restart_sshd(self.bed, name))
            self.killed.discard(name)
        for name in sorted(faults.killed - self.killed):
            bed_faults.kill_sshd(self.bed, name)
            self.killed.add(name)
        self.drops.set(faults.dropped)

    def heal(self) -> None:
        self.apply(plan.Faults())
        self.drops.remove()

    def server(self, expected: int | None = None, settle: float = 3.0) -> procfs.ServerFigures:
        """The sshds' connections; waits up to `settle` s for them to come to `expected` (a
        client's close reaches the server a moment later)."""
        deadline = time.monotonic() + settle
        while True:
            listeners = [pid for name, pid in self.bed.sshd_pids.items() if name not in self.killed]
            figures = procfs.server_figures(self.namespaces, listeners, SSHD)
            if expected is None or figures.connections == expected or time.monotonic() > deadline:
                return figures
            time.sleep(0.1)


def _check(documents: Sequence[dict[str, Any]], code: int, expect: plan.Expectation) -> list[str]:
    by_task = {d.get("task"): d for d in documents}
    problems = []
    if set(by_task) != set(TASKS):
        problems.append(f"reports for {sorted(map(str, by_task))}, expected {list(TASKS)}")
    if "setup" in by_task:
        problems += plan.check_setup(by_task["setup"], expect)
    if "mesh" in by_task:
        problems += plan.check_mesh(by_task["mesh"], expect)
    if code != plan.expected_exit_code(expect):
        problems.append(f"exit code {code}, expected {plan.expected_exit_code(expect)}")
    return problems


def _iterations(settings: Settings, phase: Phase, hosts: Sequence[str]):
    """(iteration, faults) while the iteration and time budgets last."""
    for i, faults in enumerate(plan.schedule(hosts, settings.iterations)):
        if i and time.monotonic() > settings.deadline:
            phase.stopped_early = f"time limit reached after {i} iterations"
            settings.log(f"{phase.name}: {phase.stopped_early}")
            return
        yield i, faults


# -- in-process ---------------------------------------------------------------------------------

class _ResourceWarnings:
    """Counts ResourceWarnings (a socket or transport closed by the garbage collector, not by
    its owner) while active."""

    def __init__(self) -> None:
        self.count = 0
        self.messages: list[str] = []
        self._catcher = warnings.catch_warnings()

    def __enter__(self) -> _ResourceWarnings:
        self._catcher.__enter__()
        warnings.simplefilter("always", ResourceWarning)
        previous = warnings.showwarning

        def show(message, category, *args, **kwargs):  # type: ignore[no-untyped-def]
            if issubclass(category, ResourceWarning):
                self.count += 1
                if len(self.messages) < 5:
                    self.messages.append(str(message))
            else:
                previous(message, category, *args, **kwargs)

        warnings.showwarning = show
        return self

    def __exit__(self, *exc: object) -> None:
        self._catcher.__exit__(*exc)


async def _one_run(tasks: Sequence[Any], inventory: Inventory, arguments: Sequence[str]) \
        -> tuple[list[dict[str, Any]], int]:
    """One `fleet run setup mesh` as the CLI does it (its parser, fleet.api), on a fresh
    transport and runner, inside this process."""
    parser, task_options = build_parser(tasks)
    options = parser.parse_args([*arguments, "--persist", "0"])
    params = {task.name: task_options.params(task, options) for task in tasks}
    prepared = api.prepare(tasks, inventory, params=params, host_key_checking=options.host_key_checking)
    transport = AsyncsshTransport(host_key_checking=options.host_key_checking)
    try:
        outcome = await api.execute(prepared, transport, limits=run_limits(options))
    finally:
        await transport.close()
    documents = [d.as_dict() if hasattr(d, "as_dict") else d for d in outcome.json_documents()]
    return documents, outcome.exit_code


async def in_process(settings: Settings, state: BedState, arguments: Callable[[bool], list[str]]) -> Phase:
    phase = Phase("in-process")
    inventory = load_inventory(settings.inventory)
    hosts = [h.name for h in inventory.hosts]
    tasks = [load_task(name) for name in TASKS]
    started = time.monotonic()
    with _ResourceWarnings() as leaked:
        for i, faults in _iterations(settings, phase, hosts):
            await asyncio.to_thread(state.apply, faults)
            expect = plan.expectation(faults, persistent=False, kernel_has_sit=settings.kernel_has_sit)
            dry_run = i % 2 == 1
            documents, code = await _one_run(tasks, inventory, arguments(dry_run))
            problems = _check(documents, code, expect)
            gc.collect()  # what is still open now is held, not garbage awaiting collection
            await asyncio.sleep(0)
            me = procfs.process_figures()
            server = await asyncio.to_thread(state.server, 0)
            row = {"iteration": i, "elapsed_s": round(time.monotonic() - started, 1),
                   "faults": faults.describe(), "dry_run": dry_run,
                   "fds": me.fds, "rss_mb": me.rss_mb,
                   "tasks": len(asyncio.all_tasks()) - 1,  # this phase's own task not counted
                   "tcp": me.tcp, "threads": me.threads,
                   "sshd_conns": server.connections, "sshd_procs": server.processes,
                   "resource_warnings": leaked.count, "expected": not problems}
            if leaked.messages:  # what the garbage collector closed since the last iteration
                row["resource_warning_texts"], leaked.messages = leaked.messages, []
            phase.rows.append(row)
            if problems:
                phase.problems[i] = problems
            settings.log(_line(phase.name, row, problems))
    await asyncio.to_thread(state.heal)
    return phase


# -- persist ------------------------------------------------------------------------------------

class DaemonWindow:
    """The soak's own start of fleet's daemon (benchmarks.soak.daemon_probe) and how to read it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.report = directory / "probe.json"
        self.process: subprocess.Popen[bytes] | None = None
        self._sequence = 0

    def env(self) -> dict[str, str]:
        return {**os.environ, "FLEET_PERSIST_DIR": str(self.directory),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

    def start(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.directory / "probe.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.soak.daemon_probe", "--dir", str(self.directory),
                 "--idle", "600", "--report", str(self.report)], env=self.env(), cwd=REPO,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = self.status()
            if status and status.get("pid") == self.process.pid:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the instrumented daemon did not start; see {self.directory / 'probe.log'}")

    def fleet(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleet", *arguments], env=self.env(), cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)

    def status(self) -> dict[str, Any] | None:
        done = self.fleet("persist", "status", "--json", timeout=30)
        answer = json.loads(done.stdout or "{}")
        return answer if done.returncode == 0 else None

    def probe(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The daemon's own view, once no client is connected any more."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._sequence += 1
            os.kill(self.process.pid, signal.SIGUSR1)
            while time.monotonic() < deadline:
                try:
                    snapshot = json.loads(self.report.read_text())
                except (OSError, ValueError):
                    snapshot = {}
                if snapshot.get("sequence") == self._sequence:
                    break
                time.sleep(0.02)
            else:
                return None
            if snapshot.get("clients") == 0:
                return snapshot
            time.sleep(0.1)
        return snapshot

    def stop(self) -> None:
        """`fleet persist stop`, then make sure the process is gone (it is this soak's child)."""
        try:
            self.fleet("persist", "stop", timeout=60)
        finally:
            if self.process is not None:
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)


def persist(settings: Settings, state: BedState, arguments: Callable[[bool], list[str]],
            directory: Path) -> Phase:
    phase = Phase("persist")
    hosts = [h.name for h in load_inventory(settings.inventory).hosts]
    window = DaemonWindow(directory)
    started = time.monotonic()
    try:
        window.start()
        assert window.process is not None
        pid = window.process.pid
        for i, faults in _iterations(settings, phase, hosts):
            state.apply(faults)
            expect = plan.expectation(faults, persistent=True, kernel_has_sit=settings.kernel_has_sit)
            dry_run = i % 2 == 1
            report = directory / "report.json"
            report.unlink(missing_ok=True)
            done = window.fleet(*arguments(dry_run), "--persist", PERSIST, "--json", str(report))
            try:
                documents = json.loads(report.read_text())["tasks"]
            except (OSError, ValueError, KeyError) as exc:
                documents = []
                problems = [f"no JSON report ({exc}); stderr: {done.stderr.strip()[-500:]}"]
            else:
                problems = _check(documents, done.returncode, expect)
            status = window.status() or {}
            if status.get("pid") != pid:
                problems.append(f"the daemon changed: pid {status.get('pid')}, expected {pid}")
            inside = window.probe() or {}
            daemon = procfs.process_figures(pid)
            kept = sum(1 for c in status.get("connections", []) if c.get("open"))
            server = state.server(kept)
            row = {"iteration": i, "elapsed_s": round(time.monotonic() - started, 1),
                   "faults": faults.describe(), "dry_run": dry_run, "exit": done.returncode,
                   "fds": daemon.fds, "rss_mb": daemon.rss_mb, "tasks": inside.get("tasks"),
                   "clients": inside.get("clients"), "tcp": daemon.tcp, "threads": daemon.threads,
                   "kept": kept,
                   "pooled": inside.get("pooled"), "channels": inside.get("channels"),
                   "channels_per_host": inside.get("channels_per_host"),
                   "sshd_conns": server.connections, "sshd_procs": server.processes,
                   "fds_less_kept": daemon.fds - kept, "tcp_less_kept": daemon.tcp - kept,
                   "sshd_conns_less_kept": server.connections - kept,
                   "expected": not problems}
            phase.rows.append(row)
            if problems:
                phase.problems[i] = problems
            settings.log(_line(phase.name, row, problems))
    finally:
        window.stop()
        state.heal()
    return phase


def _line(name: str, row: dict[str, Any], problems: Sequence[str]) -> str:
    text = (f"{name} #{row['iteration']} {row['elapsed_s']:.0f}s [{row['faults']}] fds {row['fds']} "
            f"rss {row['rss_mb']} tasks {row['tasks']} tcp {row['tcp']} sshd {row['sshd_conns']}"
            + (f" kept {row['kept']} channels {row['channels']}" if "kept" in row else "")
            + (" ok" if not problems else " UNEXPECTED"))
    return text + "".join(f"\n    {p}" for p in problems[:8])
