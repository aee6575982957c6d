"""The inventory's three files (hosts.yaml, groups.yaml, defaults.yaml) as read, and where each
host's value was written in them, following Nornir's inheritance: every message names that file
and field. `read_yaml` reads one file."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ruamel.yaml
from ruamel.yaml.error import YAMLError

from fleet.core.errors import InventoryError

HOSTS_FILE = "hosts.yaml"
GROUPS_FILE = "groups.yaml"
DEFAULTS_FILE = "defaults.yaml"
CONNECTION_PLUGIN = "asyncssh"


@dataclass(frozen=True)
class Source:
    """Where a host's value is written: the file, the field as written there, the value, and a note
    for the message (the group that set it, or why the host's name stands in for its hostname)."""

    file: str
    field: str
    value: Any = dataclasses.field(repr=False)  # `field` in here is the attribute above
    note: str = ""


@dataclass(frozen=True)
class InventoryFiles:
    """The three files as read and checked, kept to say which one set a host's value.

    `label` is set when the dicts were built in memory from one source file (an EC2 source):
    every message then names that file instead of hosts.yaml, groups.yaml or defaults.yaml.
    `origin` is that source as its reader checked it (for an EC2 source, its profile and role,
    which `fleet aws check` uses again); this package never looks inside it."""

    directory: Path
    hosts: dict[str, Any]
    groups: dict[str, Any]
    defaults: dict[str, Any]
    label: str | None = None
    origin: object = dataclasses.field(default=None, repr=False, compare=False)

    def path(self, name: str) -> str:
        return self.label if self.label is not None else str(self.directory / name)

    @property
    def where(self) -> str:
        """The inventory as messages name it: the directory, or the source file."""
        return self.label if self.label is not None else str(self.directory)

    def data_source(self, host: str, key: str) -> str:
        """The file that supplies `data.key` for a host, following Nornir's inheritance order."""
        if key in ((self.hosts.get(host) or {}).get("data") or {}):
            return self.path(HOSTS_FILE)

        def in_groups(names: Iterable[str]) -> bool:
            for group in names:
                element = self.groups.get(group) or {}
                if key in (element.get("data") or {}) or in_groups(element.get("groups") or ()):
                    return True
            return False

        if in_groups((self.hosts.get(host) or {}).get("groups") or ()):
            return self.path(GROUPS_FILE)
        if key in (self.defaults.get("data") or {}):
            return self.path(DEFAULTS_FILE)
        return self.path(HOSTS_FILE)

    def connection_source(self, host: str, attr: str) -> Source | None:
        """Where the host's asyncssh `attr` (hostname, port, username, password or extras) is set,
        or None when nowhere. The order is Nornir's (Host.get_connection_parameters), the first
        value that is not null winning:

        1. the host's `connection_options.asyncssh.ATTR`;
        2. for each of its groups in order: the group's `connection_options.asyncssh.ATTR`, then
           its parent groups' (by this same rule 2), then the defaults'
           `connection_options.asyncssh.ATTR` (Nornir looks at the defaults at the end of every
           group's branch, so they win over a later group);
        3. the defaults' `connection_options.asyncssh.ATTR`;
        4. except for extras, the plain `ATTR`: the host's, then its groups' (depth first, each
           group once, parents before the next group), then the defaults'.
        """
        written = f"connection_options.{CONNECTION_PLUGIN}.{attr}"

        def options(element: Mapping[str, Any]) -> Mapping[str, Any]:
            return (element.get("connection_options") or {}).get(CONNECTION_PLUGIN) or {}

        def from_defaults() -> Source | None:
            value = options(self.defaults).get(attr)
            return None if value is None else Source(self.path(DEFAULTS_FILE), written, value)

        def in_options(groups: Iterable[str]) -> Source | None:
            for group in groups:
                element = self.groups[group]
                value = options(element).get(attr)
                if value is not None:
                    return Source(self.path(GROUPS_FILE), written, value, f" (set in group {group!r})")
                found = in_options(element.get("groups") or ()) or from_defaults()
                if found is not None:
                    return found
            return None

        element = self.hosts[host]
        value = options(element).get(attr)
        if value is not None:
            return Source(self.path(HOSTS_FILE), written, value)
        found = in_options(element.get("groups") or ()) or from_defaults()
        if found is not None or attr == "extras":
            return found
        if element.get(attr) is not None:
            return Source(self.path(HOSTS_FILE), attr, element[attr])
        for group in self._extended_groups(host):
            if self.groups[group].get(attr) is not None:
                return Source(self.path(GROUPS_FILE), attr, self.groups[group][attr],
                              f" (set in group {group!r})")
        if self.defaults.get(attr) is not None:
            return Source(self.path(DEFAULTS_FILE), attr, self.defaults[attr])
        return None

    def hostname_source(self, host: str) -> Source:
        """Where the host's SSH hostname comes from; its name when no hostname is set (as Nornir)."""
        return self.connection_source(host, "hostname") or Source(
            self.path(HOSTS_FILE), "hostname", host, " (no hostname is set, so the host's name is used)")

    def _extended_groups(self, host: str) -> list[str]:
        """The host's groups and their parents, depth first, each once (Host.extended_groups)."""
        found: list[str] = []

        def visit(names: Iterable[str]) -> None:
            for name in names:
                if name not in found:
                    found.append(name)
                visit(self.groups[name].get("groups") or ())

        visit(self.hosts[host].get("groups") or ())
        return found



def read_yaml(path: Path, *, required: bool) -> dict[str, Any]:
    """A YAML file holding a mapping ({} when missing and not `required`, or empty)."""
    if not path.exists() and not required:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"cannot read: {exc}", file=str(path)) from exc
    try:
        data = ruamel.yaml.YAML(typ="safe").load(text)
    except YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise InventoryError(f"invalid YAML: {detail}", file=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(f"must be a mapping of names to settings, not a {type(data).__name__}",
                             file=str(path))
    return data
