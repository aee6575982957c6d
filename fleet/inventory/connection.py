"""The connection fields a host ends up with (hostname, port, username, password, the asyncssh
extras), checked on the values Nornir's inheritance gives it; an error names where each was
written. The hostname and login name checks are public: other code checks the same values."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from nornir.core.inventory import ConnectionOptions

from fleet.core.errors import InventoryError
from fleet.inventory.files import HOSTS_FILE, InventoryFiles, Source
from fleet.jumps import parse_jumps

SSH_FILE_OPTIONS = ("known_hosts", "client_keys")  # extras that name files

_DNS_NAME_MAX = 253
_DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"[A-Za-z0-9_-]+")
_USERNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*[$]?")
_USERNAME_MAX = 32


def check_connection(files: InventoryFiles, name: str, ssh_host: str, params: ConnectionOptions) -> None:
    """Check the connection fields a host ends up with; the error names where each was written."""
    def fail(attr: str, message: str, option: str = "") -> InventoryError:
        source = files.hostname_source(name) if attr == "hostname" else files.connection_source(name, attr)
        if source is None:  # only if that walk ever disagreed with Nornir: still name the field
            source = Source(files.path(HOSTS_FILE), attr, None)
        return InventoryError(f"{message}{source.note}", file=source.file, host=name,
                              field=source.field + option)

    try:
        parse_ssh_hostname(ssh_host)
    except ValueError as exc:
        raise fail("hostname", str(exc)) from None
    checks = (("port", params.port, _check_port), ("username", params.username, check_username),
              ("password", params.password, _check_password))
    for attr, value, check in checks:
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                raise fail(attr, str(exc)) from None
    for option in SSH_FILE_OPTIONS:
        try:
            ssh_file_paths(params.extras or {}, option)
        except ValueError as exc:
            raise fail("extras", str(exc), f".{option}") from None
    extras = params.extras or {}
    for option, check in (("tunnel", _check_jump_spec), ("port", _check_port)):
        if extras.get(option) is not None:
            try:
                check(extras[option])
            except ValueError as exc:
                raise fail("extras", str(exc), f".{option}") from None


def parse_ssh_hostname(value: object) -> IPv4Address | IPv6Address | str:
    """Check an SSH hostname: an IPv4 or IPv6 literal (no scope id) or a DNS name. Returns what
    identifies the machine it names: the address, or the name in lower case without a final dot.

    Raises ValueError saying what is wrong. Nothing that a command line could read as an option
    or a second word (a space, a quote, a leading '-', a control character) gets through.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    text = value

    def refuse(why: str) -> ValueError:
        return ValueError(f"{text!r} is neither an IP address nor a DNS name: {why}")

    if not text:
        raise ValueError("must not be empty")
    if not text.isprintable():
        raise refuse("it contains a control character")
    if any(c.isspace() for c in text):
        raise refuse("it contains whitespace")
    if any(c in "'\"`" for c in text):
        raise refuse("it contains a quote")
    if "%" in text:
        raise refuse("it contains '%' (an IPv6 scope id is not accepted; give a global address)")
    if ":" in text:
        try:
            address = IPv6Address(text)
        except ValueError:
            raise refuse("it contains ':' but is not an IPv6 address (the port goes in `port`)") from None
        return address.ipv4_mapped or address
    try:
        return IPv4Address(text)
    except ValueError:
        pass
    if text.startswith("-"):
        raise refuse("it starts with '-', which ssh would read as an option")
    name = text[:-1] if text.endswith(".") else text
    if len(name) > _DNS_NAME_MAX:
        raise refuse(f"it is longer than {_DNS_NAME_MAX} characters")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise refuse("it has an empty label (two dots in a row, or a leading dot)")
        bad = next((c for c in label if not _DNS_LABEL.fullmatch(c)), None)
        if bad is not None:
            raise refuse(f"it contains {bad!r} (a DNS name has letters, digits, '-' and '_' between dots)")
        if label.startswith("-"):
            raise refuse(f"its label {label!r} starts with '-'")
        if len(label) > _DNS_LABEL_MAX:
            raise refuse(f"its label {label[:20]!r}... is longer than {_DNS_LABEL_MAX} characters")
    if labels[-1].isdigit():
        raise refuse("it looks like an IPv4 address but is not a valid one")
    try:
        socket.inet_aton(name)
    except OSError:
        pass
    else:  # what the resolver would read as an IPv4 address in another spelling, e.g. 0x7f000001
        raise refuse(f"the resolver reads it as the IPv4 address {socket.inet_ntoa(socket.inet_aton(name))}; "
                     "write that instead")
    return name.lower()


def check_username(value: object) -> str:
    """Check a login name: POSIX-like (letters, digits, '_', '.', '-', an optional final '$'), not
    starting with '-' or a digit, at most 32 characters. Returns it; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    if not _USERNAME.fullmatch(value) or len(value) > _USERNAME_MAX:
        raise ValueError(f"{value!r} is not a plain login name (letters, digits, '_', '.', '-' and a final "
                         f"'$', starting with a letter or '_', at most {_USERNAME_MAX} characters)")
    return value


def _check_port(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"must be a TCP port number 1-65535, not {value!r}")


def _check_jump_spec(value: object) -> None:
    """A `tunnel` extra: jump hosts as ProxyJump writes them, [user@]host[:port], comma-separated;
    each host a hostname as `hostname` takes it (or an ssh config alias), each port 1-65535."""
    if not isinstance(value, str):
        raise ValueError(f"must be jump hosts as ProxyJump writes them ([user@]host[:port], "
                         f"comma-separated), not {type(value).__name__}")
    for hop in parse_jumps(value):
        try:
            parse_ssh_hostname(hop.host)
            if hop.username is not None:
                check_username(hop.username)
        except ValueError as exc:
            raise ValueError(f"jump host {hop.host!r}: {exc}") from None


def _check_password(value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    if not is_plain_string(value):
        raise ValueError("must be a non-empty string without control characters")


def is_plain_string(value: object) -> bool:
    return isinstance(value, str) and bool(value) and value.isprintable()


def ssh_file_paths(extras: Mapping[str, Any], option: str) -> list[str]:
    """The paths an asyncssh option that names files (known_hosts, client_keys) holds: it may be
    null, one path or a list of paths. ValueError for anything else."""
    value = extras.get(option)
    if value is None:
        return []
    paths = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if paths is None or not all(is_plain_string(path) for path in paths):
        raise ValueError(f"must be a file path or a list of file paths (or null), not {value!r}")
    return paths
