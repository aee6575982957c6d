"""A shell script run on guests as root, through the forwarder, with OpenSSH's own client.

The lab's own maintenance (reset) logs in the way a user of the lab would: the lab's client key,
its known_hosts (host keys checked), nothing from the user's ~/.ssh. Several guests at once, one
`ssh` process each; each result is data (exit status and output), never an exception.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet.lab.commands import require_command

SSH_FAILED = 255  # ssh's own exit status when it could not connect or log in
CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class RemoteResult:
    exit_status: int
    output: str  # stdout and stderr together

    @property
    def reached(self) -> bool:
        """Whether ssh logged in (the script ran, whatever its exit status)."""
        return self.exit_status != SSH_FAILED


def ssh_command(ssh: Path, port: int, *, client_key: Path, known_hosts: Path,
                host: str = "127.0.0.1") -> list[str]:
    """The OpenSSH client's command line for root on host:port, reading the script on stdin. Pure."""
    return [str(ssh), "-F", "/dev/null", "-p", str(port), "-i", str(client_key),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "LogLevel=ERROR",
            f"root@{host}", "sh -s"]


def run_script(ports: Mapping[str, int], script: str, *, client_key: Path, known_hosts: Path,
               timeout: float = 60.0) -> dict[str, RemoteResult]:
    """Run `script` on every guest in `ports` ({name: forwarded port}) at once; {name: result}.

    A guest that has not finished `timeout` seconds after the start is a result with SSH_FAILED.
    """
    ssh = require_command("ssh")
    running = {name: subprocess.Popen(ssh_command(ssh, port, client_key=client_key,
                                                  known_hosts=known_hosts),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
               for name, port in ports.items()}
    results: dict[str, RemoteResult] = {}
    deadline = time.monotonic() + timeout
    for name, process in running.items():
        try:
            output, _ = process.communicate(script, timeout=max(0.1, deadline - time.monotonic()))
            results[name] = RemoteResult(process.returncode, output)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            results[name] = RemoteResult(SSH_FAILED, f"{output}(no answer within {timeout:g} s)")
    return results
