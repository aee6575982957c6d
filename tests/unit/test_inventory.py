from ipaddress import IPv4Address, IPv6Address

import pytest
from conftest import REPO, write_inventory

from fleet.core.errors import InventoryError, UsageError
from fleet.inventory import load_inventory

DEFAULTS = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"


def test_the_shipped_example_is_the_article():
    inventory = load_inventory(REPO / "inventory")
    a, b = inventory.hosts
    assert (a.ipv4, a.address) == (IPv4Address("172.31.14.146"),
                                   IPv6Address("2002:ca0c:1e01::5efe:ac1f:e92"))
    assert b.address == IPv6Address("2002:ca0c:1e01::5efe:ac1f:e93")
    assert a.username == "ec2-user" and a.groups == ("vpc",)


def test_nornir_fields_and_inheritance(tmp_path):
    d = write_inventory(tmp_path, """
web1:
  hostname: web1.example.test
  port: 2222
  groups: [web]
  data: {ipv4: 10.0.0.5}
  connection_options:
    asyncssh:
      username: admin
      extras: {known_hosts: null}
db1:
  hostname: 10.0.0.6
""", groups="web:\n  groups: [all_]\n  username: webadmin\n"
                  "all_:\n  data:\n    isatap_prefix: 'fd00:1::/64'\n",
        defaults="username: ops\n" + DEFAULTS)
    inventory = load_inventory(d)
    web1, db1 = inventory.hosts
    assert web1.ssh_host == "web1.example.test" and web1.ssh_port == 2222
    assert web1.username == "admin"          # connection_options override the host's own
    assert web1.ssh_options == {"known_hosts": None}
    assert str(web1.prefix) == "fd00:1::/64"  # from the grandparent group
    assert db1.ipv4 == IPv4Address("10.0.0.6")  # hostname used when data.ipv4 is absent
    assert db1.username == "ops" and str(db1.prefix) == "fd00:5efe:1ab::/64"


def error_of(tmp_path, hosts, groups=None, defaults=DEFAULTS) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(tmp_path, hosts, groups, defaults))
    return caught.value


def test_missing_ipv4_names_file_host_and_field(tmp_path):
    err = error_of(tmp_path, "web1:\n  hostname: web1.example.test\n")
    assert err.file.endswith("hosts.yaml") and err.host == "web1" and err.field == "data.ipv4"
    assert "hosts.yaml: host 'web1': field 'data.ipv4': missing" in str(err)


def test_invalid_ipv4(tmp_path):
    err = error_of(tmp_path, "a:\n  data: {ipv4: 172.31.14.300}\n")
    assert (err.host, err.field) == ("a", "data.ipv4") and "not an IPv4" in str(err)


def test_prefix_that_is_not_a_64_names_the_file_that_set_it(tmp_path):
    err = error_of(tmp_path, "a:\n  hostname: 10.0.0.1\n  groups: [g]\n",
                   groups="g:\n  data: {isatap_prefix: '2002:ca0c:1e01::/48'}\n")
    assert err.file.endswith("groups.yaml") and err.field == "data.isatap_prefix"
    assert "ISATAP needs a /64" in str(err)


def test_missing_prefix(tmp_path):
    err = error_of(tmp_path, "a:\n  hostname: 10.0.0.1\n", defaults=None)
    assert err.field == "data.isatap_prefix" and "missing" in str(err)


def test_duplicate_ipv4(tmp_path):
    err = error_of(tmp_path, "a:\n  hostname: 10.0.0.1\nb:\n  hostname: x.test\n  data: {ipv4: 10.0.0.1}\n")
    assert err.host == "b" and "also the ipv4 of host 'a'" in str(err)


def test_unknown_group(tmp_path):
    err = error_of(tmp_path, "a:\n  hostname: 10.0.0.1\n  groups: [nope]\n", groups="g: {}\n")
    assert (err.host, err.field) == ("a", "groups") and "unknown group 'nope'" in str(err)


def test_unreadable_yaml(tmp_path):
    err = error_of(tmp_path, "a:\n  hostname: [10.0.0.1\n")
    assert err.file.endswith("hosts.yaml") and "invalid YAML" in str(err)


def test_yaml_that_is_not_a_mapping(tmp_path):
    assert "must be a mapping" in str(error_of(tmp_path, "- a\n- b\n"))


def test_no_inventory_directory(tmp_path):
    with pytest.raises(InventoryError, match="inventory directory not found"):
        load_inventory(tmp_path / "nowhere")


@pytest.mark.parametrize("hosts, field", [
    ("a:\n  hostname: 10.0.0.1\n  port: 70000\n", "port"),
    ("a:\n  hostname: 10.0.0.1\n  port: '22'\n", "port"),
    ("a:\n  hostname: \"10.0.0.1\\nrm -rf /\"\n", "hostname"),
    ("a:\n  hostname: 10.0.0.1\n  data: [1]\n", "data"),
    ("a:\n  hostname: 10.0.0.1\n  colour: blue\n", "colour"),
    ("a:\n  hostname: 10.0.0.1\n  connection_options: {asyncssh: {extras: [1]}}\n",
     "connection_options.asyncssh.extras"),
])
def test_bad_fields(tmp_path, hosts, field):
    assert error_of(tmp_path, hosts).field == field


def test_hostile_name(tmp_path):
    err = error_of(tmp_path, "\"a\\u001b[31mb\":\n  hostname: 10.0.0.1\n")
    assert "invalid name" in str(err)


def test_hostile_ipv4_never_reaches_a_command(tmp_path):
    err = error_of(tmp_path, "a:\n  data: {ipv4: '10.0.0.1; reboot'}\n")
    assert err.field == "data.ipv4"


def test_group_cycle(tmp_path):
    err = error_of(tmp_path, "a:\n  hostname: 10.0.0.1\n  groups: [g1]\n",
                   groups="g1: {groups: [g2]}\ng2: {groups: [g1]}\n")
    assert "cycle" in str(err)


def test_filters(tmp_path):
    inventory = load_inventory(write_inventory(
        tmp_path, "web1: {hostname: 10.0.0.1, groups: [web]}\nweb2: {hostname: 10.0.0.2, groups: [web]}\n"
                  "db1: {hostname: 10.0.0.3, groups: [db]}\n",
        groups="web: {groups: [site]}\ndb: {}\nsite: {}\n", defaults=DEFAULTS))
    assert [h.name for h in inventory.select(names=["web*"]).hosts] == ["web1", "web2"]
    assert [h.name for h in inventory.select(groups=["site"]).hosts] == ["web1", "web2"]
    assert [h.name for h in inventory.select(names=["web1", "db1"], groups=["db"]).hosts] == ["db1"]
    with pytest.raises(UsageError, match="no host .* matches 'zzz'"):
        inventory.select(names=["zzz"])
    with pytest.raises(UsageError, match="no group 'nope'"):
        inventory.select(groups=["nope"])


def test_selection_errors_name_the_options_the_cli_has(tmp_path):
    inventory = load_inventory(write_inventory(tmp_path, "a: {hostname: 10.0.0.1}\n", defaults=DEFAULTS))
    with pytest.raises(UsageError) as caught:
        inventory.select(names=["x"])
    assert str(caught.value) == f"-l/--limit: no host in {tmp_path} matches 'x'"
    with pytest.raises(UsageError) as caught:
        inventory.select(groups=["g"])
    assert str(caught.value) == f"-g/--groups: {tmp_path / 'groups.yaml'} has no group 'g'"


@pytest.mark.parametrize("ipv4, kind", [
    ("127.0.0.2", "loopback (127.0.0.0/8)"),
    ("169.254.10.1", "link-local (169.254.0.0/16)"),
    ("0.0.0.0", "(0.0.0.0/8)"),
    ("239.1.1.1", "multicast (224.0.0.0/4)"),
    ("250.0.0.1", "reserved (240.0.0.0/4)"),
    ("255.255.255.255", "limited broadcast"),
])
def test_tunnel_ipv4_must_be_unicast(tmp_path, ipv4, kind):
    err = error_of(tmp_path, "a:\n  hostname: a.test\n  groups: [g]\n",
                   groups=f"g:\n  data: {{ipv4: '{ipv4}'}}\n")
    assert err.file.endswith("groups.yaml") and (err.host, err.field) == ("a", "data.ipv4")
    assert f"{ipv4} cannot be a tunnel endpoint: it is" in str(err) and kind in str(err)


def test_hostname_used_as_ipv4_must_be_unicast_too(tmp_path):
    err = error_of(tmp_path, "a:\n  hostname: 127.0.0.1\n  port: 2201\n")
    assert (err.host, err.field) == ("a", "data.ipv4")
    assert "hostname used in its place will not do: 127.0.0.1 cannot be a tunnel endpoint: it is " \
           "loopback" in str(err) and "set data.ipv4" in str(err)


def test_prefix_with_a_scope_id_is_refused(tmp_path):
    err = error_of(tmp_path, "a:\n  hostname: 10.0.0.1\n", defaults="data:\n  isatap_prefix: 'fd00::%1/64'\n")
    assert err.file.endswith("defaults.yaml") and err.field == "data.isatap_prefix"
    assert "scope id" in str(err)


@pytest.mark.parametrize("hosts, field", [
    ("a: {hostname: 10.0.0.1}\nb: {hostname: 10.0.0.1, port: 22, data: {ipv4: 10.0.0.2}}\n", "hostname/port"),
    ("a: {hostname: 'fd00::1', data: {ipv4: 10.0.0.1}}\nb: {hostname: 'FD00:0::1', data: {ipv4: 10.0.0.2}}\n",
     "hostname"),
    ("a: {hostname: 'Web.Test', data: {ipv4: 10.0.0.1}}\nb: {hostname: web.test., data: {ipv4: 10.0.0.2}}\n",
     "hostname"),
    ("a: {hostname: 10.0.0.1}\nb: {hostname: '::ffff:10.0.0.1', data: {ipv4: 10.0.0.2}}\n", "hostname"),
    ("a: {hostname: h.test, port: 2222, data: {ipv4: 10.0.0.1}}\n"
     "b:\n  hostname: x.test\n  data: {ipv4: 10.0.0.2}\n"
     "  connection_options: {asyncssh: {hostname: H.test, port: 2222}}\n",
     "connection_options.asyncssh.hostname/connection_options.asyncssh.port"),
])
def test_two_hosts_with_one_ssh_target(tmp_path, hosts, field):
    err = error_of(tmp_path, hosts)
    assert err.file.endswith("hosts.yaml") and (err.host, err.field) == ("b", field)
    assert "host 'a' connects to" in str(err) and "sit1" in str(err)


def test_one_address_behind_different_jump_hosts_is_different_machines(tmp_path):
    def entry(name, ipv4, via):
        return (f"{name}:\n  hostname: 10.0.0.5\n  data: {{ipv4: {ipv4}}}\n"
                f"  connection_options: {{asyncssh: {{extras: {{tunnel: '{via}'}}}}}}\n")

    inventory = load_inventory(write_inventory(tmp_path / "1", entry("a", "10.1.0.5", "bastion-1.test")
                                               + entry("b", "10.2.0.5", "bastion-2.test"), defaults=DEFAULTS))
    assert len(inventory) == 2
    err = error_of(tmp_path / "2", entry("a", "10.1.0.5", "bastion-1.test") + entry("b", "10.2.0.5",
                                                                                     "bastion-1.test"))
    assert err.host == "b" and "host 'a' connects to 10.0.0.5:22 too" in str(err)


def test_one_address_on_different_ports_is_different_machines(tmp_path):
    # The lab: every guest behind 127.0.0.1 on its own forwarded port.
    inventory = load_inventory(write_inventory(
        tmp_path, "a: {hostname: 127.0.0.1, port: 2201, data: {ipv4: 10.0.0.1}}\n"
                  "b: {hostname: 127.0.0.1, port: 2202, data: {ipv4: 10.0.0.2}}\n", defaults=DEFAULTS))
    assert [h.ssh_port for h in inventory.hosts] == [2201, 2202]
