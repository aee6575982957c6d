"""Jump host specs (ProxyJump, asyncssh's `tunnel`) and the ports in them, read and checked.

No SSH library here: the inventory checks a `tunnel` extra, and the ssh config files a run reads,
with these before any host is touched; the transport parses the same specs with them when it
connects. A port is 1-65535 written in ASCII digits, as OpenSSH's a2port() takes it: 99999, 0,
-1, `+22` and `2_2` are refused here, not turned into a crash in the socket layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_DIGITS = re.compile(r"[0-9]+")
_DIRECTIVE = re.compile(r"\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)")


@dataclass(frozen=True)
class Hop:
    """One jump host, as ProxyJump or the `tunnel` extra writes it: [user@]host[:port]."""

    host: str
    port: int | None
    username: str | None


def parse_port(text: str) -> int:
    """A TCP port written in ASCII digits, 1-65535; ValueError otherwise."""
    if not _DIGITS.fullmatch(text) or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not a TCP port number 1-65535")
    return int(text)


def parse_jumps(spec: str) -> list[Hop]:
    """`[user@]host[:port]`, comma-separated, first hop first (`ssh://` and `[v6]:port` allowed).
    ValueError for a hop without a host, an unclosed `[`, or a port that is not 1-65535."""
    hops = []
    for part in spec.split(","):
        text = part.strip().removeprefix("ssh://")
        if not text:
            continue
        username, at, address = text.rpartition("@")
        if at and not username:
            raise ValueError(f"{text!r}: an empty user name before '@'")
        port: int | None = None
        if address.startswith("["):
            host, bracket, rest = address[1:].partition("]")
            if not bracket:
                raise ValueError(f"{text!r}: '[' without ']'")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"{text!r}: after ']' only ':port' may follow")
                port = parse_port(rest[1:])
        elif address.count(":") == 1:
            host, port_text = address.split(":")
            port = parse_port(port_text)
        else:
            host = address
        if not host:
            raise ValueError(f"{text!r}: no host")
        hops.append(Hop(host, port, username or None))
    return hops


@dataclass(frozen=True)
class ConfigProblem:
    """A line of an ssh config file that no SSH client can use."""

    path: Path
    line: int
    directive: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: line {self.line}: {self.directive}: {self.message}"


def config_problems(path: Path) -> list[ConfigProblem]:
    """The `Port` and `ProxyJump` lines of an ssh config file that are not valid, in any Host or
    Match block (OpenSSH refuses such a file whole, whichever host it connects to). Include is not
    followed. A file that is missing has none; OSError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        matched = _DIRECTIVE.match(line)
        if matched is None or line.lstrip().startswith("#"):
            continue
        directive, value = matched.group(1).lower(), matched.group(2).strip()
        value = value.split("#", 1)[0].strip().strip('"')
        try:
            if directive == "port":
                parse_port(value)
            elif directive == "proxyjump" and value.lower() != "none":
                parse_jumps(value)
            else:
                continue
        except ValueError as exc:
            found.append(ConfigProblem(path, number, matched.group(1), str(exc)))
    return found
