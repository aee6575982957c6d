"""Running a remote command with root privilege: as it is for root, through `sudo -n` otherwise."""

from __future__ import annotations

import shlex

from fleet.core.errors import PrivilegeError
from fleet.core.transport import CommandResult

SUDO_PASSWORD_MARKERS = ("a password is required", "a terminal is required", "no tty present")


_AS_ROOT_HEAD = 'if [ "$(id -u)" = 0 ]; then sh -c '
_AS_ROOT_TAIL = "; fi"


def privileged(command: str) -> str:
    """Wrap a shell command so that it runs as root: directly when the login user is root, through
    non-interactive sudo otherwise (sudo never prompts, so it can never hang on a password)."""
    quoted = shlex.quote(command)
    return f"{_AS_ROOT_HEAD}{quoted}; else sudo -n sh -c {quoted}{_AS_ROOT_TAIL}"


def is_privileged(command: str) -> bool:
    """Whether `command` is one that `privileged` made: stopping it then needs root too."""
    if not (command.startswith(_AS_ROOT_HEAD) and command.endswith(_AS_ROOT_TAIL)):
        return False
    inner = command[len(_AS_ROOT_HEAD):-len(_AS_ROOT_TAIL)]
    separator = "; else sudo -n sh -c "
    quoted = inner[:(len(inner) - len(separator)) // 2]
    return inner == f"{quoted}{separator}{quoted}"


def check_privilege(host: str, result: CommandResult) -> None:
    """Raise PrivilegeError when a privileged command failed because sudo would not run it."""
    if result.ok:
        return
    err = result.stderr.lower()
    if err.startswith("sudo:") or "\nsudo:" in err:
        if any(marker in err for marker in SUDO_PASSWORD_MARKERS):
            raise PrivilegeError(host, "no privilege: sudo wants a password (sudo -n refused); log "
                                 "in as root or give the user passwordless sudo")
        first = result.stderr.strip().splitlines()[0]
        raise PrivilegeError(host, f"no privilege: {first}")
    if result.exit_status == 127 and "sudo" in err and "not found" in err:
        raise PrivilegeError(host, "no privilege: not root and sudo is not installed")
