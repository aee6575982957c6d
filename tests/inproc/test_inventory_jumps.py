"""A jump spec (the `tunnel` extra, a ProxyJump or Port in an ssh config a login reads) with a port
that is not 1-65535, or a hop that is not a host, is bad input: exit 2 before any host is touched,
one line naming the file, the host and the field; never a crash in the middle of a run."""

import asyncio

import pytest
from conftest import write_inventory
from sshtarget import Target

from fleet import cli
from fleet.core.errors import InventoryError, SSHSetupError
from fleet.inventory import load_inventory
from fleet.jumps import Hop, config_problems, parse_jumps
from fleet.ssh.transport import AsyncsshTransport, resolve_route

DEFAULTS = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"
EXTRAS = "  connection_options:\n    asyncssh:\n      extras:\n"
TUNNEL_FIELD = "field 'connection_options.asyncssh.extras.tunnel'"


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    """A HOME of the test's own: the real ~/.ssh is never read or written."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def host_with(extras: str) -> str:
    # a closed port on loopback: were a host touched, it would fail at once, not hang
    return f"h1:\n  hostname: 127.0.0.1\n  port: 1\n  data: {{ipv4: 10.0.0.1}}\n{EXTRAS}{extras}"


def run_cli(capsys, *argv):
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("spec, said", [
    ("127.0.0.1:99999", "port '99999' is not a TCP port number 1-65535"),
    ("bob@j1:0", "port '0'"),
    ("j1:-1", "port '-1'"),
    ("j1:+22", "port '+22'"),
    ("j1:2_2", "port '2_2'"),
    ("j1:", "port ''"),
    ("ok:22,[::1]:70000", "port '70000'"),
    ("[::1", "'[' without ']'"),
    ("[::1]x", "after ']' only ':port' may follow"),
    ("bob@", "no host"),
    ("@j1", "an empty user name"),
    ("-oProxyCommand=x", "jump host '-oProxyCommand=x'"),
    ("bad user@j1", "jump host 'j1'"),
])
def test_a_bad_tunnel_extra_is_an_inventory_error_naming_file_host_and_field(tmp_path, spec, said):
    inventory = write_inventory(tmp_path / "inv", host_with(f"        tunnel: '{spec}'\n"),
                                defaults=DEFAULTS)
    with pytest.raises(InventoryError) as caught:
        load_inventory(inventory)
    message = str(caught.value)
    assert message.startswith(f"{inventory / 'hosts.yaml'}: host 'h1': {TUNNEL_FIELD}: "), message
    assert said in message


@pytest.mark.parametrize("value", ["123", "[j1, j2]", "{host: j1}"])
def test_a_tunnel_extra_that_is_not_a_string_is_refused(tmp_path, value):
    inventory = write_inventory(tmp_path / "inv", host_with(f"        tunnel: {value}\n"),
                                defaults=DEFAULTS)
    with pytest.raises(InventoryError, match="as ProxyJump writes them"):
        load_inventory(inventory)


def test_a_port_extra_out_of_range_is_refused(tmp_path):
    inventory = write_inventory(tmp_path / "inv", host_with("        port: 99999\n"), defaults=DEFAULTS)
    with pytest.raises(InventoryError, match="extras.port': must be a TCP port number 1-65535"):
        load_inventory(inventory)


def test_good_jump_specs_still_load(tmp_path):
    inventory = write_inventory(tmp_path / "inv", host_with(
        "        tunnel: 'bob@j1.example:2222,ssh://[::1]:22, j3'\n"), defaults=DEFAULTS)
    assert load_inventory(inventory).hosts[0].ssh_options["tunnel"].startswith("bob@j1")
    assert parse_jumps("bob@j1:2222, j2,ssh://al@[::1]:23,[::2]") == [
        Hop("j1", 2222, "bob"), Hop("j2", None, None), Hop("::1", 23, "al"), Hop("::2", None, None)]


def test_fleet_run_with_a_tunnel_port_of_99999_is_exit_2_in_one_line(tmp_path, capsys):
    inventory = write_inventory(tmp_path / "inv", host_with("        tunnel: '127.0.0.1:99999'\n"),
                                defaults=DEFAULTS)
    code, err = run_cli(capsys, "run", "setup", "-i", inventory, "--json", tmp_path / "out.json")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(inventory / "hosts.yaml") in err and "host 'h1'" in err and TUNNEL_FIELD in err
    assert not (tmp_path / "out.json").exists()  # nothing was run, no report written


def test_a_proxyjump_port_of_99999_in_the_config_extra_is_exit_2(tmp_path, capsys):
    config = tmp_path / "ssh_config"
    config.write_text("Host other\n  User bob\n\nHost *\n  ProxyJump bastion:99999\n")
    inventory = write_inventory(tmp_path / "inv", host_with(f"        config: ['{config}']\n"),
                                defaults=DEFAULTS)
    code, err = run_cli(capsys, "run", "setup", "-i", inventory)
    assert code == 2 and err.count("\n") == 1, err
    assert str(inventory / "hosts.yaml") in err and "host 'h1'" in err
    assert "field 'connection_options.asyncssh.extras.config'" in err
    assert f"{config}: line 5: ProxyJump: port '99999'" in err


def test_a_bad_port_in_the_users_ssh_config_is_exit_2_naming_it(tmp_path, capsys, empty_home):
    config = empty_home / ".ssh" / "config"
    config.write_text("Host *\n    Port=99999\n")
    inventory = write_inventory(tmp_path / "inv", "h1:\n  hostname: 127.0.0.1\n  data: {ipv4: 10.0.0.1}\n",
                                defaults=DEFAULTS)
    code, err = run_cli(capsys, "run", "setup", "-i", inventory)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"fleet: error: {config}: host 'h1': line 2: Port: port '99999'"), err


def test_config_problems_reads_every_block_and_only_port_and_proxyjump(tmp_path):
    config = tmp_path / "config"
    config.write_text("# Port 99999 in a comment\nHost a\n  Port 22\n  ProxyJump none\n"
                      "Match host b\n  proxyjump j:1,k:65536\n  ConnectTimeout 99999\n")
    problems = config_problems(config)
    assert [(p.line, p.directive) for p in problems] == [(6, "proxyjump")]
    assert config_problems(tmp_path / "missing") == []


def test_the_transport_refuses_a_bad_proxyjump_as_ssh_setup_not_a_crash(tmp_path):
    # What the inventory check would have refused, met by the transport itself (an API caller's
    # own host): an ssh-setup failure of that host, nothing sent anywhere.
    config = tmp_path / "config"
    config.write_text("Host *\n  ProxyJump 127.0.0.1:99999\n")
    port_config = tmp_path / "port_config"
    port_config.write_text("Host *\n  Port 99999\n")

    async def attempt(options):
        transport = AsyncsshTransport()
        try:
            await transport.connect(Target("h1", ssh_port=1, ssh_options=options), timeout=5)
        except Exception as exc:  # the failure is what the test looks at
            return exc
        finally:
            await transport.close()

    failed = asyncio.run(attempt({"config": [str(config)], "known_hosts": None}))
    assert isinstance(failed, SSHSetupError), repr(failed)
    assert "port '99999'" in str(failed)
    with pytest.raises(ValueError, match="port '99999'"):
        resolve_route("127.0.0.1", None, None, [str(port_config)])
