"""What a loaded inventory is: FleetHost (one validated host), LoadedHost (the Nornir host that
carries it) and Inventory (the hosts, their Nornir object and the files they came from)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

from nornir.core import Nornir
from nornir.core.inventory import Host

from fleet.core.errors import UsageError
from fleet.inventory.files import GROUPS_FILE, InventoryFiles
from fleet.isatap import isatap_address


@dataclass(frozen=True)
class FleetHost:
    """One validated host: where to reach it over SSH and what its tunnel looks like."""

    name: str
    ssh_host: str
    ssh_port: int | None
    username: str | None
    password: str | None = field(repr=False)
    groups: tuple[str, ...]
    ipv4: IPv4Address
    prefix: IPv6Network
    ssh_options: Mapping[str, Any] = field(repr=False, compare=False)
    nornir_host: Host = field(repr=False, compare=False)
    isatap_routers: tuple[IPv4Address, ...] = ()  # the PRL: ISATAP routers' IPv4 addresses
    isatap_routes: tuple[IPv6Network, ...] | None = None  # through the first router; None: not set
    address: IPv6Address = field(init=False)  # the host's ISATAP address (RFC 5214)
    address_text: str = field(init=False, repr=False, compare=False)  # its canonical text

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", isatap_address(self.prefix, self.ipv4))
        object.__setattr__(self, "address_text", str(self.address))


class LoadedHost(Host):
    """A Nornir Host built by `load_inventory`: it carries its validated FleetHost and the
    Inventory it was loaded in, so code that is handed only the Nornir host (a Nornir task,
    fleet.nornir) finds what was validated without reading or checking the files again.
    Nornir's filters keep these objects, so a filtered Nornir object's hosts carry them too."""

    __slots__ = ("fleet_host", "fleet_inventory")


@dataclass(frozen=True)
class Inventory:
    """The validated hosts, in inventory order, the Nornir object they came from and the files."""

    directory: Path
    hosts: tuple[FleetHost, ...]
    nornir: Nornir = field(repr=False, compare=False)
    files: InventoryFiles = field(repr=False, compare=False)

    def select(self, names: Sequence[str] = (), groups: Sequence[str] = ()) -> Inventory:
        """Hosts whose name matches one of `names` (glob patterns) and that belong to one of
        `groups` (directly or through a parent group). Empty filters select everything."""
        selected = list(self.hosts)
        if names:
            for pattern in names:
                if not any(fnmatch.fnmatchcase(h.name, pattern) for h in self.hosts):
                    raise UsageError(f"-l/--limit: no host in {self.files.where} matches {pattern!r}")
            selected = [h for h in selected if any(fnmatch.fnmatchcase(h.name, p) for p in names)]
        if groups:
            known = set(self.nornir.inventory.groups)
            for group in groups:
                if group not in known:
                    raise UsageError(f"-g/--groups: {self.files.path(GROUPS_FILE)} has no group {group!r}")
            selected = [h for h in selected if any(h.nornir_host.has_parent_group(g) for g in groups)]
        return Inventory(self.directory, tuple(selected), self.nornir, self.files)

    def __len__(self) -> int:
        return len(self.hosts)
