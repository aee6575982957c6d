"""Inventory sources: a YAML file given to `-i` whose `plugin:` names the code that builds the
inventory's hosts, groups and defaults in memory (fleet.aws's EC2 source: `plugin: fleet.aws_ec2`).

A source registers itself under the entry point group `fleet.inventory_sources`, as Nornir's
plugins do under `nornir.plugins.inventory`: the entry point's name is the `plugin:` value and its
object a function `(path, document) -> InventoryFiles` (the file's path, and its YAML as read).
So the inventory imports no source, and a source in another distribution needs no change here.

A source tree that was never installed has no entry points: BUILT_IN, the one table of fleet's
own sources, stands in for them then (and matches pyproject.toml's, which a test checks).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUP = "fleet.inventory_sources"
BUILT_IN = {"fleet.aws_ec2": "fleet.aws.ec2_inventory:ec2_inventory_files",
            # a file written for Ansible's aws_ec2 plugin, read by the same source
            "amazon.aws.aws_ec2": "fleet.aws.ec2_inventory:ec2_inventory_files",
            "aws_ec2": "fleet.aws.ec2_inventory:ec2_inventory_files"}


class SourceError(Exception):
    """A source that is registered but cannot be used (its code does not load, or two
    distributions register different code under one name)."""


def registered() -> dict[str, EntryPoint]:
    """Every source by its `plugin:` name: the installed entry points, then BUILT_IN for the
    names none of them registers."""
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=GROUP):
        seen = found.get(entry.name)
        if seen is not None and seen.value != entry.value:
            raise SourceError(f"inventory source {entry.name!r} is registered twice, as "
                              f"{seen.value} and {entry.value}")
        found[entry.name] = entry
    for name, value in BUILT_IN.items():
        found.setdefault(name, EntryPoint(name=name, value=value, group=GROUP))
    return found


def source_names() -> list[str]:
    return sorted(registered())


def source_loader(plugin: str) -> Callable[..., Any] | None:
    """The function that builds the inventory for a file with `plugin: PLUGIN`; None when no
    source has that name. Raises SourceError when its code cannot be loaded."""
    entry = registered().get(plugin)
    if entry is None:
        return None
    try:
        loaded = entry.load()
    except Exception as exc:  # any error of someone else's module: reported, not raised through
        raise SourceError(f"inventory source {plugin!r} ({entry.value}) could not be loaded: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not callable(loaded):
        raise SourceError(f"inventory source {plugin!r} ({entry.value}) is not a function")
    return loaded  # type: ignore[no-any-return]


__all__ = ["BUILT_IN", "GROUP", "SourceError", "registered", "source_loader", "source_names"]
