"""The ISATAP tunnel we want on a host, the plan that gets it there, and the script that applies it.

Pure: a TunnelState and a DesiredTunnel in, a tuple of Steps out. The apply script runs the steps
with `set -e` and, when it created the tunnel itself, removes it again if a later step fails, so a
host is never left half-configured.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Interface

from fleet.inventory import FleetHost
from fleet.iproute import TunnelState
from fleet.isatap import ISATAP_PREFIX_LENGTH
from fleet.sections import section

TUNNEL_NAME = "sit1"
TUNNEL_MTU = 1480


@dataclass(frozen=True)
class DesiredTunnel:
    local: IPv4Address
    address: IPv6Interface
    name: str = TUNNEL_NAME
    mtu: int = TUNNEL_MTU

    @classmethod
    def for_host(cls, host: FleetHost) -> DesiredTunnel:
        return cls(local=host.ipv4, address=IPv6Interface(f"{host.address}/{ISATAP_PREFIX_LENGTH}"))


@dataclass(frozen=True)
class Step:
    """One change: what it does in words, and the `ip` command that does it."""

    description: str
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def is_right_kind(state: TunnelState, desired: DesiredTunnel) -> bool:
    return (state.kind == "sit" and state.isatap and state.local == desired.local
            and state.remote in (None, "any"))


def plan(state: TunnelState, desired: DesiredTunnel) -> tuple[Step, ...]:
    """The steps from `state` to `desired`; empty when nothing needs to change."""
    name = desired.name
    steps: list[Step] = []
    addresses = state.addresses
    if state.exists and not is_right_kind(state, desired):
        steps.append(Step(f"remove {name} ({state.describe()})", ("ip", "link", "del", name)))
        state, addresses = TunnelState(exists=False), ()
    if not state.exists:
        steps.append(Step(f"create {name} mode isatap local {desired.local}",
                          ("ip", "tunnel", "add", name, "mode", "isatap", "local", str(desired.local))))
    for stale in addresses:
        if stale != desired.address:
            steps.append(Step(f"remove stale address {stale}",
                              ("ip", "addr", "del", str(stale), "dev", name)))
    if desired.address not in addresses:
        steps.append(Step(f"add address {desired.address}",
                          ("ip", "addr", "replace", str(desired.address), "dev", name)))
    if state.mtu != desired.mtu:
        steps.append(Step(f"set mtu {desired.mtu}" + (f" (was {state.mtu})" if state.exists else ""),
                          ("ip", "link", "set", "dev", name, "mtu", str(desired.mtu))))
    if not state.up:
        steps.append(Step("set link up", ("ip", "link", "set", "dev", name, "up")))
    return tuple(steps)


def creates_tunnel(steps: tuple[Step, ...]) -> bool:
    return any(step.argv[:3] == ("ip", "tunnel", "add") for step in steps)


def read_state_script(name: str = TUNNEL_NAME) -> str:
    """Shell lines that print the tunnel's link and address JSON as sections `link` and `addr`."""
    dev = shlex.quote(name)
    return "\n".join([
        section("link"), f"ip -j -d link show dev {dev} 2>/dev/null || true",
        section("addr"), f"ip -j addr show dev {dev} 2>/dev/null || true",
    ])


def apply_script(steps: tuple[Step, ...], name: str = TUNNEL_NAME) -> str:
    """A script that applies the steps all or nothing, then prints the resulting state."""
    lines = ["set -e"]
    if creates_tunnel(steps):
        lines.append(f"trap 'rc=$?; ip link del {shlex.quote(name)} 2>/dev/null; exit $rc' EXIT")
    lines += [step.command for step in steps]
    lines += ["trap - EXIT", "set +e", read_state_script(name)]
    return "\n".join(lines)


def teardown_script(name: str = TUNNEL_NAME) -> str:
    """Remove the tunnel if it is there; prints `removed` or `absent`."""
    dev = shlex.quote(name)
    return (f"if ip link show dev {dev} >/dev/null 2>&1; then ip link del {dev} && echo removed; "
            f"else echo absent; fi")
