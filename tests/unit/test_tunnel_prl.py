"""ISATAP routers (the PRL) and the routes through them: the inventory fields, the pure plan, and
the route reading (`ip -j -6 route show` as the lab's kernel prints it)."""

from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network

import pytest
from conftest import write_inventory

from fleet.core.errors import InventoryError
from fleet.inventory import load_inventory
from fleet.tunnel.iproute import ABSENT, Route, TunnelState, parse_routes
from fleet.tunnel.plan import (
    MARK,
    ROUTE_PROTOCOL,
    DesiredTunnel,
    ForeignRoute,
    StateUnreadable,
    mark_text,
    marked_routers,
    plan,
    removal,
    skipped_routes,
)
from fleet.tunnel.scripts import parse_state

DEFAULTS = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"
R1, R2 = IPv4Address("172.31.0.11"), IPv4Address("172.31.0.12")
FAR = IPv6Network("2001:db8:2::/64")
HOP = IPv6Address("fe80::5efe:ac1f:b")
BASE = DesiredTunnel(local=IPv4Address("172.31.0.13"),
                     address=IPv6Interface("fd00:5efe:1ab::5efe:ac1f:d/64"))
ROUTED = DesiredTunnel(**{**BASE.__dict__, "routers": (R1,), "routes": (FAR,)})
GOOD = TunnelState(exists=True, kind="sit", isatap=True, local=BASE.local, remote="any", mtu=1480,
                   up=True, addresses=(BASE.address,), alias=MARK, ifindex=4, routes=())
OURS = Route(FAR, dev="sit1", gateway=HOP, protocol=ROUTE_PROTOCOL)
ROUTED_STATE = TunnelState(**{**GOOD.__dict__, "alias": f"{MARK} prl=172.31.0.11",
                              "routes": (OURS,)})

# What the lab's 6.1 kernel printed with a route fleet made (proto 94), one made by hand
# (no protocol: "boot"), the on-link prefix and a default route.
LAB_ROUTES = (
    '[{"dst":"2001:db8:2::/64","gateway":"fe80::5efe:ac1f:b","dev":"sit1","protocol":"94",'
    '"metric":1024,"flags":[],"pref":"medium"},{"dst":"2001:db8:3::1","gateway":"fe80::5efe:ac1f:b",'
    '"dev":"sit1","metric":1024,"flags":[],"pref":"medium"},{"dst":"fd00::/64","dev":"sit1",'
    '"protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"default",'
    '"gateway":"fe80::1","dev":"eth0","protocol":"ra","metric":1024,"flags":[],"pref":"medium"}]')


def commands(state, desired):
    return [step.command for step in plan(state, desired)]


def test_route_reading():
    routes = parse_routes(LAB_ROUTES)
    assert routes[0] == OURS
    assert routes[1] == Route(IPv6Network("2001:db8:3::1/128"), dev="sit1", gateway=HOP)
    assert routes[3].dst == IPv6Network("::/0") and routes[3].dev == "eth0"


def test_the_mark_records_the_routers():
    assert mark_text(()) == MARK and marked_routers(MARK) == ()
    assert marked_routers(mark_text((R1, R2))) == (R1, R2)
    assert marked_routers("fleet-isatap prl=nonsense") is None
    assert marked_routers(None) is None and marked_routers("someone else's") is None


def test_from_nothing_the_prl_and_route_follow_the_tunnel():
    assert commands(ABSENT, ROUTED)[-2:] == [
        "ip tunnel prl prl-default 172.31.0.11 dev sit1",
        "ip -6 route add 2001:db8:2::/64 via fe80::5efe:ac1f:b dev sit1 proto 94"]
    assert commands(ABSENT, ROUTED)[1] == "ip link set dev sit1 alias 'fleet-isatap prl=172.31.0.11'"
    # deleting the new device undoes them: no undo of their own
    assert [s.undo for s in plan(ABSENT, ROUTED)[-2:]] == [(), ()]


def test_on_fleets_tunnel_the_steps_have_undos():
    steps = plan(GOOD, ROUTED)
    assert [s.command for s in steps] == [
        "ip link set dev sit1 alias 'fleet-isatap prl=172.31.0.11'",
        "ip tunnel prl prl-default 172.31.0.11 dev sit1",
        "ip -6 route add 2001:db8:2::/64 via fe80::5efe:ac1f:b dev sit1 proto 94"]
    assert [" ".join(s.undo) for s in steps] == [
        "ip link set dev sit1 alias fleet-isatap",
        "ip tunnel prl prl-delete 172.31.0.11 dev sit1",
        "ip -6 route del 2001:db8:2::/64 via fe80::5efe:ac1f:b dev sit1"]


def test_a_second_setup_changes_nothing():
    assert plan(ROUTED_STATE, ROUTED) == ()


def test_dropping_the_routers_undoes_them():
    assert commands(ROUTED_STATE, BASE) == [
        "ip link set dev sit1 alias fleet-isatap",
        "ip tunnel prl prl-delete 172.31.0.11 dev sit1",
        "ip -6 route del 2001:db8:2::/64 via fe80::5efe:ac1f:b dev sit1"]


def test_a_new_first_router_repoints_fleets_route():
    moved = DesiredTunnel(**{**ROUTED.__dict__, "routers": (R2, R1)})
    assert commands(ROUTED_STATE, moved) == [
        "ip link set dev sit1 alias 'fleet-isatap prl=172.31.0.12,172.31.0.11'",
        "ip tunnel prl prl-default 172.31.0.12 dev sit1",
        "ip -6 route replace 2001:db8:2::/64 via fe80::5efe:ac1f:c dev sit1 proto 94"]


def test_a_route_fleet_did_not_make_is_refused_when_asked_for():
    theirs = Route(FAR, dev="eth0", gateway=IPv6Address("fe80::1"))
    state = TunnelState(**{**GOOD.__dict__, "routes": (theirs,)})
    with pytest.raises(ForeignRoute, match="2001:db8:2::/64 that fleet did not make"):
        plan(state, ROUTED)
    # unmarked, on sit1 itself: still not fleet's
    by_hand = TunnelState(**{**GOOD.__dict__, "routes": (Route(FAR, dev="sit1", gateway=HOP),)})
    with pytest.raises(ForeignRoute):
        plan(by_hand, ROUTED)


def test_the_implied_default_route_keeps_the_hosts_own():
    implied = DesiredTunnel(**{**ROUTED.__dict__, "routes": (IPv6Network("::/0"),),
                               "routes_required": False})
    theirs = Route(IPv6Network("::/0"), dev="eth0", gateway=IPv6Address("fe80::1"), protocol="ra")
    state = TunnelState(**{**GOOD.__dict__, "routes": (theirs,)})
    assert "route" not in " ".join(commands(state, implied))
    assert skipped_routes(state, implied) == (theirs,)
    assert commands(GOOD, implied)[-1] == "ip -6 route add ::/0 via fe80::5efe:ac1f:b dev sit1 proto 94"


def test_unreadable_routes_are_never_taken_for_none():
    parts = {"sysfs": "absent\n", "routes": "RTNETLINK answers: ...\n", "routes-status": "2\n"}
    state = parse_state(parts)
    assert state.routes is None
    with pytest.raises(StateUnreadable, match="IPv6 routes"):
        plan(state, ROUTED)
    assert plan(state, BASE)  # without routes, nothing needs them


def test_teardown_names_what_goes_with_the_device():
    step = removal(ROUTED_STATE, ROUTED)
    assert step is not None and step.command == "ip link del sit1"
    assert "its PRL 172.31.0.11, its routes 2001:db8:2::/64" in step.description


def test_for_host_defaults_and_leaves_the_host_itself_out(tmp_path):
    hosts = ("r:\n  data: {ipv4: 172.31.0.11}\nh:\n  data: {ipv4: 172.31.0.13}\n"
             "x:\n  data: {ipv4: 172.31.0.14, isatap_routes: ['2001:db8:2::/64']}\n")
    inventory = load_inventory(write_inventory(
        tmp_path, hosts, None, DEFAULTS + "  isatap_routers: [172.31.0.11]\n"))
    by_name = {h.name: DesiredTunnel.for_host(h) for h in inventory.hosts}
    assert by_name["r"].routers == () and by_name["r"].routes == ()
    assert by_name["h"].routers == (R1,) and by_name["h"].routes == (IPv6Network("::/0"),)
    assert not by_name["h"].routes_required
    assert by_name["x"].routes == (FAR,) and by_name["x"].routes_required


@pytest.mark.parametrize("data, field, words", [
    ("{isatap_routers: 172.31.0.11}", "data.isatap_routers", "must be a list"),
    ("{isatap_routers: [172.31.0.11, 'fd00::1']}", "data.isatap_routers[1]", "not an IPv4"),
    ("{isatap_routers: [172.31.0.11, 172.31.0.11]}", "data.isatap_routers", "twice"),
    ("{isatap_routes: ['2001:db8:2::1/64']}", "data.isatap_routes[0]", "not an IPv6 prefix"),
    ("{isatap_routes: ['fd00:5efe:1ab::/80']}", "data.isatap_routes[0]", "inside the ISATAP"),
])
def test_bad_router_fields_name_file_host_and_field(tmp_path, data, field, words):
    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(tmp_path, "a:\n  data: {ipv4: 10.0.0.1}\n  groups: [g]\n",
                                       f"g:\n  data: {data}\n", DEFAULTS))
    err = caught.value
    assert err.file.endswith("groups.yaml") and err.host == "a" and err.field == field
    assert words in str(err)
