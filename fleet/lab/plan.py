"""The lab's layout, decided before anything starts: names, addresses, MACs, taps. Pure."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from fleet.lab.errors import LabError

MAX_HOSTS = 200
SUBNET = ipaddress.IPv4Network("172.31.0.0/24")  # like an AWS default VPC subnet
BRIDGE_ADDRESS = ipaddress.IPv4Interface("172.31.0.1/24")
FIRST_HOST_OFFSET = 10  # guest i gets 172.31.0.(10 + i)
BRIDGE = "br0"
ISATAP_PREFIX = "fd00:5efe:1ab::/64"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class GuestPlan:
    name: str  # h1, h2, ...
    index: int
    ipv4: ipaddress.IPv4Interface
    mac: str
    tap: str


@dataclass(frozen=True)
class LabPlan:
    name: str
    netns: str
    bridge: str
    bridge_address: ipaddress.IPv4Interface
    guests: tuple[GuestPlan, ...]


def netns_of(name: str) -> str:
    return f"fleet-{name}"


def plan_lab(hosts: int, name: str) -> LabPlan:
    """The layout of a lab of `hosts` guests, or LabError for a bad count or name."""
    if not isinstance(hosts, int) or isinstance(hosts, bool) or not 1 <= hosts <= MAX_HOSTS:
        raise LabError(f"a lab has 1 to {MAX_HOSTS} hosts, not {hosts!r}")
    if not _NAME.fullmatch(name):
        raise LabError(f"lab name {name!r} must be 1-32 characters of a-z, 0-9 and '-', "
                       "starting with a letter or digit")
    guests = tuple(_guest(index) for index in range(1, hosts + 1))
    return LabPlan(name, netns_of(name), BRIDGE, BRIDGE_ADDRESS, guests)


def _guest(index: int) -> GuestPlan:
    host = FIRST_HOST_OFFSET + index
    address = ipaddress.IPv4Interface(f"{SUBNET.network_address + host}/{SUBNET.prefixlen}")
    return GuestPlan(name=f"h{index}", index=index, ipv4=address,
                     mac=f"52:54:00:ac:1f:{host:02x}", tap=f"tap{index}")
