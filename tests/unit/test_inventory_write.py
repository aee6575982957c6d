from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from fleet.inventory import DEFAULTS_FILE, GROUPS_FILE, HOSTS_FILE, load_inventory, write_inventory

# Names and values that YAML would read as something else if they were written bare.
HOSTS = {
    "yes": {"hostname": "10.0.0.1", "port": 2201, "groups": ["null"], "data": {"ipv4": "10.0.1.1"}},
    "1.5": {"hostname": "db.example.test", "username": "ops", "groups": ["null", "on-call"],
            "data": {"ipv4": "10.0.1.2", "note": "a # b: c", "tags": [], "empty": {}}},
    "h3": {"hostname": "10.0.0.3", "groups": ["null"],
           "data": {"ipv4": "10.0.1.3", "flag": True, "nothing": None}},
}
GROUPS = {"null": {"data": {"isatap_prefix": "fd00:1::/64"}}, "on-call": {}}
DEFAULTS = {"username": "root", "connection_options": {"asyncssh": {"extras": {
    "client_keys": ["/keys/id ed25519"], "known_hosts": "~/known_hosts"}}}}


def _yaml(path: Path) -> object:
    return YAML(typ="safe").load(path.read_text())


def test_what_is_written_is_what_yaml_reads(tmp_path: Path) -> None:
    write_inventory(tmp_path, HOSTS, DEFAULTS, GROUPS)
    assert _yaml(tmp_path / HOSTS_FILE) == HOSTS
    assert _yaml(tmp_path / GROUPS_FILE) == GROUPS
    assert _yaml(tmp_path / DEFAULTS_FILE) == DEFAULTS


def test_load_inventory_reads_back_the_hosts_written(tmp_path: Path) -> None:
    directory = write_inventory(tmp_path / "inv", HOSTS, DEFAULTS, GROUPS,
                                comments={HOSTS_FILE: "generated\nby a test"})
    assert (directory / HOSTS_FILE).read_text().startswith("# generated\n# by a test\n")
    yes, db, h3 = load_inventory(directory).hosts
    assert (yes.name, yes.ssh_host, yes.ssh_port, yes.username, yes.groups) == (
        "yes", "10.0.0.1", 2201, "root", ("null",))
    assert (db.name, db.ssh_host, db.ssh_port, db.username, db.groups) == (
        "1.5", "db.example.test", None, "ops", ("null", "on-call"))
    assert yes.prefix == db.prefix == IPv6Network("fd00:1::/64")
    assert db.ipv4 == IPv4Address("10.0.1.2")
    assert db.address == IPv6Address("fd00:1::5efe:a00:102")
    assert db.nornir_host.data["note"] == "a # b: c"
    assert dict(db.ssh_options)["client_keys"] == ["/keys/id ed25519"]
    assert h3.name == "h3" and h3.nornir_host.data["flag"] is True


def test_no_groups_file_without_groups(tmp_path: Path) -> None:
    write_inventory(tmp_path, {"h1": {"hostname": "10.0.0.1"}},
                    {"data": {"isatap_prefix": "fd00:1::/64"}})
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEFAULTS_FILE, HOSTS_FILE]
    (host,) = load_inventory(tmp_path).hosts
    assert host.ipv4 == IPv4Address("10.0.0.1")


def test_a_value_yaml_cannot_hold_as_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not"):
        write_inventory(tmp_path, {"h1": {"hostname": object()}}, {})
