"""One machine, one name: no two hosts share a tunnel IPv4 or an SSH target (address, port and
jump route), which would be two runs racing on one sit1."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

from fleet.core.errors import InventoryError
from fleet.core.transport import DEFAULT_SSH_PORT
from fleet.inventory.connection import parse_ssh_hostname
from fleet.inventory.files import InventoryFiles
from fleet.inventory.model import FleetHost

_ROUTE_OPTIONS = ("tunnel", "proxy_command")  # extras that change where an address leads


def check_unique_ssh_target(files: InventoryFiles, hosts: Sequence[FleetHost]) -> None:
    """Two names for one SSH target would be two jobs on one machine, racing on its one sit1."""
    seen: dict[tuple[IPv4Address | IPv6Address | str, int, str], FleetHost] = {}
    for host in hosts:
        port = host.ssh_port or DEFAULT_SSH_PORT
        # One address behind two different jump hosts (asyncssh's `tunnel`) is two machines.
        route = repr([host.ssh_options.get(option) for option in _ROUTE_OPTIONS])
        other = seen.setdefault((parse_ssh_hostname(host.ssh_host), port, route), host)
        if other is host:
            continue
        source = files.hostname_source(host.name)
        port_source = files.connection_source(host.name, "port")
        target, other_target = _target(host.ssh_host, port), _target(other.ssh_host, port)
        spelled = "" if other_target == target else f" (as {other_target})"
        raise InventoryError(
            f"host {other.name!r} connects to {target} too{spelled}: one machine under two names "
            "would have two runs racing on its one sit1", file=source.file, host=host.name,
            field=source.field + (f"/{port_source.field}" if port_source else ""))


def _target(ssh_host: str, port: int) -> str:
    return f"[{ssh_host}]:{port}" if ":" in ssh_host else f"{ssh_host}:{port}"


def check_unique_ipv4(hosts_file: str, hosts: Sequence[FleetHost]) -> None:
    seen: dict[IPv4Address, str] = {}
    for host in hosts:
        if host.ipv4 in seen:
            raise InventoryError(f"{host.ipv4} is also the ipv4 of host {seen[host.ipv4]!r}; "
                                 "every host needs its own tunnel address",
                                 file=hosts_file, host=host.name, field="data.ipv4")
        seen[host.ipv4] = host.name
