"""asyncssh's login errors turned into fleet's, once, at the edge: each message names the host,
what was being attempted (the target, the user, the jump host it went through) and why; the
kind (AuthError, HostKeyChangedError ...) is a type, not a sentence."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from fleet.core.errors import (
    AuthError,
    ConnectError,
    HostKeyChangedError,
    HostKeyUnknownError,
    SSHSetupError,
)
from fleet.ssh.hostkeys import OfferedKey, changed_key_message, unknown_key_message

# What asyncssh.connect raises for a login that failed (TimeoutError and socket.gaierror are
# OSErrors); anything else (a cancellation) is not a host's failure and goes through untouched.
LOGIN_FAILURES = (asyncssh.Error, OSError, ValueError, TypeError)


@dataclass(frozen=True)
class Login:
    """One login attempt, as its errors name it."""

    name: str  # the inventory host it is for
    target: str  # host:port, where the ssh config put it
    address: str  # the host part of target, as the ssh config resolved it
    user: str
    timeout: float
    via: str | None = None  # the jump host logged in to, when this login is to a jump host
    through: str | None = None  # the last jump host on the way, for the target's own login

    @property
    def prefix(self) -> str:
        return f"via jump host {self.via}: " if self.via else ""


def login_error(login: Login, exc: Exception, offered: OfferedKey | None,
                files: tuple[Path, ...] | None) -> ConnectError:
    """The fleet error for a login that raised `exc` (one of LOGIN_FAILURES): `offered` is the
    host key the server showed, if any, and `files` the known_hosts files in use."""
    name, prefix, target, via = login.name, login.prefix, login.target, login.via
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return host_key_error(name, offered, files, exc, prefix, via)
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthError(name, f"{prefix}authentication failed at {target} as {login.user} "
                         f"({exc.reason})", via=via)
    if isinstance(exc, asyncssh.ChannelOpenError):  # the jump host could not reach this host
        if via is None and exc.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:  # its policy
            return ConnectError(name, f"via jump host {login.through}: it refused to forward to {target}: "
                                f"{exc.reason}", via=login.through)
        return ConnectError(name, f"{prefix}jump host {login.through} could not connect to {target}: "
                            f"{exc.reason}", via=via)
    if isinstance(exc, asyncssh.DisconnectError):
        return ConnectError(name, f"{prefix}SSH to {target} failed: {exc.reason}", via=via)
    if isinstance(exc, TimeoutError):
        return ConnectError(name, f"{prefix}SSH to {target} did not connect and log in within "
                            f"{login.timeout:g} s", via=via)
    if isinstance(exc, socket.gaierror):
        return ConnectError(name, f"{prefix}cannot resolve {login.address!r}: {exc.strerror}", via=via)
    if isinstance(exc, OSError):
        reason = os.strerror(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)
        if exc.filename:  # a file asyncssh was told to read (IdentityFile, known_hosts ...)
            return SSHSetupError(name, f"{prefix}cannot read {exc.filename}: {reason}", via=via)
        return ConnectError(name, f"{prefix}cannot connect to {target}: {reason}", via=via)
    return ConnectError(name, f"{prefix}SSH to {target} failed: {exc}", via=via)


def host_key_error(name: str, offered: OfferedKey | None, files: tuple[Path, ...] | None,
                   exc: asyncssh.HostKeyNotVerifiable, prefix: str, via: str | None) -> ConnectError:
    if offered is None:  # refused by asyncssh itself (a revoked key, a certificate's principals)
        return HostKeyUnknownError(name, f"{prefix}host key not verifiable: {exc.reason}", via=via)
    if offered.changed:
        return HostKeyChangedError(name, prefix + changed_key_message(offered, files), via=via)
    return HostKeyUnknownError(name, prefix + unknown_key_message(offered, files), via=via)
