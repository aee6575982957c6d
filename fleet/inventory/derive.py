"""One host's FleetHost, derived from its Nornir host: the SSH target after Nornir's inheritance
(checked), the tunnel's IPv4 and prefix, its ISATAP routers and routes."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Network
from typing import TypeVar

from nornir.core.inventory import Host

from fleet.core.errors import InventoryError
from fleet.inventory.connection import check_connection
from fleet.inventory.files import CONNECTION_PLUGIN, HOSTS_FILE, InventoryFiles
from fleet.inventory.model import FleetHost
from fleet.isatap import parse_ipv4, parse_prefix


def fleet_host(files: InventoryFiles, host: Host) -> FleetHost:
    params = host.get_connection_parameters(CONNECTION_PLUGIN)
    ssh_host = params.hostname if params.hostname is not None else host.name
    check_connection(files, host.name, ssh_host, params)
    hosts_file = files.path(HOSTS_FILE)

    raw_ipv4 = host.get("ipv4")
    if raw_ipv4 is None:
        try:
            IPv4Address(ssh_host)
        except ValueError:
            raise InventoryError(f"missing: no data.ipv4 and hostname {ssh_host!r} is not an IPv4 "
                                 "address; set data.ipv4 to the tunnel's IPv4 (on AWS, the "
                                 "instance's private address)",
                                 file=hosts_file, host=host.name, field="data.ipv4") from None
        try:
            ipv4 = parse_ipv4(ssh_host)
        except ValueError as exc:
            raise InventoryError(f"missing: no data.ipv4, and the hostname used in its place will not "
                                 f"do: {exc}; set data.ipv4 to the tunnel's IPv4",
                                 file=hosts_file, host=host.name, field="data.ipv4") from None
    else:
        try:
            ipv4 = parse_ipv4(str(raw_ipv4))
        except ValueError as exc:
            raise InventoryError(str(exc), host=host.name, field="data.ipv4",
                                 file=files.data_source(host.name, "ipv4")) from None

    raw_prefix = host.get("isatap_prefix")
    prefix_file = files.data_source(host.name, "isatap_prefix")
    if raw_prefix is None:
        raise InventoryError("missing: set data.isatap_prefix to a /64 (usually in defaults.yaml "
                             "or a group)", file=prefix_file, host=host.name, field="data.isatap_prefix")
    try:
        prefix = parse_prefix(str(raw_prefix))
    except ValueError as exc:
        raise InventoryError(str(exc), file=prefix_file, host=host.name,
                             field="data.isatap_prefix") from None

    routers = tuple(_data_list(files, host, "isatap_routers", parse_ipv4))
    routes = None
    if host.get("isatap_routes") is not None:
        routes = tuple(_data_list(files, host, "isatap_routes", lambda t: _parse_route(t, prefix)))
    if len(routers) > _MAX_ROUTERS:
        raise InventoryError(f"at most {_MAX_ROUTERS} routers (fleet records them in the link's "
                             "alias)", file=files.data_source(host.name, "isatap_routers"),
                             host=host.name, field="data.isatap_routers")

    return FleetHost(
        name=host.name,
        ssh_host=ssh_host,
        ssh_port=params.port,
        username=params.username,
        password=params.password,
        groups=tuple(g.name for g in host.groups),
        ipv4=ipv4,
        prefix=prefix,
        ssh_options=dict(params.extras or {}),
        nornir_host=host,
        isatap_routers=routers,
        isatap_routes=routes,
    )


_MAX_ROUTERS = 8
_T = TypeVar("_T")


def _data_list(files: InventoryFiles, host: Host, key: str,
               parse: Callable[[str], _T]) -> list[_T]:
    """A data field that is a list of values, each parsed; InventoryError naming the entry."""
    raw = host.get(key)
    where = {"file": files.data_source(host.name, key), "host": host.name}
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InventoryError(f"must be a list, not {type(raw).__name__}", field=f"data.{key}",
                             **where)
    values = []
    for index, item in enumerate(raw):
        try:
            values.append(parse(str(item)))
        except ValueError as exc:
            raise InventoryError(str(exc), field=f"data.{key}[{index}]", **where) from None
    if len(set(values)) != len(values):
        raise InventoryError("lists the same entry twice", field=f"data.{key}", **where)
    return values


def _parse_route(text: str, prefix: IPv6Network) -> IPv6Network:
    """A prefix to reach through an ISATAP router: IPv6, no host bits, outside the tunnel's /64."""
    try:
        network = IPv6Network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IPv6 prefix ({exc})") from None
    if network.subnet_of(prefix):
        raise ValueError(f"{network} is inside the ISATAP prefix {prefix}, which is on-link")
    return network
