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
