"""No third-party warning reaches a user's terminal: importing the SSH transport (as every
command that connects does) prints nothing, while a warning of another kind still shows."""

import subprocess
import sys

from conftest import REPO


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_importing_the_ssh_transport_prints_no_warning():
    done = python("import fleet.ssh.transport, fleet.ssh.persist.daemon")
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_other_warnings_still_show():
    done = python("import fleet.ssh.transport, warnings; warnings.warn('something else', UserWarning)")
    assert "something else" in done.stderr and "CryptographyDeprecationWarning" not in done.stderr


def test_listing_an_inventory_whose_hosts_name_their_port_loads_no_ssh(tmp_path):
    from conftest import write_inventory

    inventory = write_inventory(tmp_path / "inv", "a:\n  hostname: 127.0.0.1\n  port: 2201\n"
                                "  data: {ipv4: 10.0.0.1}\n",
                                defaults="data:\n  isatap_prefix: 'fd00::/64'\n")
    done = python("import sys\nfrom fleet import cli\n"
                  f"assert cli.main(['inventory', '-i', {str(inventory)!r}]) == 0\n"
                  "assert 'asyncssh' not in sys.modules, 'asyncssh loaded'\n")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "127.0.0.1:2201" in done.stdout
