"""ISATAP addresses, exactly as RFC 5214 section 6.1 and the Linux kernel build them, and the
tunnel's name and MTU.

A leaf: it imports nothing of fleet, so the inventory (which computes each host's address), the
tunnel (which configures it) and the mesh (which probes it) all build on it without importing
one another. Pure functions over `ipaddress` values; nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

ISATAP_PREFIX_LENGTH = 64
TUNNEL_NAME = "sit1"  # the ISATAP device fleet manages on every host
TUNNEL_MTU = 1480     # 1500 less the 20 bytes of the IPv4 header that carries each IPv6 packet

# The kernel's __ipv6_isatap_ifid() (net/ipv6/addrconf.c) leaves the u bit clear for these
# networks and sets it for every other IPv4 address. Python's `is_private` disagrees (it counts
# 100.64.0.0/10 as private), so the list is spelled out here.
_NOT_GLOBALLY_UNIQUE = tuple(IPv4Network(net) for net in (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",          # multicast
    "255.255.255.255/32",   # broadcast
))


# Addresses no ISATAP tunnel can use as its local or remote end, checked in this order (the
# broadcast address before the reserved block that holds it, so that it is named as what it is).
_NOT_A_TUNNEL_ENDPOINT = tuple((IPv4Network(net), kind) for net, kind in (
    ("0.0.0.0/8", "in 'this network', not a host address"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "the limited broadcast address"),
    ("240.0.0.0/4", "reserved"),
))


def is_globally_unique(ipv4: IPv4Address) -> bool:
    """True when the kernel sets the u bit for this IPv4 (RFC 5214 section 6.1)."""
    return not any(ipv4 in net for net in _NOT_GLOBALLY_UNIQUE)


def interface_id(ipv4: IPv4Address) -> int:
    """The 64-bit ISATAP interface identifier: [02]00:5efe followed by the IPv4's 32 bits."""
    high = 0x0200_5EFE if is_globally_unique(ipv4) else 0x0000_5EFE
    return (high << 32) | int(ipv4)


def parse_prefix(text: str) -> IPv6Network:
    """Parse an ISATAP prefix; it must be an IPv6 /64 with no host bits set.

    Raises ValueError with a message fit for a user.
    """
    if "%" in str(text):
        # IPv6Network takes "fd00::%eth0/64" and keeps the scope id in its text, which would then
        # reach `ip` as an address: a prefix is never scoped.
        raise ValueError(f"{str(text)!r} has a scope id ('%...'); an ISATAP prefix is a plain /64 "
                         "without one")
    try:
        network = IPv6Network(str(text), strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IPv6 prefix with no host bits set ({exc})") from None
    if network.prefixlen != ISATAP_PREFIX_LENGTH:
        raise ValueError(f"{network} is a /{network.prefixlen}; ISATAP needs a /64")
    return network


def isatap_address(prefix: IPv6Network, ipv4: IPv4Address) -> IPv6Address:
    """The host's ISATAP address: the /64 prefix followed by the interface identifier."""
    if prefix.prefixlen != ISATAP_PREFIX_LENGTH:
        raise ValueError(f"{prefix} is a /{prefix.prefixlen}; ISATAP needs a /64")
    return IPv6Address(int(prefix.network_address) | interface_id(ipv4))


def link_local_address(ipv4: IPv4Address) -> IPv6Address:
    """The fe80::[200:]5efe:V4 address the kernel puts on an ISATAP tunnel by itself."""
    return isatap_address(IPv6Network("fe80::/64"), ipv4)


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 inside an ISATAP address, or None when it is not one."""
    ifid = int(address) & ((1 << 64) - 1)
    if (ifid >> 32) & 0xFDFF_FFFF != 0x0000_5EFE:
        return None
    return IPv4Address(ifid & 0xFFFF_FFFF)


def parse_ipv4(text: str) -> IPv4Address:
    """Parse a unicast IPv4 address usable as a tunnel endpoint; ValueError otherwise.

    The one place that decides which IPv4 addresses a tunnel may use: the message names the class
    of a refused address.
    """
    try:
        address = ipaddress.IPv4Address(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None
    for network, kind in _NOT_A_TUNNEL_ENDPOINT:
        if address in network:
            raise ValueError(f"{address} cannot be a tunnel endpoint: it is {kind} ({network})")
    return address
