"""Output files checked before a command does anything: each can be written, and none is a file the
command reads.

`fleet run` and `fleet report` both call `check_outputs` with their output options (--json,
--junit, --prometheus, --heatmap) and the files they read (the inventory, the trust files of every
login, the ssh config; a saved report and its baseline). An output is refused when it is one of
those files: the same file by identity (st_dev and st_ino, so a symlink or a hard link to it is
caught), or, when either does not exist yet (a known_hosts that accept-new will create), the same
path once `~`, `..` and symlinks are resolved. Pure but for stat() and access().
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet.core.errors import UsageError

STDOUT = "-"  # an output that is standard output, not a file
IN_PLACE = ("--json",)  # written into the file itself; the others beside it, then renamed over it


@dataclass(frozen=True)
class ReadFile:
    """A file the command reads, and how a message names it ("the inventory's hosts.yaml")."""

    path: Path
    what: str


def check_outputs(outputs: Mapping[str, str | Path | None], reads: Iterable[ReadFile], *,
                  command: str = "run") -> None:
    """UsageError, one line naming the option and the path, for an output (option -> path; None
    and "-" are none) that is a file the command reads, or that cannot be written: its directory
    missing or not writable, or the path a directory."""
    asked = {option: Path(path) for option, path in outputs.items()
             if path is not None and str(path) != STDOUT}
    if not asked:
        return
    known = _identify(reads)
    for option, path in asked.items():
        found = _same_file(path, known)
        if found is not None:
            raise UsageError(f"{option} {path}: that is {found.what} ({found.path}), which this "
                             f"{command} reads; write the report elsewhere")
        _check_writable(option, path, in_place=option in IN_PLACE)


@dataclass(frozen=True)
class _Known:
    read: ReadFile
    resolved: Path
    identity: tuple[int, int] | None


def _identify(reads: Iterable[ReadFile]) -> list[_Known]:
    seen: dict[Path, _Known] = {}
    for read in reads:
        if read.path not in seen:  # a 2,000-host run names the same known_hosts 2,000 times
            seen[read.path] = _Known(read, _resolved(read.path), _identity(read.path))
    return list(seen.values())


def _same_file(path: Path, known: Iterable[_Known]) -> ReadFile | None:
    identity, resolved = _identity(path), _resolved(path)
    for entry in known:
        if (identity is not None and identity == entry.identity) or resolved == entry.resolved:
            return entry.read
    return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _resolved(path: Path) -> Path:
    """The absolute path with `~`, `..` and every symlink that exists resolved."""
    try:
        return Path(os.path.expanduser(path)).resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare it as written
        return Path(os.path.abspath(os.path.expanduser(path)))


def _check_writable(option: str, path: Path, *, in_place: bool) -> None:
    """The file can be written: into itself when it exists and is written in place (--json, which
    may be /dev/null), else whole into its directory (written next to itself, renamed over it)."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory")
    if in_place and path.exists():
        if not os.access(path, os.W_OK):
            raise UsageError(f"{option} {path}: cannot be written")
        return
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{option} {path}: no such directory {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot write in {directory}")
