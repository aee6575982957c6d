"""The shape of the inventory's files, checked before Nornir's objects are built: known fields,
names, types, groups that exist and form no cycle. The values a host ends up with are checked
per host afterwards (connection.py)."""

from __future__ import annotations

from typing import Any

from fleet.core.errors import InventoryError
from fleet.inventory.connection import is_plain_string
from fleet.inventory.files import DEFAULTS_FILE, GROUPS_FILE, HOSTS_FILE, InventoryFiles

_ELEMENT_FIELDS = {"hostname", "port", "username", "password", "platform", "groups", "data",
                   "connection_options"}
CONNECTION_FIELDS = {"hostname", "port", "username", "password", "platform", "extras"}


def check_structure(files: InventoryFiles) -> None:
    hosts, groups = files.hosts, files.groups
    hosts_file, groups_file = files.path(HOSTS_FILE), files.path(GROUPS_FILE)
    if not hosts:
        raise InventoryError("no hosts defined", file=hosts_file)
    _check_element(files.path(DEFAULTS_FILE), None, files.defaults, allow_groups=False)
    for kind_file, elements in ((groups_file, groups), (hosts_file, hosts)):
        for name, element in elements.items():
            _check_name(kind_file, name)
            if element is None:
                elements[name] = element = {}
            if not isinstance(element, dict):
                raise InventoryError(f"settings must be a mapping, not {type(element).__name__}",
                                     file=kind_file, host=str(name))
            _check_element(kind_file, str(name), element, allow_groups=True)
            for group in element.get("groups") or ():
                if group not in groups:
                    raise InventoryError(f"unknown group {group!r} (not in {GROUPS_FILE})",
                                         file=kind_file, host=str(name), field="groups")
    _check_group_cycles(groups_file, groups)


def _check_name(file: str, name: object) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() or not c.isprintable() for c in name):
        raise InventoryError(f"invalid name {name!r}: names are non-empty strings without spaces or "
                             "control characters", file=file)


def _check_element(file: str, name: str | None, element: dict[str, Any], *, allow_groups: bool) -> None:
    def fail(field_name: str, message: str) -> None:
        raise InventoryError(message, file=file, host=name, field=field_name)

    allowed = _ELEMENT_FIELDS if allow_groups else _ELEMENT_FIELDS - {"groups"}
    for key in element:
        if key not in allowed:
            fail(str(key), f"unknown field (expected one of: {', '.join(sorted(allowed))})")
    # hostname, port, username and password are checked per host, on the values each host ends up
    # with (check_connection): an unused or overridden value cannot reach a host.
    platform = element.get("platform")
    if platform is not None and not is_plain_string(platform):
        fail("platform", "must be a non-empty string without control characters")
    groups = element.get("groups")
    if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)):
        fail("groups", "must be a list of group names")
    data = element.get("data")
    if data is not None and not isinstance(data, dict):
        fail("data", f"must be a mapping, not {type(data).__name__}")
    options = element.get("connection_options")
    if options is not None:
        if not isinstance(options, dict):
            fail("connection_options", "must be a mapping of connection plugin names to settings")
        for plugin, settings in options.items():
            where = f"connection_options.{plugin}"
            if settings is None:
                options[plugin] = settings = {}
            if not isinstance(settings, dict):
                fail(where, "must be a mapping")
            for key in settings:
                if key not in CONNECTION_FIELDS:
                    fail(f"{where}.{key}", f"unknown field (expected one of: "
                                           f"{', '.join(sorted(CONNECTION_FIELDS))})")
            if settings.get("extras") is not None and not isinstance(settings["extras"], dict):
                fail(f"{where}.extras", "must be a mapping of asyncssh.connect() options")


def _check_group_cycles(file: str, groups: dict[str, Any]) -> None:
    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            raise InventoryError(f"groups form a cycle: {' -> '.join(trail + (name,))}",
                                 file=file, host=trail[0], field="groups")
        for parent in groups[name].get("groups") or ():
            visit(parent, trail + (name,))

    for group in groups:
        visit(group, ())
