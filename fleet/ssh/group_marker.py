"""The line every command fleet runs over SSH writes first: the process group to stop it by.

sshd starts each session's shell with setsid, so the shell's PID is its process group; a command
that times out or is cancelled is stopped by killing that group (fleet.ssh.session), and so is
a kept shell's round (fleet.ssh.kept_shell). The line is taken off stderr again.
"""

from __future__ import annotations

import re

_GROUP_MARK = "fleet-pgid:"
_GROUP_LINE = re.compile(rb"fleet-pgid:(\d+)\n")


def marked(command: str) -> str:
    """`command` preceded by the line that tells its process group."""
    return f"printf '{_GROUP_MARK}%s\\n' \"$$\" >&2\n{command}"


def split_marker(stderr: bytes) -> tuple[int | None, bytes]:
    """The process group a marked command told, and its stderr without the marker line."""
    found = _GROUP_LINE.match(stderr)
    if found is None:
        return None, stderr
    return int(found.group(1)), stderr[found.end():]


__all__ = ["marked", "split_marker"]
