"""Does the lab boot many guests every time? Boot N guests, wait for every sshd, tear down; repeat.

    python -m benchmarks.lab_scale [--guests 30] [--tries 4]      (scripts/lab-scale; as root)

Software-emulated guests booting at once on 2 cores once panicked now and then ("IO-APIC + timer
doesn't work!"); docs/lab.md has the story and the last figures. Each try is a fresh lab (its own
name and work directory) brought up with `fleet.lab.up` and always brought down again, also on a
failure or Ctrl-C; a try that fails is reported and the next one runs. One line per try, then a
summary. Exit code: 0 every try brought every guest up; 1 a try failed; 2 it cannot run here.
Too slow for CI (30 guests take 75-115 s a try here); CI boots 10 once (tests/lab/test_lab_scale.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from fleet.lab import check_prerequisites, down, up


@dataclass(frozen=True)
class Try:
    number: int
    seconds: float
    booted: int  # guests whose sshd answered
    retried: tuple[str, ...]  # "hN's QEMU exited while booting (...); starting it once more"
    error: str | None

    def line(self, guests: int) -> str:
        if self.error is not None:
            return f"try {self.number}: FAILED after {self.seconds:.0f} s: {self.error}"
        return (f"try {self.number}: {guests} guests up in {self.seconds:.0f} s; "
                f"retried: {list(self.retried) or 'none'}")


def boot_once(number: int, guests: int, workdir: Path) -> Try:
    said: list[str] = []
    started = time.monotonic()
    error = None
    booted = 0
    try:
        info = up(guests, workdir=workdir, name=f"s{uuid.uuid4().hex[:6]}", progress=said.append)
        booted = sum(g.running for g in info.guests)
        ready = sum(line.endswith("s)") and " ready (" in line for line in said)
        if len(info.guests) != guests or booted != guests or ready != guests:
            error = f"{booted} of {guests} guests running, {ready} sshd banners seen"
    except Exception as exc:  # a failed try is a finding: report it and run the next one
        error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        down(workdir=workdir)
    return Try(number, time.monotonic() - started, booted,
               tuple(line for line in said if "once more" in line), error)


def summary(tries: list[Try], guests: int) -> str:
    good = [t for t in tries if t.error is None]
    retries = sum(len(t.retried) for t in tries)
    text = f"{len(good)} of {len(tries)} tries brought all {guests} guests up; second starts: {retries}"
    if good:
        times = [t.seconds for t in good]
        text += (f"; up in {min(times):.0f}-{max(times):.0f} s "
                 f"(median {statistics.median(times):.0f} s)")
    return text


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM tears the current lab down as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lab-scale", description=__doc__.split("\n")[0])
    parser.add_argument("--guests", type=int, default=30, help="guests per boot (default 30)")
    parser.add_argument("--tries", type=int, default=4, help="boots in a row (default 4)")
    options = parser.parse_args(argv)
    if options.guests < 1 or options.tries < 1:
        parser.error("--guests and --tries must be at least 1")
    problems = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
    if problems:
        print(f"lab-scale cannot run here: {'; '.join(problems)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    tries = []
    with tempfile.TemporaryDirectory(prefix="fleet-lab-scale-") as scratch:
        for number in range(1, options.tries + 1):
            result = boot_once(number, options.guests, Path(scratch) / f"try{number}")
            print(result.line(options.guests), flush=True)
            tries.append(result)
    print(summary(tries, options.guests))
    return 0 if all(t.error is None for t in tries) else 1


if __name__ == "__main__":
    sys.exit(main())
