"""ISATAP routers on real kernels: a prefix beyond the /64 answers only through the PRL.

One guest is the router (2001:db8:2::1 on its loopback). Setup without routers: another guest
cannot reach it. Setup with the router in data.isatap_routers and 2001:db8:2::/64 in
data.isatap_routes: it answers, and a second setup changes nothing. Teardown: the route and the
PRL entry go with sit1 and the ping fails again.
"""

from __future__ import annotations

import json
import os
import shutil
from ipaddress import IPv4Address, IPv6Network

import pytest
from labtools import fleet, fleet_json, lab_view, on_guest
from ruamel.yaml import YAML

from fleet.isatap import isatap_address
from fleet.lab import check_prerequisites

GUESTS = ["h1", "h2", "h3"]
FAR = "2001:db8:2::1"
PROBLEMS = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
pytestmark = [pytest.mark.skipif(bool(PROBLEMS), reason="; ".join(PROBLEMS) or "ready")]


@pytest.fixture(scope="module")
def lab(lab, tmp_path_factory):
    """Three guests of the shared lab: h1..h3 (h4 out of sight)."""
    return lab_view(lab, len(GUESTS), tmp_path_factory.mktemp("prl"))


def with_router(lab, tmp_path, router: str):
    """The lab's inventory with the router and the far prefix in its group."""
    copy = tmp_path / "routed"
    shutil.copytree(lab.inventory_dir, copy)
    yaml = YAML(typ="safe")
    groups = yaml.load((copy / "groups.yaml").read_text())
    group = next(iter(groups))
    groups[group]["data"].update(isatap_routers=[router], isatap_routes=["2001:db8:2::/64"])
    with (copy / "groups.yaml").open("w") as out:
        yaml.dump(groups, out)
    return copy


def pings(lab, guest: str) -> bool:
    return on_guest(lab, guest, f"ping -6 -c1 -W2 {FAR}").exit_status == 0  # type: ignore[attr-defined]


def sit1_routes(lab, guest: str) -> list[dict]:
    done = on_guest(lab, guest, "ip -j -6 route show 2001:db8:2::/64")
    return json.loads(done.stdout or "[]")  # type: ignore[attr-defined]


def prl_has(lab, guest: str, router: str) -> bool:
    """Whether the kernel's PRL holds the router (it cannot be listed: deleting it answers)."""
    done = on_guest(lab, guest, f"ip tunnel prl prl-delete {router} dev sit1 && "
                    f"ip tunnel prl prl-default {router} dev sit1")
    return done.exit_status == 0  # type: ignore[attr-defined]


def test_a_prefix_beyond_the_64_through_the_prl(lab, tmp_path):
    router, host = lab.guests[0], "h2"
    assert on_guest(lab, router.name, f"ip addr add {FAR}/128 dev lo").exit_status == 0  # type: ignore[attr-defined]

    done = fleet(lab, "run", "setup")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not pings(lab, host)

    routed = with_router(lab, tmp_path, str(router.ipv4))
    done = fleet(lab, "run", "setup", "--dry-run", inventory=routed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"add router {router.ipv4} to the PRL" in done.stdout
    assert not pings(lab, host)  # a dry run changed nothing

    done, report = fleet_json(lab, tmp_path, "run", "setup", inventory=routed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["summary"]["changed"] == 2  # the router itself is not its own router
    assert pings(lab, host)
    route, = sit1_routes(lab, host)
    assert (route["dev"], route["gateway"], route["protocol"]) == ("sit1", "fe80::5efe:ac1f:b", "94")
    assert prl_has(lab, host, str(router.ipv4))

    done, again = fleet_json(lab, tmp_path, "run", "setup", inventory=routed)
    assert done.returncode == 0 and again["summary"]["changed"] == 0, done.stdout

    # Back to no routers: fleet takes out its route and PRL entry, the tunnel stays.
    done = fleet(lab, "run", "setup")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sit1_routes(lab, host) == [] and not prl_has(lab, host, str(router.ipv4))
    assert not pings(lab, host)

    done = fleet(lab, "run", "setup", inventory=routed)
    assert done.returncode == 0 and pings(lab, host), done.stdout + done.stderr
    done = fleet(lab, "run", "teardown", inventory=routed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sit1_routes(lab, host) == []
    assert on_guest(lab, host, "ip link show dev sit1").exit_status != 0  # type: ignore[attr-defined]
    assert not pings(lab, host)

    # A sit1 made by hand is adopted; its teardown takes fleet's route and PRL entry with it.
    by_hand = lab.guests[2]
    address = f"{isatap_address(IPv6Network('fd00:5efe:1ab::/64'), IPv4Address(by_hand.ipv4))}/64"
    assert on_guest(lab, by_hand.name, f"ip tunnel add sit1 mode isatap local {by_hand.ipv4} && "
                    f"ip addr add {address} dev sit1 && ip link set sit1 up").exit_status == 0  # type: ignore[attr-defined]
    done = fleet(lab, "run", "setup", inventory=routed)
    assert done.returncode == 0 and "adopt sit1" in done.stdout, done.stdout + done.stderr
    assert pings(lab, by_hand.name) and len(sit1_routes(lab, by_hand.name)) == 1
    done = fleet(lab, "run", "teardown", inventory=routed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sit1_routes(lab, by_hand.name) == [] and not pings(lab, by_hand.name)
