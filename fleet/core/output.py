"""Output every task shares: aligned columns, the per-host table with its recap, JSON documents.

A JSON document is a plain value, or an object that streams itself (`write_json(stream)`), so a
report of millions of pairs never has to exist as one object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TextIO

from fleet.core.terminal import one_line


class JsonDocument(Protocol):
    def write_json(self, stream: TextIO) -> None: ...


def write_json(document: Any, stream: TextIO) -> None:
    """Write a JSON document: a plain value, a JsonDocument (streamed) or a list of either."""
    if hasattr(document, "write_json"):
        document.write_json(stream)
    else:
        json.dump(document, stream, indent=2)
    stream.write("\n")


def write_json_documents(documents: Sequence[Any], stream: TextIO) -> None:
    """One document as it is, several as {"tasks": [...]}."""
    if len(documents) == 1:
        write_json(documents[0], stream)
        return
    stream.write('{"tasks": [\n')
    for i, document in enumerate(documents):
        if i:
            stream.write(",\n")
        if hasattr(document, "write_json"):
            document.write_json(stream)
        else:
            json.dump(document, stream, indent=2)
    stream.write("\n]}\n")


def columns(rows: Sequence[Sequence[str]], indent: int = 0) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [(" " * indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths))).rstrip()
            for row in rows]


def render_host_table(task: str, rows: Iterable[tuple[str, str, str]], counts: Mapping[str, int],
                      elapsed: float, *, interrupted: bool = False) -> str:
    """Per-host lines (name, status, detail) and a recap, for tasks like setup and teardown."""
    lines = columns([[name, status, one_line(detail)] for name, status, detail in rows])
    lines.append(host_recap(task, counts, elapsed, interrupted=interrupted))
    return "\n".join(lines)


def host_recap(task: str, counts: Mapping[str, int], elapsed: float, *,
               interrupted: bool = False) -> str:
    """The last line of the per-host table: `setup: 4 hosts: 0 ok, 4 changed, 0 failed (2.7 s)`."""
    recap = ", ".join(f"{n} {status}" for status, n in counts.items())
    total = sum(counts.values())
    tail = "; INTERRUPTED" if interrupted else ""
    return f"{task}: {total} host{'s' if total != 1 else ''}: {recap} ({elapsed:.1f} s){tail}"
