"""Reports as files for CI and people: JUnit XML, Prometheus text, a heatmap page.

Each format is one module here, registered by name in FORMATS, with two functions:

    problem(path, tasks) -> str | None      # what is wrong with writing it for these tasks
    render(outcomes, path, **settings) -> Iterable[str] | None   # its text in pieces; None: not
                                                                 # applicable

`outcomes` are anything with `.task` (a name) and `.report` (a task's Report): fleet.api's
TaskOutcome, or what `fleet report` reads back from a JSON report. Renderers are pure; `write`
is the one place that touches the disk, and it writes each file whole or not at all (a temporary
file renamed over the target, as node_exporter's textfile collector needs). The format modules are
imported only when a file is asked for, so loading the command line loads none of them.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

FORMATS: dict[str, str] = {
    "junit": "fleet.formats.junit",
    "prometheus": "fleet.formats.prometheus",
    "heatmap": "fleet.formats.heatmap",
}


class TaskOutcomeLike(Protocol):
    """What a format reads of a task's outcome."""

    @property
    def task(self) -> str: ...

    @property
    def report(self) -> Any: ...


def format_module(name: str) -> ModuleType:
    if name not in FORMATS:
        raise KeyError(f"no report format {name!r}; known: {', '.join(sorted(FORMATS))}")
    return importlib.import_module(FORMATS[name])


def problems(targets: Mapping[str, Path | None], tasks: Sequence[str]) -> list[str]:
    """What is wrong with the files asked for, given the tasks that will run (checked before any
    host is touched), as `--NAME FILE: why` lines."""
    found = []
    for name, path in targets.items():
        if path is None:
            continue
        why = format_module(name).problem(Path(path), list(tasks))
        if why:
            found.append(f"--{name} {path}: {why}")
    return found


def write(outcomes: Sequence[TaskOutcomeLike], targets: Mapping[str, Path | None],
          settings: Mapping[str, Mapping[str, Any]] | None = None) -> list[Path]:
    """Write each format asked for (name -> file) from the outcomes; a format with nothing to say
    about these tasks writes nothing. `settings` (name -> keywords) go to a format's renderer,
    e.g. {"prometheus": {"pairs": True}}. Returns the files written."""
    written = []
    for name, path in targets.items():
        if path is None:
            continue
        keywords = (settings or {}).get(name, {})
        pieces = format_module(name).render(list(outcomes), Path(path), **keywords)
        if pieces is not None:
            write_atomically(Path(path), pieces)
            written.append(Path(path))
    return written


def write_artifacts(outcomes: Sequence[TaskOutcomeLike], *, junit: Path | None = None,
                    prometheus: Path | None = None, heatmap: Path | None = None,
                    prometheus_pairs: bool = False,
                    heatmap_rtt_ms: Sequence[float] | None = None) -> list[Path]:
    """`write` with the command line's three formats as keywords; `prometheus_pairs`: the
    Prometheus file also has every directed pair's series (see fleet.formats.prometheus);
    `heatmap_rtt_ms`: the heatmap's RTT bands (see fleet.formats.heatmap)."""
    return write(outcomes, {"junit": junit, "prometheus": prometheus, "heatmap": heatmap},
                 {"prometheus": {"pairs": prometheus_pairs},
                  "heatmap": {} if heatmap_rtt_ms is None else {"rtt_thresholds_ms": heatmap_rtt_ms}})


def write_atomically(path: Path, pieces: Iterable[str]) -> None:
    """The text in a temporary file next to `path`, then renamed over it: a reader (a collector,
    a CI job) sees the old file or the new one, never half of one."""
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            for piece in pieces:
                stream.write(piece)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


__all__ = ["FORMATS", "TaskOutcomeLike", "format_module", "problems", "write", "write_artifacts",
           "write_atomically"]
