"""Room in the kernel's neighbour tables for a big namespace bed, and putting the machine back.

The ARP and NDP tables are shared by every network namespace of the machine, and by default hold
at most `gc_thresh3` = 1024 entries that the kernel may collect. A bed of N hosts needs about 2N
of them (each host resolving the hub, the hub resolving each host; pinned entries do not count):
past ~420 hosts the rest silently stop answering. For a bed above RAISE_ABOVE_HOSTS, the bed
raises `net.ipv{4,6}.neigh.default.gc_thresh{1,2,3}` to WANTED (never lowers a value already
higher), remembers what it found, and puts back at teardown every value that is still the one
it wrote (a value someone changed meanwhile is theirs, and left alone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet.lab.errors import LabError

RAISE_ABOVE_HOSTS = 200
WANTED = {"gc_thresh1": 8192, "gc_thresh2": 16384, "gc_thresh3": 32768}
KEYS = tuple(f"net.{family}.neigh.default.{name}" for family in ("ipv4", "ipv6") for name in WANTED)
PROC_SYS = Path("/proc/sys")


@dataclass(frozen=True)
class Change:
    key: str
    old: int
    new: int


def needs_room(count: int) -> bool:
    return count > RAISE_ABOVE_HOSTS


def changes_for(current: Mapping[str, int]) -> tuple[Change, ...]:
    """The values to raise: each key of KEYS whose current value is below what a big bed needs."""
    out = []
    for key in KEYS:
        wanted = WANTED[key.rsplit(".", 1)[1]]
        if current[key] < wanted:
            out.append(Change(key, current[key], wanted))
    return tuple(out)


def describe(changes: tuple[Change, ...]) -> str:
    return ", ".join(f"{c.key} {c.old} -> {c.new}" for c in changes)


def _path(key: str, root: Path) -> Path:
    return root.joinpath(*key.split("."))


def read(key: str, root: Path = PROC_SYS) -> int:
    try:
        return int(_path(key, root).read_text().strip())
    except (OSError, ValueError) as exc:
        raise LabError(f"reading sysctl {key}: {exc}") from exc


def write(key: str, value: int, root: Path = PROC_SYS) -> None:
    try:
        _path(key, root).write_text(f"{value}\n")
    except OSError as exc:
        raise LabError(f"setting sysctl {key} to {value}: {exc}") from exc


def make_room(say: Callable[[str], None], root: Path = PROC_SYS) -> tuple[Change, ...]:
    """Raise what needs raising; return what was changed (the record `restore` needs). If a write
    fails halfway (or Ctrl-C comes), what was already written is put back before it goes up."""
    changes = changes_for({key: read(key, root) for key in KEYS})
    done: list[Change] = []
    try:
        for change in changes:
            write(change.key, change.new, root)
            done.append(change)
    except BaseException:  # put the machine back, then let it go up as it came
        restore(tuple(done), say, root)
        raise
    if done:
        say(f"raised the kernel's neighbour tables for this bed (restored at teardown): "
            f"{describe(tuple(done))}")
    return tuple(done)


def restore(changes: tuple[Change, ...], say: Callable[[str], None], root: Path = PROC_SYS) -> None:
    """Put back each old value whose key still holds the value the bed wrote; say what was
    restored and what was left alone. Never raises: it runs in teardown."""
    restored, left = [], []
    for change in changes:
        try:
            if read(change.key, root) != change.new:
                left.append(change.key)
                continue
            write(change.key, change.old, root)
            restored.append(change)
        except LabError as exc:
            say(f"could not restore {change.key} to {change.old}: {exc}")
    if restored:
        say(f"restored the kernel's neighbour tables: "
            f"{', '.join(f'{c.key} {c.old}' for c in restored)}")
    if left:
        say(f"left alone (changed by someone else meanwhile): {', '.join(left)}")
