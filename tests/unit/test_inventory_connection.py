"""The SSH connection fields each host ends up with, after Nornir's inheritance, are checked, and
an error names the file and the field as they were written."""

import itertools
from ipaddress import IPv4Address, IPv6Address

import pytest
from conftest import write_inventory
from nornir.plugins.inventory.simple import SimpleInventory

from fleet.core.errors import InventoryError
from fleet.inventory import InventoryFiles, check_username, load_inventory, parse_ssh_hostname
from fleet.inventory.files import read_yaml as _read_yaml
from fleet.inventory.nornir_objects import nornir_inventory as _nornir_inventory

DEFAULTS = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"


def error_of(tmp_path, hosts, groups=None, defaults=DEFAULTS) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        load_inventory(write_inventory(tmp_path, hosts, groups, defaults))
    return caught.value


@pytest.mark.parametrize("text, key", [
    ("10.0.0.1", IPv4Address("10.0.0.1")),
    ("fd00::1", IPv6Address("fd00::1")),
    ("FD00:0:0::1", IPv6Address("fd00::1")),
    ("::ffff:10.0.0.1", IPv4Address("10.0.0.1")),   # the same machine as 10.0.0.1
    ("web1.example.test", "web1.example.test"),
    ("Web1.Example.TEST.", "web1.example.test"),
    ("ip-172-31-14-146.eu-central-1.compute.internal", "ip-172-31-14-146.eu-central-1.compute.internal"),
    ("under_score", "under_score"),
    ("localhost", "localhost"),
    ("a" * 63 + ".test", "a" * 63 + ".test"),
])
def test_hostnames_that_are_accepted(text, key):
    assert parse_ssh_hostname(text) == key


@pytest.mark.parametrize("text, why", [
    ('a:1 -oProxyCommand="touch pwned"', "contains whitespace"),
    ("a -oProxyCommand=x", "contains whitespace"),
    ("-oProxyCommand=touch", "starts with '-'"),
    ("web1\nrm -rf /", "control character"),
    ("web1\x1b[31m", "control character"),
    ("a'b", "quote"),
    ('a"b', "quote"),
    ("a`id`", "quote"),
    ("fe80::1%eth0", "scope id"),
    ("10.0.0.1%1", "'%'"),
    ("web1:22", "contains ':' but is not an IPv6 address"),
    ("[::1]", "contains ':' but is not an IPv6 address"),
    ("a..b", "empty label"),
    (".a", "empty label"),
    ("a.-b", "label '-b' starts with '-'"),
    ("a;id", "contains ';'"),
    ("a/b", "contains '/'"),
    ("a$(id)", "contains '$'"),
    ("a" * 64 + ".test", "longer than 63"),
    (".".join(["a" * 60] * 5), "longer than 253"),
    ("10.0.0.300", "looks like an IPv4 address"),
    ("12345", "looks like an IPv4 address"),
    ("0x7f000001", "reads it as the IPv4 address 127.0.0.1"),
    ("", "must not be empty"),
])
def test_hostnames_that_are_refused_say_why(text, why):
    with pytest.raises(ValueError) as caught:
        parse_ssh_hostname(text)
    assert why in str(caught.value)


def test_a_hostname_that_is_not_a_string():
    with pytest.raises(ValueError, match="must be a string, not int"):
        parse_ssh_hostname(123)


@pytest.mark.parametrize("name", ["ec2-user", "_svc", "a.b", "machine$", "u" * 32, "Admin"])
def test_login_names_that_are_accepted(name):
    assert check_username(name) == name


@pytest.mark.parametrize("name, why", [
    (123, "must be a string, not int"),
    ("-oProxyCommand=x", "not a plain login name"),
    ("1abc", "not a plain login name"),
    ("root;id", "not a plain login name"),
    ("a b", "not a plain login name"),
    ("user@example.test", "not a plain login name"),
    ("", "not a plain login name"),
    ("u" * 33, "at most 32"),
])
def test_login_names_that_are_refused(name, why):
    with pytest.raises(ValueError, match=why):
        check_username(name)


# Each case: files (hosts, groups, defaults), then the file, host and field the error names.
@pytest.mark.parametrize("hosts, groups, defaults, file, field, message", [
    ("a:\n  hostname: 10.0.0.1\n  connection_options: {asyncssh: {port: '22; id'}}\n", None, DEFAULTS,
     "hosts.yaml", "connection_options.asyncssh.port", "must be a TCP port number 1-65535, not '22; id'"),
    ("a:\n  hostname: 10.0.0.1\n", None, DEFAULTS + "connection_options: {asyncssh: {port: 99999}}\n",
     "defaults.yaml", "connection_options.asyncssh.port", "not 99999"),
    ("a:\n  hostname: 10.0.0.1\n  port: true\n", None, DEFAULTS, "hosts.yaml", "port", "not True"),
    ("a:\n  hostname: 10.0.0.1\n  groups: [g]\n", "g:\n  connection_options: {asyncssh: {username: 123}}\n",
     DEFAULTS, "groups.yaml", "connection_options.asyncssh.username",
     "must be a string, not int (set in group 'g')"),
    ("a:\n  hostname: 10.0.0.1\n", None, DEFAULTS + "username: '-oProxyCommand=x'\n",
     "defaults.yaml", "username", "not a plain login name"),
    ("a:\n  hostname: 10.0.0.1\n  connection_options: {asyncssh: {hostname: \"10.0.0.1\\nid\"}}\n", None,
     DEFAULTS, "hosts.yaml", "connection_options.asyncssh.hostname", "control character"),
    ("a:\n  hostname: 'a:1 -oProxyCommand=\"touch pwned\"'\n  data: {ipv4: 10.0.0.1}\n", None, DEFAULTS,
     "hosts.yaml", "hostname", "is neither an IP address nor a DNS name: it contains whitespace"),
    ("a:\n  data: {ipv4: 10.0.0.1}\n  groups: [g]\n", "g:\n  hostname: 'fe80::1%eth0'\n", DEFAULTS,
     "groups.yaml", "hostname", "scope id"),
    ("a:\n  hostname: 10.0.0.1\n  connection_options: {asyncssh: {password: 1234}}\n", None, DEFAULTS,
     "hosts.yaml", "connection_options.asyncssh.password", "must be a string, not int"),
    ("'-oProxyCommand=x':\n  data: {ipv4: 10.0.0.1}\n", None, DEFAULTS, "hosts.yaml", "hostname",
     "starts with '-', which ssh would read as an option (no hostname is set, so the host's name is used)"),
    ("a:\n  hostname: '0x7f000001'\n  data: {ipv4: 10.0.0.1}\n", None, DEFAULTS, "hosts.yaml", "hostname",
     "127.0.0.1"),
    ("a:\n  hostname: 10.0.0.1\n  connection_options: {asyncssh: {extras: {client_keys: 5}}}\n", None,
     DEFAULTS, "hosts.yaml", "connection_options.asyncssh.extras.client_keys", "must be a file path"),
    ("a:\n  hostname: 10.0.0.1\n", None, DEFAULTS + "connection_options:\n  asyncssh:\n"
     "    extras: {known_hosts: {a: 1}}\n", "defaults.yaml", "connection_options.asyncssh.extras.known_hosts",
     "must be a file path"),
])
def test_bad_connection_values_name_where_they_were_written(tmp_path, hosts, groups, defaults, file, field,
                                                            message):
    err = error_of(tmp_path, hosts, groups, defaults)
    host = "-oProxyCommand=x" if hosts.startswith("'-o") else "a"
    assert (err.file, err.host, err.field) == (str(tmp_path / file), host, field)
    assert message in str(err)


def test_a_value_nobody_uses_is_not_refused(tmp_path):
    # The host's own connection option wins: the defaults' bad port never reaches a host.
    inventory = load_inventory(write_inventory(
        tmp_path, "a:\n  hostname: 10.0.0.1\n  connection_options: {asyncssh: {port: 2222}}\n",
        defaults=DEFAULTS + "port: '22; id'\n"))
    assert inventory.hosts[0].ssh_port == 2222


def test_defaults_connection_options_come_before_a_later_group(tmp_path):
    # Nornir looks at the defaults' connection_options at the end of each group's branch, so for
    # groups [g1, g2] the defaults' port wins over g2's. A bad value is refused where Nornir uses it.
    hosts = "a:\n  hostname: 10.0.0.1\n  groups: [g1, g2]\n"
    groups = "g1: {}\ng2:\n  connection_options: {asyncssh: {port: '22; id'}}\n"
    defaults = DEFAULTS + "connection_options: {asyncssh: {port: 2200}}\n"
    assert load_inventory(write_inventory(tmp_path / "1", hosts, groups, defaults)).hosts[0].ssh_port == 2200
    err = error_of(tmp_path / "2", hosts, "g1: {}\ng2:\n  connection_options: {asyncssh: {port: 2300}}\n",
                   DEFAULTS + "connection_options: {asyncssh: {port: '22; id'}}\n")
    assert err.file.endswith("defaults.yaml") and err.field == "connection_options.asyncssh.port"


# Every place a port can be written for host h (groups [g1, g2], g1's parent g3), each with its own
# value, so that the value found tells where it was found.
PORT_PLACES = {
    "host.options": 1001, "g1.options": 1002, "g3.options": 1003, "g2.options": 1004,
    "defaults.options": 1005, "host.top": 1006, "g1.top": 1007, "g3.top": 1008, "g2.top": 1009,
    "defaults.top": 1010,
}


def _element(places, name):
    lines = []
    if f"{name}.top" in places:
        lines.append(f"  port: {PORT_PLACES[name + '.top']}\n")
    if f"{name}.options" in places:
        lines.append(f"  connection_options: {{asyncssh: {{port: {PORT_PLACES[name + '.options']}}}}}\n")
    return "".join(lines)


def test_where_a_port_is_found_agrees_with_nornir_everywhere(tmp_path):
    """Every combination of places: the walk that names the file finds the value Nornir's own
    SimpleInventory and get_connection_parameters give."""
    checked = 0
    for count in range(len(PORT_PLACES) + 1):
        for places in itertools.combinations(PORT_PLACES, count):
            if count > 3 and checked % 7:  # every small combination, a seventh of the large ones
                checked += 1
                continue
            d = write_inventory(
                tmp_path, "h:\n  hostname: 10.0.0.1\n  groups: [g1, g2]\n" + _element(places, "host"),
                "g1:\n  groups: [g3]\n" + _element(places, "g1") + "g2:\n  groups: []\n"
                + _element(places, "g2") + "g3:\n  groups: []\n" + _element(places, "g3"),
                DEFAULTS + "".join(line[2:] for line in _element(places, "defaults").splitlines(True)))
            nornir_port = SimpleInventory(str(d / "hosts.yaml"), str(d / "groups.yaml"),
                                          str(d / "defaults.yaml")).load().hosts["h"] \
                .get_connection_parameters("asyncssh").port
            files = InventoryFiles(d, _read_yaml(d / "hosts.yaml", required=True),
                                   _read_yaml(d / "groups.yaml", required=True),
                                   _read_yaml(d / "defaults.yaml", required=True))
            source = files.connection_source("h", "port")
            assert (source.value if source else None) == nornir_port, places
            if source is not None:
                place = next(p for p, port in PORT_PLACES.items() if port == nornir_port)
                owner, kind = place.split(".")
                expected_file = {"host": "hosts.yaml", "defaults": "defaults.yaml"}.get(owner, "groups.yaml")
                assert source.file.endswith(expected_file), places
                assert source.field == ("connection_options.asyncssh.port" if kind == "options" else "port")
                assert (f"group {owner!r}" in source.note) == owner.startswith("g")
            assert load_inventory(d).hosts[0].ssh_port == nornir_port
            checked += 1
    assert checked == 2 ** len(PORT_PLACES)


def test_the_inventory_is_what_simple_inventory_builds(tmp_path):
    d = write_inventory(tmp_path, """
web1:
  hostname: web1.example.test
  port: 2222
  groups: [web, all_]
  data: {ipv4: 10.0.0.5, role: front}
  connection_options:
    asyncssh:
      username: admin
      extras: {known_hosts: null}
    netmiko: {platform: linux}
db1:
  hostname: 10.0.0.6
  password: secret
""", groups="web:\n  groups: [all_]\n  username: webadmin\n  connection_options: {asyncssh: {port: 2022}}\n"
            "all_:\n  data:\n    isatap_prefix: 'fd00:1::/64'\n  platform: linux\n",
        defaults="username: ops\nconnection_options: {asyncssh: {extras: {client_keys: [k]}}}\n" + DEFAULTS)
    # Built afresh: Nornir's get_connection_parameters writes what it inherits into the host's own
    # options, so an inventory that has been used no longer compares.
    ours = _nornir_inventory(load_inventory(d).files)
    theirs = SimpleInventory(str(d / "hosts.yaml"), str(d / "groups.yaml"), str(d / "defaults.yaml")).load()
    assert ours.dict() == theirs.dict()
    for name in theirs.hosts:
        assert ours.hosts[name].get_connection_parameters("asyncssh").dict() == \
            theirs.hosts[name].get_connection_parameters("asyncssh").dict()
        assert ours.hosts[name].extended_data() == theirs.hosts[name].extended_data()


def test_hosts_and_options_written_as_null_load(tmp_path):
    # SimpleInventory fails on both with an AttributeError; they mean "nothing set".
    inventory = load_inventory(write_inventory(
        tmp_path, "a:\n  hostname: 10.0.0.1\n  connection_options: {asyncssh: }\n'10.0.0.2':\n",
        defaults=DEFAULTS))
    assert [(h.name, h.ssh_host, str(h.ipv4)) for h in inventory.hosts] == \
        [("a", "10.0.0.1", "10.0.0.1"), ("10.0.0.2", "10.0.0.2", "10.0.0.2")]


def test_nornir_building_from_files_needs_no_file_reading(tmp_path):
    files = InventoryFiles(tmp_path / "absent", {"a": {"hostname": "10.0.0.1", "groups": ["g"]}},
                           {"g": {"port": 2200}}, {"username": "ops"})
    host = _nornir_inventory(files).hosts["a"]
    assert (host.port, host.username, [g.name for g in host.groups]) == (2200, "ops", ["g"])


@pytest.mark.parametrize("groups_text, defaults_text", [
    ("", DEFAULTS),
    ("# no groups yet\n", DEFAULTS),
    (None, "# only comments\n"),
])
def test_empty_files_make_nornir_log_no_warning(tmp_path, caplog, recwarn, groups_text, defaults_text):
    hosts = "a:\n  hostname: 10.0.0.1\n"
    if defaults_text == "# only comments\n":
        hosts += "  data: {isatap_prefix: 'fd00::/64'}\n"
    caplog.set_level("DEBUG")
    inventory = load_inventory(write_inventory(tmp_path, hosts, groups_text, defaults_text))
    assert len(inventory) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= 30] == []
    assert len(recwarn) == 0


def test_simple_inventory_does_warn_about_an_empty_groups_file(tmp_path, caplog):
    # What the test above guards against: Nornir logs this warning, it does not `warnings.warn`.
    d = write_inventory(tmp_path, "a:\n  hostname: 10.0.0.1\n", "# nothing\n", DEFAULTS)
    SimpleInventory(str(d / "hosts.yaml"), str(d / "groups.yaml"), str(d / "defaults.yaml")).load()
    assert any("groups.yaml' is empty" in r.getMessage() for r in caplog.records if r.levelno == 30)
