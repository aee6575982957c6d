"""The ISATAP tunnel we want on a host, whose tunnel it is, and the plan that gets it there (the
scripts that read, apply and remove it are scripts.py's).

Pure: a TunnelState and a DesiredTunnel in, steps out.

Ownership. fleet marks the tunnel it manages with the link's alias (`MARK`) and reads the mark
back. A `sit1` that carries the mark is fleet's, and any drift in it is repaired. An unmarked
ISATAP `sit1` whose `local` is this host's ipv4 (what the original walk-through makes by hand) is
adopted: converged in place and marked, never deleted. Anything else named `sit1` (another mode, a
remote, another local, another kind of device) is foreign: refused and left untouched, unless the
user asks to replace it.

Routers (the PRL, see docs/prl.md). The kernel's potential router list cannot be read back (listing
it fails with "Inappropriate ioctl"), so fleet records the routers it added in its mark itself:
alias `fleet-isatap prl=A,B`. The record lives and dies with the device, like the PRL. Routes
fleet adds through the first router carry the route protocol ROUTE_PROTOCOL, fleet's mark on a
route; a route for the same prefix without it is not fleet's and is never replaced.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from dataclasses import replace as replace_state
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network

from fleet.inventory import FleetHost
from fleet.isatap import ISATAP_PREFIX_LENGTH
from fleet.isatap import TUNNEL_MTU as TUNNEL_MTU  # the tunnel's settings, as the tasks read them here
from fleet.isatap import TUNNEL_NAME as TUNNEL_NAME
from fleet.tunnel.iproute import ABSENT, Route, TunnelState

MARK = "fleet-isatap"  # the alias of a tunnel fleet manages
ROUTE_PROTOCOL = "94"  # the protocol number of the routes fleet adds (unused by iproute2's names)
DEFAULT_ROUTE = IPv6Network("::/0")


class Ownership(StrEnum):
    ABSENT = "absent"        # no such device: fleet may create it
    FLEETS = "fleet's"       # carries fleet's mark
    ADOPTABLE = "adoptable"  # an unmarked ISATAP tunnel with this host's local: converged in place
    FOREIGN = "foreign"      # anything else: never touched without --replace


@dataclass(frozen=True)
class DesiredTunnel:
    local: IPv4Address
    address: IPv6Interface
    name: str = TUNNEL_NAME
    mtu: int = TUNNEL_MTU
    routers: tuple[IPv4Address, ...] = ()   # the PRL, in order
    routes: tuple[IPv6Network, ...] = ()    # reached through the first router
    routes_required: bool = True            # False: the implied default, skipped when taken

    @classmethod
    def for_host(cls, host: FleetHost) -> DesiredTunnel:
        """The host's tunnel; a host is not its own router, so its own ipv4 is left out of the
        routers. Routes default to ::/0 when routers are given and routes are not."""
        routers = tuple(r for r in host.isatap_routers if r != host.ipv4)
        if not routers:
            routes: tuple[IPv6Network, ...] = ()
        elif host.isatap_routes is None:
            routes = (DEFAULT_ROUTE,)
        else:
            routes = host.isatap_routes
        return cls(local=host.ipv4, address=IPv6Interface(f"{host.address}/{ISATAP_PREFIX_LENGTH}"),
                   routers=routers, routes=routes,
                   routes_required=host.isatap_routes is not None)

    @property
    def next_hop(self) -> IPv6Address | None:
        """The first router's ISATAP link-local: the kernel maps it to the IPv4 without NDP."""
        if not self.routers:
            return None
        return IPv6Address(f"fe80::5efe:{self.routers[0]}")

    @property
    def mark(self) -> str:
        return mark_text(self.routers)


def mark_text(routers: tuple[IPv4Address, ...]) -> str:
    """fleet's alias for a tunnel whose PRL fleet filled with `routers`."""
    return f"{MARK} prl={','.join(map(str, routers))}" if routers else MARK


def marked_routers(alias: str | None) -> tuple[IPv4Address, ...] | None:
    """The routers recorded in fleet's mark; None when the alias is not fleet's mark."""
    if alias == MARK:
        return ()
    head, _, listed = (alias or "").partition(" prl=")
    if head != MARK or not listed:
        return None
    try:
        return tuple(IPv4Address(text) for text in listed.split(","))
    except ValueError:
        return None


@dataclass(frozen=True)
class Step:
    """One change: what it does in words, the `ip` command that does it, and the command that
    undoes it (`undo` empty: nothing of its own to undo, a later undo covers it; `reversible`
    False: it cannot be undone, such as removing a device)."""

    description: str
    argv: tuple[str, ...]
    undo: tuple[str, ...] = ()
    reversible: bool = True

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


class ForeignRoute(ValueError):
    """A route for a prefix fleet was asked to route exists and is not fleet's."""

    def __init__(self, route: Route) -> None:
        self.route = route
        super().__init__(
            f"the host already has a route for {route.dst} that fleet did not make "
            f"({route.describe()}); fleet left it untouched and did not change the host. Remove "
            f"it yourself or leave {route.dst} out of data.isatap_routes")


def is_fleets_route(route: Route, name: str = TUNNEL_NAME) -> bool:
    return route.dev == name and route.protocol == ROUTE_PROTOCOL


def skipped_routes(state: TunnelState, desired: DesiredTunnel) -> tuple[Route, ...]:
    """The routes not fleet's that stand where the implied default route would go (kept)."""
    if desired.routes_required:
        return ()
    return tuple(r for r in state.routes or () if r.dst in desired.routes
                 and not is_fleets_route(r, desired.name))


class ForeignTunnel(ValueError):
    """The device named like our tunnel is not fleet's and may not be replaced."""

    def __init__(self, state: TunnelState, name: str = TUNNEL_NAME, *, verb: str = "replace") -> None:
        self.state = state
        super().__init__(
            f"{name} exists and is not fleet's ({state.describe()}); fleet left it untouched. "
            f"Remove it yourself (`ip link del {name}`) or run again with --replace to let "
            f"fleet {verb} it")


def is_isatap_with_local(state: TunnelState, local: IPv4Address) -> bool:
    return (state.kind == "sit" and state.isatap and state.local == local
            and state.remote in (None, "any"))


def ownership(state: TunnelState, desired: DesiredTunnel) -> Ownership:
    """Whose the device is: see the module's docstring."""
    if not state.exists:
        return Ownership.ABSENT
    if marked_routers(state.alias) is not None:
        return Ownership.FLEETS
    if is_isatap_with_local(state, desired.local):
        return Ownership.ADOPTABLE
    return Ownership.FOREIGN


def plan(state: TunnelState, desired: DesiredTunnel, *, replace: bool = False) -> tuple[Step, ...]:
    """The steps from `state` to `desired`; empty when nothing needs to change.

    Raises ForeignTunnel when the device is not fleet's and `replace` is not given.
    """
    name = desired.name
    owner = ownership(state, desired)
    if owner is Ownership.FOREIGN and not replace:
        raise ForeignTunnel(state, name)
    steps: list[Step] = []
    created = False
    if state.exists and not is_isatap_with_local(state, desired.local):
        # fleet's own tunnel in the wrong mode or local, or a foreign one with --replace
        why = "fleet's, drifted" if owner is Ownership.FLEETS else "not fleet's: --replace"
        steps.append(Step(f"remove {name} ({why}: {state.describe()})", ("ip", "link", "del", name),
                          reversible=False))
        state = replace_state(ABSENT, routes=tuple(r for r in state.routes or () if r.dev != name)
                              if state.routes is not None else None)
    if not state.exists:
        created = True
        steps.append(Step(f"create {name} mode isatap local {desired.local}",
                          ("ip", "tunnel", "add", name, "mode", "isatap", "local", str(desired.local)),
                          undo=("ip", "link", "del", name)))

    def change(description: str, argv: tuple[str, ...], undo: tuple[str, ...]) -> None:
        steps.append(Step(description, argv, () if created else undo))

    recorded = marked_routers(state.alias)
    if recorded is None:
        was = f" (alias was {state.alias!r})" if state.alias else ""
        what = f"mark {name} as fleet's" if created else \
            f"adopt {name} (an ISATAP tunnel made by hand): mark it as fleet's{was}"
        change(what, ("ip", "link", "set", "dev", name, "alias", desired.mark),
               ("ip", "link", "set", "dev", name, "alias", state.alias or ""))
        recorded = ()
    elif state.alias != desired.mark:
        listed = ", ".join(map(str, desired.routers))
        change(f"record routers {listed} in fleet's mark" if listed else
               "clear the routers from fleet's mark",
               ("ip", "link", "set", "dev", name, "alias", desired.mark),
               ("ip", "link", "set", "dev", name, "alias", state.alias or ""))
    for stale in state.addresses:
        if stale != desired.address:
            change(f"remove stale address {stale}", ("ip", "addr", "del", str(stale), "dev", name),
                   ("ip", "addr", "add", str(stale), "dev", name))
    if desired.address not in state.addresses:
        change(f"add address {desired.address}",
               ("ip", "addr", "replace", str(desired.address), "dev", name),
               ("ip", "addr", "del", str(desired.address), "dev", name))
    if state.mtu != desired.mtu:
        change(f"set mtu {desired.mtu}" + (f" (was {state.mtu})" if state.exists else ""),
               ("ip", "link", "set", "dev", name, "mtu", str(desired.mtu)),
               ("ip", "link", "set", "dev", name, "mtu", str(state.mtu)))
    if not state.up:
        change("set link up", ("ip", "link", "set", "dev", name, "up"),
               ("ip", "link", "set", "dev", name, "down"))
    for router in recorded:
        if router not in desired.routers:
            change(f"remove router {router} from the PRL",
                   ("ip", "tunnel", "prl", "prl-delete", str(router), "dev", name),
                   ("ip", "tunnel", "prl", "prl-default", str(router), "dev", name))
    for router in desired.routers:
        if router not in recorded:
            change(f"add router {router} to the PRL",
                   ("ip", "tunnel", "prl", "prl-default", str(router), "dev", name),
                   ("ip", "tunnel", "prl", "prl-delete", str(router), "dev", name))
    steps += _route_steps(state, desired, created)
    return tuple(steps)


def _route_steps(state: TunnelState, desired: DesiredTunnel, created: bool) -> list[Step]:
    """Routes through the first router: add the missing, repoint fleet's that drifted, remove
    fleet's that are no longer wanted; a route not fleet's is refused (or, for the implied
    default route, kept and reported by skipped_routes)."""
    name, hop = desired.name, desired.next_hop
    if state.routes is None:
        if desired.routes or marked_routers(state.alias):
            raise StateUnreadable(f"cannot read the host's IPv6 routes (`ip -j -6 route show` "
                                  f"failed), needed for the routes through {name}")
        return []
    steps: list[Step] = []

    def route(verb: str, dst: IPv6Network, via: IPv6Address | None) -> tuple[str, ...]:
        return ("ip", "-6", "route", verb, str(dst), *(("via", str(via)) if via else ()),
                "dev", name, *(("proto", ROUTE_PROTOCOL) if verb != "del" else ()))

    mine = [r for r in state.routes if is_fleets_route(r, name)]
    for old in mine:
        if old.dst not in desired.routes:
            steps.append(Step(f"remove route {old.dst} via {old.gateway}",
                              route("del", old.dst, old.gateway), route("add", old.dst, old.gateway)))
    for dst in desired.routes:
        present = [r for r in state.routes if r.dst == dst]
        ours = [r for r in present if is_fleets_route(r, name)]
        others = [r for r in present if not is_fleets_route(r, name)]
        if others:
            if desired.routes_required:
                raise ForeignRoute(others[0])
            continue
        if ours and ours[0].gateway == hop:
            continue
        if ours:
            steps.append(Step(f"repoint route {dst} via {hop} (was via {ours[0].gateway})",
                              route("replace", dst, hop), route("replace", dst, ours[0].gateway)))
        else:
            steps.append(Step(f"add route {dst} via {hop} dev {name}", route("add", dst, hop),
                              () if created else route("del", dst, hop)))
    return steps


def removal(state: TunnelState, desired: DesiredTunnel, *, replace: bool = False) -> Step | None:
    """The step that removes fleet's tunnel (or an adoptable one, or with `replace` any), None
    when there is nothing to remove. Raises ForeignTunnel otherwise."""
    owner = ownership(state, desired)
    if owner is Ownership.ABSENT:
        return None
    if owner is Ownership.FOREIGN and not replace:
        raise ForeignTunnel(state, desired.name, verb="remove")
    routes = [str(r.dst) for r in state.routes or () if is_fleets_route(r, desired.name)]
    routers = [str(r) for r in marked_routers(state.alias) or ()]
    gone = "".join([f", its PRL {', '.join(routers)}" if routers else "",
                    f", its routes {', '.join(routes)}" if routes else ""])
    return Step(f"remove {desired.name} ({state.describe()}{gone})",
                ("ip", "link", "del", desired.name), reversible=False)


def creates_tunnel(steps: tuple[Step, ...]) -> bool:
    return any(step.argv[:3] == ("ip", "tunnel", "add") for step in steps)


class StateUnreadable(ValueError):
    """The tunnel's state could not be read; it is never taken for "absent"."""
