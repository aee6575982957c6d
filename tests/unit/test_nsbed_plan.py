"""The namespace bed's address plan (pure) and its neighbour-table record (on a directory tree
shaped like /proc/sys, never the machine's own)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from fleet.isatap import embedded_ipv4, parse_ipv4
from fleet.lab import neighbour_tables
from fleet.lab.errors import LabError
from fleet.lab.nsbed_plan import MAX_HOSTS, plan_bed


def test_a_small_bed_keeps_its_addresses() -> None:
    plan = plan_bed(100, "t")
    assert plan.subnet == IPv4Network("172.31.1.0/24")
    assert plan.hub == IPv4Interface("172.31.1.1/24")
    first, last = plan.hosts[0], plan.hosts[-1]
    assert (first.name, first.netns, first.ipv4, first.mac) == (
        "h1", "t-h1", IPv4Address("172.31.1.10"), "02:fe:00:00:00:01")
    assert first.ipv6 == IPv6Address("fd00:5efe:bed::5efe:ac1f:10a")
    assert last.ipv4 == IPv4Address("172.31.1.109")
    assert plan.interface(first) == IPv4Interface("172.31.1.10/24")
    assert plan_bed(240, "t").hosts[-1].ipv4 == IPv4Address("172.31.1.249")
    assert plan_bed(240, "t").subnet.prefixlen == 24


def test_a_bed_of_1000_hosts_fits_one_subnet_with_distinct_addresses() -> None:
    plan = plan_bed(1000, "big")
    assert plan.subnet == IPv4Network("172.31.0.0/20")
    assert plan.hub == IPv4Interface("172.31.1.1/20")
    assert len(plan.hosts) == 1000
    assert plan.hosts[0].ipv4 == IPv4Address("172.31.1.10")  # the same start as a small bed
    assert plan.hosts[-1].ipv4 == IPv4Address("172.31.4.241")
    assert plan.hosts[-1].name == "h1000" and plan.hosts[-1].netns == "big-h1000"
    for field in ("name", "netns", "ipv4", "ipv6", "mac"):
        assert len({getattr(h, field) for h in plan.hosts}) == 1000, field
    subnet = plan.subnet
    for host in plan.hosts:
        assert host.ipv4 in subnet
        assert host.ipv4 not in (subnet.network_address, subnet.broadcast_address, plan.hub.ip)
        assert parse_ipv4(str(host.ipv4)) == host.ipv4  # an inventory takes it as data.ipv4
        assert host.ipv6 in IPv6Network("fd00:5efe:bed::/64")
        assert embedded_ipv4(host.ipv6) == host.ipv4  # the stand-in is the host's ISATAP address
        assert int(host.mac.split(":")[0], 16) & 0b11 == 0b10  # locally administered, unicast
        assert len(f"v{host.name}") <= 15  # the hub's veth name fits IFNAMSIZ
    # addresses that cross an octet boundary are plain host addresses of the /20
    crossing = {str(h.ipv4) for h in plan.hosts}
    assert {"172.31.1.255", "172.31.2.0", "172.31.3.255"} <= crossing


@pytest.mark.parametrize("count", [0, -1, MAX_HOSTS + 1, True, 2.0])
def test_the_plan_refuses_counts_it_cannot_hold(count: object) -> None:
    with pytest.raises(LabError, match="holds 1 to"):
        plan_bed(count, "t")  # type: ignore[arg-type]


def _sysctl_tree(root: Path, values: dict[str, int]) -> None:
    for key, value in values.items():
        path = root.joinpath(*key.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")


def _read_all(root: Path) -> dict[str, int]:
    return {key: int(root.joinpath(*key.split(".")).read_text()) for key in neighbour_tables.KEYS}


DEFAULTS = {key: {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024}[key.rsplit(".", 1)[1]]
            for key in neighbour_tables.KEYS}


def test_only_beds_above_200_hosts_touch_the_tables() -> None:
    assert not neighbour_tables.needs_room(100)
    assert not neighbour_tables.needs_room(200)
    assert neighbour_tables.needs_room(201)
    assert neighbour_tables.needs_room(1000)


def test_make_room_raises_says_so_and_restore_puts_the_defaults_back(tmp_path: Path) -> None:
    _sysctl_tree(tmp_path, DEFAULTS)
    said: list[str] = []
    changes = neighbour_tables.make_room(said.append, tmp_path)
    assert _read_all(tmp_path) == {
        "net.ipv4.neigh.default.gc_thresh1": 8192, "net.ipv4.neigh.default.gc_thresh2": 16384,
        "net.ipv4.neigh.default.gc_thresh3": 32768, "net.ipv6.neigh.default.gc_thresh1": 8192,
        "net.ipv6.neigh.default.gc_thresh2": 16384, "net.ipv6.neigh.default.gc_thresh3": 32768}
    assert len(said) == 1 and "net.ipv6.neigh.default.gc_thresh3 1024 -> 32768" in said[0]
    neighbour_tables.restore(changes, said.append, tmp_path)
    assert _read_all(tmp_path) == DEFAULTS
    assert "restored" in said[1]


def test_higher_values_are_kept_and_values_changed_meanwhile_are_left_alone(tmp_path: Path) -> None:
    higher = dict(DEFAULTS, **{"net.ipv4.neigh.default.gc_thresh3": 65536})
    _sysctl_tree(tmp_path, higher)
    said: list[str] = []
    changes = neighbour_tables.make_room(said.append, tmp_path)
    assert "net.ipv4.neigh.default.gc_thresh3" not in {c.key for c in changes}
    assert _read_all(tmp_path)["net.ipv4.neigh.default.gc_thresh3"] == 65536
    _sysctl_tree(tmp_path, {"net.ipv6.neigh.default.gc_thresh3": 50000})  # someone else's change
    neighbour_tables.restore(changes, said.append, tmp_path)
    after = _read_all(tmp_path)
    assert after == dict(higher, **{"net.ipv6.neigh.default.gc_thresh3": 50000})
    assert "left alone" in said[-1] and "net.ipv6.neigh.default.gc_thresh3" in said[-1]


def test_an_unreadable_table_fails_before_anything_is_written(tmp_path: Path) -> None:
    values = dict(DEFAULTS)
    del values["net.ipv6.neigh.default.gc_thresh1"]
    _sysctl_tree(tmp_path, values)
    with pytest.raises(LabError, match="net.ipv6.neigh.default.gc_thresh1"):
        neighbour_tables.make_room(lambda text: None, tmp_path)
    for key, value in values.items():
        assert int(tmp_path.joinpath(*key.split(".")).read_text()) == value
