"""Reading iproute2's JSON output (`ip -j`) into typed values. Pure: text in, values out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network, ip_interface
from typing import Any


class ParseError(ValueError):
    """The text is not the `ip -j` output we expected."""


@dataclass(frozen=True)
class Route:
    """One IPv6 route of the main table (`ip -j -6 route show`)."""

    dst: IPv6Network
    dev: str | None = None
    gateway: IPv6Address | None = None
    protocol: str | None = None  # "kernel", "94", ...; None: the default ("boot")

    def describe(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        proto = f" proto {self.protocol}" if self.protocol else ""
        return f"{self.dst}{via} dev {self.dev or '?'}{proto}"


@dataclass(frozen=True)
class TunnelState:
    """What a tunnel device looks like now; `exists` False when there is no such device."""

    exists: bool
    kind: str | None = None
    isatap: bool = False
    local: IPv4Address | None = None
    remote: str | None = None
    mtu: int | None = None
    up: bool = False
    addresses: tuple[IPv6Interface, ...] = ()
    alias: str | None = None      # the link's alias (`ip link set dev X alias TEXT`): fleet's mark
    ifindex: int | None = None    # which device this is: a device made anew gets another index
    routes: tuple[Route, ...] | None = ()  # the host's IPv6 routes (all devices); None: unreadable

    def describe(self) -> str:
        if not self.exists:
            return "absent"
        mode = "isatap" if self.isatap else (self.kind or "unknown kind")
        remote = f", remote {self.remote}" if self.remote not in (None, "any") else ""
        addrs = ", ".join(str(a) for a in self.addresses) or "no address"
        alias = f", alias {self.alias!r}" if self.alias else ""
        return (f"{mode}, local {self.local or 'any'}{remote}, mtu {self.mtu}, "
                f"{'up' if self.up else 'down'}, {addrs}{alias}")

    def same_configuration(self, other: TunnelState) -> bool:
        """The same device in the same configuration (addresses in any order)."""
        return (self.exists == other.exists and self.kind == other.kind
                and self.isatap == other.isatap and self.local == other.local
                and self.remote == other.remote and self.mtu == other.mtu and self.up == other.up
                and set(self.addresses) == set(other.addresses) and self.alias == other.alias
                and self.ifindex == other.ifindex
                and set(self.routes or ()) == set(other.routes or ()))


ABSENT = TunnelState(exists=False)


def _load(text: str, what: str) -> list[dict[str, Any]]:
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{what}: not JSON ({exc})") from exc
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ParseError(f"{what}: expected a JSON list of objects")
    return data


def parse_tunnel(link_json: str, addr_json: str) -> TunnelState:
    """Combine `ip -j -d link show dev X` and `ip -j addr show dev X` (empty text: no device)."""
    links = _load(link_json, "ip -j -d link show")
    if not links:
        return ABSENT
    link = links[0]
    info = link.get("linkinfo") or {}
    data = info.get("info_data") or {}
    local_text = data.get("local")
    try:
        local = IPv4Address(local_text) if local_text and local_text != "any" else None
    except ValueError as exc:
        raise ParseError(f"ip -j -d link show: bad local address {local_text!r}") from exc
    flags = link.get("flags") or []
    ifindex = link.get("ifindex")
    return TunnelState(
        exists=True,
        kind=info.get("info_kind"),
        isatap=bool(data.get("isatap", False)),
        local=local,
        remote=data.get("remote"),
        mtu=link.get("mtu"),
        up="UP" in flags,
        addresses=parse_global_ipv6(addr_json),
        alias=link.get("ifalias") or None,
        ifindex=ifindex if isinstance(ifindex, int) else None,
    )


def parse_global_ipv6(addr_json: str) -> tuple[IPv6Interface, ...]:
    """The IPv6 addresses (with prefix length) on a device, link-local ones left out."""
    found: list[IPv6Interface] = []
    for device in _load(addr_json, "ip -j addr show"):
        for info in device.get("addr_info") or []:
            if info.get("family") != "inet6":
                continue
            try:
                iface = ip_interface(f"{info['local']}/{info['prefixlen']}")
            except (KeyError, ValueError) as exc:
                raise ParseError(f"ip -j addr show: bad address entry {info!r}") from exc
            if isinstance(iface, IPv6Interface) and not iface.ip.is_link_local:
                found.append(iface)
    return tuple(found)


def parse_routes(route_json: str) -> tuple[Route, ...]:
    """The routes in `ip -j -6 route show` ("default" is ::/0, a host route has no length)."""
    found: list[Route] = []
    for entry in _load(route_json, "ip -j -6 route show"):
        dst_text = entry.get("dst")
        try:
            dst = IPv6Network("::/0" if dst_text == "default" else str(dst_text))
            gateway = IPv6Address(entry["gateway"]) if entry.get("gateway") else None
        except ValueError as exc:
            raise ParseError(f"ip -j -6 route show: bad route entry {entry!r}") from exc
        protocol = entry.get("protocol")
        found.append(Route(dst=dst, dev=entry.get("dev"), gateway=gateway,
                           protocol=str(protocol) if protocol is not None else None))
    return tuple(found)
