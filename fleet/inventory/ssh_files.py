"""The files a login reads, checked before connecting: the keys and known_hosts files the hosts'
asyncssh extras name, and the Port and ProxyJump lines of the ssh config files."""

from __future__ import annotations

import stat
from pathlib import Path

from fleet.core.errors import InventoryError
from fleet.inventory.connection import SSH_FILE_OPTIONS, ssh_file_paths
from fleet.inventory.model import Inventory
from fleet.jumps import config_problems


def check_ssh_files(inventory: Inventory, *, allow_missing_known_hosts: bool = False) -> None:
    """Check, before connecting, that every file the hosts' asyncssh extras name can be read:
    each `client_keys` path and each `known_hosts` path (which may be missing when
    `allow_missing_known_hosts`, for the accept-new host-key policy that creates it).

    Paths are taken as asyncssh takes them: `~` expanded, and a relative path relative to the
    current working directory (not to the inventory). Raises InventoryError naming the file that
    set the option, the host, the field and the path.
    """
    problems: dict[tuple[str, bool], str | None] = {}
    for host in inventory.hosts:
        source = inventory.files.connection_source(host.name, "extras")
        if source is None:
            continue
        for option in SSH_FILE_OPTIONS:
            missing_ok = allow_missing_known_hosts and option == "known_hosts"
            for path in ssh_file_paths(host.ssh_options, option):
                if (path, missing_ok) not in problems:
                    problems[path, missing_ok] = _unreadable_file(path, missing_ok=missing_ok)
                problem = problems[path, missing_ok]
                if problem is not None:
                    raise InventoryError(f"{problem}{source.note}", file=source.file, host=host.name,
                                         field=f"{source.field}.{option}")
    _check_ssh_configs(inventory)


def _check_ssh_configs(inventory: Inventory) -> None:
    """The Port and ProxyJump lines of the ssh config files the hosts' logins read (the `config`
    extra, else ~/.ssh/config) are valid: a port of 99999 is bad input, found before any host is
    touched, not a crash in the middle of a run."""
    seen: dict[Path, str | None] = {}
    default = "~/.ssh/config"
    for host in inventory.hosts:
        source = inventory.files.connection_source(host.name, "extras")
        named = host.ssh_options.get("config")
        paths = [named] if isinstance(named, str) else named if isinstance(named, list) else [default]
        for text in paths:
            if not isinstance(text, str):
                continue
            try:
                path = Path(text).expanduser()
            except RuntimeError:
                continue  # ~user with no such user: asyncssh says so at login
            if path not in seen:
                try:
                    found = config_problems(path)
                    seen[path] = str(found[0]) if found else None
                except OSError as exc:  # asyncssh skips a ~/.ssh/config it cannot read
                    seen[path] = None if named is None else f"{path}: {exc.strerror or exc}"
            problem = seen[path]
            if problem is None:
                continue
            if named is not None and source is not None:
                raise InventoryError(f"{problem}{source.note}", file=source.file, host=host.name,
                                     field=f"{source.field}.config")
            raise InventoryError(f"{problem.removeprefix(f'{path}: ')} (the ssh config this host's "
                                 "login reads)", file=str(path), host=host.name)


def _unreadable_file(text: str, *, missing_ok: bool) -> str | None:
    """Why the file at `text` cannot be read (None when it can), as asyncssh would open it."""
    try:
        path = Path(text).expanduser()
    except RuntimeError as exc:  # ~user with no such user
        return f"{text!r}: cannot expand '~' ({exc})"
    shown = str(path) if path.is_absolute() else f"{path} (relative to the current directory {Path.cwd()})"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None if missing_ok else f"{shown}: no such file"
    except OSError as exc:
        return f"{shown}: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return f"{shown}: not a regular file"
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f"{shown}: cannot be read ({exc.strerror or exc})"
    return None
