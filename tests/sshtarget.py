"""A host to log in to, as the transport sees one (the SSHTarget protocol), for the SSH tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    ssh_host: str = "127.0.0.1"
    ssh_port: int | None = None
    username: str | None = "tester"
    password: str | None = None
    ssh_options: Mapping[str, Any] = field(default_factory=dict)


def target_for(server, name: str = "a", **changes: Any) -> Target:
    """A Target for a CommandServer: its port, its client key, its known_hosts."""
    options = {"client_keys": [str(server.client_key_path)], "known_hosts": str(server.known_hosts_path)}
    options.update(changes.pop("options", {}))
    return Target(name, ssh_port=server.port, ssh_options=options, **changes)
