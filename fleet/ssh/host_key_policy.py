"""The host-key policy applied during the handshake: the asyncssh client object that asyncssh
asks about a host key (or CA) that known_hosts does not vouch for. The policy itself, the
messages and known_hosts are hostkeys.py's."""

from __future__ import annotations

from typing import Any

import asyncssh

from fleet.core.transport import DEFAULT_SSH_PORT
from fleet.ssh.hostkeys import HostKeyChecking, OfferedKey


class HostKeyPolicy(asyncssh.SSHClient):
    """Decides, by the policy, about a host key that known_hosts does not vouch for.

    asyncssh calls these only for keys and CAs that known_hosts does not trust (and never for
    revoked ones); the decision and the key are kept for the transport to report.
    """

    def __init__(self, policy: HostKeyChecking, known: Any, can_record: bool) -> None:
        self._policy = policy
        self._known = known
        self._can_record = can_record
        self.offered: OfferedKey | None = None
        self.accepted = False

    @property
    def changed_key_accepted(self) -> bool:
        return self.accepted and self.offered is not None and self.offered.changed

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        lookup_port = None if port == DEFAULT_SSH_PORT else port
        trusted = asyncssh.match_known_hosts(self._known, host, addr, lookup_port)[0] if self._known else []
        algorithm, data = key.export_public_key("openssh").decode().split()[:2]
        self.offered = OfferedKey(host, port, algorithm, key.get_fingerprint("sha256"),
                                  f"{algorithm} {data}", changed=bool(trusted))
        self.accepted = self._policy == "no" or (
            self._policy == "accept-new" and not self.offered.changed and self._can_record)
        return self.accepted

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.offered = OfferedKey(host, port, f"{key.get_algorithm()} (CA)", key.get_fingerprint("sha256"),
                                  "", changed=False, authority=True)
        self.accepted = self._policy == "no"
        return self.accepted
