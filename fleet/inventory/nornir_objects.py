"""Nornir's own inventory objects (hosts, groups, defaults), built from the files as read and
checked, as Nornir's SimpleInventory builds them: the hosts are LoadedHosts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nornir.core.inventory import ConnectionOptions, Defaults, Group, Groups, Hosts, ParentGroups
from nornir.core.inventory import Inventory as NornirInventory

from fleet.inventory.files import InventoryFiles
from fleet.inventory.model import LoadedHost
from fleet.inventory.structure import CONNECTION_FIELDS


def nornir_inventory(files: InventoryFiles) -> NornirInventory:
    """The inventory SimpleInventory.load() would build, built from the files as already read and
    checked. SimpleInventory would read them again, fail on a host written as `name:` with no
    settings, and log a warning for an empty or comments-only groups.yaml or defaults.yaml."""
    def connection_options(element: Mapping[str, Any]) -> dict[str, ConnectionOptions]:
        return {str(plugin): ConnectionOptions(**{key: (settings or {}).get(key)
                                                  for key in CONNECTION_FIELDS})
                for plugin, settings in (element.get("connection_options") or {}).items()}

    def attributes(element: Mapping[str, Any]) -> dict[str, Any]:
        return {"hostname": element.get("hostname"), "port": element.get("port"),
                "username": element.get("username"), "password": element.get("password"),
                "platform": element.get("platform"), "data": element.get("data"),
                "connection_options": connection_options(element)}

    defaults = Defaults(**attributes(files.defaults))
    groups = Groups({name: Group(name=name, defaults=defaults, **attributes(element))
                     for name, element in files.groups.items()})
    for name, group in groups.items():
        group.groups = ParentGroups(groups[parent] for parent in files.groups[name].get("groups") or ())
    hosts = Hosts({name: LoadedHost(name=name, defaults=defaults, **attributes(element),
                                    groups=ParentGroups(groups[g] for g in element.get("groups") or ()))
                   for name, element in files.hosts.items()})
    return NornirInventory(hosts=hosts, groups=groups, defaults=defaults)
