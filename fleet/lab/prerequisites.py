"""What the lab needs from the machine: root, a few commands, /dev/net/tun."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fleet.lab.commands import PACKAGE_OF, find_command


def check_prerequisites() -> list[str]:
    """Human messages naming what is missing; [] when the lab can run here."""
    problems = []
    if not sys.platform.startswith("linux"):
        problems.append(f"the lab runs on Linux only (this is {sys.platform})")
        return problems
    if os.geteuid() != 0:
        problems.append("the lab needs root (network namespaces, taps): run as root")
    missing_packages: dict[str, list[str]] = {}
    for command, package in PACKAGE_OF.items():
        if find_command(command) is None:
            missing_packages.setdefault(package, []).append(command)
    for package, commands in sorted(missing_packages.items()):
        problems.append(f"missing {', '.join(commands)}: apt-get install {package}")
    if not Path("/dev/net/tun").exists():
        problems.append("/dev/net/tun is missing: the kernel's tun module is needed for tap devices")
    return problems
