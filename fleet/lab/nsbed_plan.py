"""The namespace bed's address plan, decided before anything starts: names, addresses, MACs. Pure.

Host i (from 1) gets 172.31.1.(10 + i - 1) counted on from 172.31.1.10, so up to 240 hosts sit in
172.31.1.0/24 exactly as they always did; a bigger bed carries on into 172.31.1.250, 172.31.2.0 ...
in 172.31.0.0/20, and every leg (the hub's bridge included) gets the /20. The hub keeps
172.31.1.1. Each host's IPv6 stand-in is its ISATAP-format address in the bed's prefix, from that
IPv4. Every address lives only inside the bed's own namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Network

from fleet.isatap import isatap_address
from fleet.lab.errors import LabError

SUBNET_BASE = IPv4Address("172.31.1.0")
FIRST_HOST = 10
SMALL_SUBNET = IPv4Network("172.31.1.0/24")  # up to SMALL_BED hosts: the plan of old
LARGE_SUBNET = IPv4Network("172.31.0.0/20")  # room for 3,829 hosts; the bed stops at MAX_HOSTS
SMALL_BED = 240
MAX_HOSTS = 2000
HUB_ADDRESS = SUBNET_BASE + 1
DEFAULT_PREFIX = IPv6Network("fd00:5efe:bed::/64")


@dataclass(frozen=True)
class BedHost:
    name: str
    netns: str
    ipv4: IPv4Address
    ipv6: IPv6Address
    mac: str
    ssh_port: int = 0


@dataclass(frozen=True)
class BedPlan:
    subnet: IPv4Network
    hub: IPv4Interface  # the hub's bridge address, with the subnet's prefix length
    hosts: tuple[BedHost, ...]

    def interface(self, host: BedHost) -> IPv4Interface:
        """A host's address on its leg, with the bed's prefix length."""
        return IPv4Interface(f"{host.ipv4}/{self.subnet.prefixlen}")


def subnet_for(count: int) -> IPv4Network:
    return SMALL_SUBNET if count <= SMALL_BED else LARGE_SUBNET


def plan_bed(count: int, tag: str, prefix: IPv6Network = DEFAULT_PREFIX) -> BedPlan:
    """The layout of a bed of `count` hosts whose namespaces are named `<tag>-hN`, or LabError."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_HOSTS:
        raise LabError(f"a namespace bed holds 1 to {MAX_HOSTS} hosts, not {count!r}")
    subnet = subnet_for(count)
    hosts = []
    for i in range(1, count + 1):
        ipv4 = SUBNET_BASE + FIRST_HOST + i - 1
        hosts.append(BedHost(f"h{i}", f"{tag}-h{i}", ipv4, isatap_address(prefix, ipv4),
                             f"02:fe:00:00:{i // 256:02x}:{i % 256:02x}"))
    return BedPlan(subnet, IPv4Interface(f"{HUB_ADDRESS}/{subnet.prefixlen}"), tuple(hosts))
