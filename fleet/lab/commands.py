"""Running the machine's own tools (ip, apt-get, qemu ...), their failures mapped to LabError."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from fleet.lab.errors import LabError

# Commands the lab runs, and the Debian package that provides each one.
PACKAGE_OF = {
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "dash": "dash",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "ip": "iproute2",
    "tc": "iproute2",
    "ping": "iputils-ping",
    "depmod": "kmod",
    "modprobe": "kmod",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
    "apt-cache": "apt",
    "ldd": "libc-bin",
    "tar": "tar",
}

_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])


def find_command(name: str) -> Path | None:
    found = shutil.which(name, path=_SEARCH_PATH)
    return Path(found) if found else None


def require_command(name: str) -> Path:
    """The absolute path of `name`, or LabError naming the Debian package to install."""
    found = find_command(name)
    if found is None:
        package = PACKAGE_OF.get(name, name)
        raise LabError(f"command {name!r} not found: apt-get install {package}")
    return found


def run(argv: Sequence[str | Path], *, what: str, cwd: Path | None = None, input: bytes | None = None,
        timeout: float = 300.0) -> subprocess.CompletedProcess[bytes]:
    """Run a command to completion; a non-zero exit or a timeout becomes LabError saying `what` failed."""
    args = [str(arg) for arg in argv]
    try:
        result = subprocess.run(args, cwd=cwd, input=input, capture_output=True, timeout=timeout,
                                check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{what}: command {args[0]!r} not found: "
                       f"apt-get install {PACKAGE_OF.get(Path(args[0]).name, args[0])}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: `{' '.join(args)}` did not finish in {timeout:.0f} s") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise LabError(f"{what}: `{' '.join(args)}` exited with {result.returncode}: {detail}")
    return result
