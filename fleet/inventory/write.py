"""Write an inventory directory that `load_inventory` reads: hosts.yaml, groups.yaml, defaults.yaml.

For the inventories fleet generates (the lab's, the namespace bed's, the benchmarks'). Files are
YAML in block style with every scalar written as JSON, which YAML reads as the same value, so a
name or a path never changes meaning on the way (`yes`, `1.0`, `~`, `: ` and `#` stay strings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fleet.inventory.files import DEFAULTS_FILE, GROUPS_FILE, HOSTS_FILE

# A key YAML reads as this same string when written bare; others are written quoted.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}


def write_inventory(directory: Path, hosts: Mapping[str, Mapping[str, Any]],
                    defaults: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]] | None = None,
                    *, comments: Mapping[str, str] | None = None) -> Path:
    """Write `hosts` (name -> fields), `groups` (name -> fields; none: no groups.yaml) and
    `defaults` into `directory` (created when needed), each file headed by its comment in
    `comments` (file name -> text, one `#` line per line). Returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {HOSTS_FILE: hosts, DEFAULTS_FILE: defaults}
    if groups is not None:
        files[GROUPS_FILE] = groups
    for name, value in files.items():
        comment = (comments or {}).get(name)
        head = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
        with open(directory / name, "w", encoding="utf-8") as out:
            out.write(head)
            out.writelines(yaml_lines(value))
    return directory


def yaml_lines(value: Mapping[str, Any], indent: int = 0) -> Iterator[str]:
    """A mapping as block-style YAML lines, scalars as JSON."""
    if not value:
        yield " " * indent + "{}\n"
        return
    for key, item in value.items():
        yield from _entry(" " * indent + _key(key) + ":", item, indent)


def _entry(lead: str, item: Any, indent: int) -> Iterator[str]:
    if isinstance(item, Mapping) and item:
        yield lead + "\n"
        yield from yaml_lines(item, indent + 2)
    elif isinstance(item, Sequence) and not isinstance(item, str) and item:
        yield lead + "\n"
        for element in item:
            yield from _entry(" " * (indent + 2) + "-", element, indent + 2)
    else:
        yield f"{lead} {_scalar(item)}\n"


def _key(key: str) -> str:
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML_WORDS
    return key if plain else json.dumps(key)


def _scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[]"
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str | int | float | bool | None):
        raise TypeError(f"an inventory value is a string, number, boolean or null, not {value!r}")
    return json.dumps(value)
