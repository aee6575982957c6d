"""What a login trusts, seen from the CLI: every file path resolved in the CLI's own environment, and
a fingerprint of each file's contents.

The daemon serves runs started from any HOME and any working directory, so it must never read a
file relative to its own: the CLI sends absolute paths, and the files asyncssh would otherwise find
under the daemon's HOME (`~/.ssh/known_hosts`, `~/.ssh/config`) by name. The fingerprint (path and
sha256 of each trust file) is part of what makes two connections the same, so that a kept
connection is reused only under the trust it was logged in with, and the daemon reads a file anew
whenever it changed. Pure but for `TrustFiles.fingerprint`, which reads the files.
"""

from __future__ import annotations

import hashlib
import os
import pwd
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# asyncssh.connect() options whose values name files whose contents decide whom we trust and who
# we are: fingerprinted, and resolved to absolute paths.
TRUST_FILE_OPTIONS = ("known_hosts", "client_keys", "client_certs", "client_host_keys",
                      "client_host_certs", "config", "x509_trusted_certs")
# Options naming files or directories that are resolved but not fingerprinted (a directory of CA
# certificates, the agent's socket).
PATH_OPTIONS = ("x509_trusted_cert_paths", "agent_path")
# What asyncssh reads when known_hosts is falsy is the connecting process's ~/.ssh/known_hosts; an
# empty file says "no host is known", as asyncssh does when that file is missing.
NO_KNOWN_HOSTS = os.devnull
HOST_KEY_POLICIES = ("yes", "accept-new", "no")


@dataclass(frozen=True)
class TrustFile:
    """One trust file as the CLI saw it: its absolute path and the sha256 of its contents (None when
    it is missing or unreadable, which is a state of trust too)."""

    path: str
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrustFile:
        sha = data.get("sha256")
        return cls(str(data["path"]), None if sha is None else str(sha))


def host_key_policy(*, check_host_keys: bool | None = None, host_key_checking: str | None = None) -> str:
    """The host-key policy as OpenSSH's StrictHostKeyChecking words: "yes", "accept-new" or "no"
    (a bool `check_host_keys` maps to "yes"/"no")."""
    if host_key_checking is not None:
        if host_key_checking not in HOST_KEY_POLICIES:
            raise ValueError(f"host key checking {host_key_checking!r}: one of "
                             f"{', '.join(HOST_KEY_POLICIES)}")
        return host_key_checking
    return "no" if check_host_keys is False else "yes"


def home_of(environ: Mapping[str, str]) -> str:
    """The HOME `~` means for the CLI: $HOME, else the password database's (as os.path.expanduser)."""
    return environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir


def resolve_path(value: str, *, home: str, cwd: str) -> str:
    """`~` and `~/x` with the CLI's HOME, `~user/x` from the password database, relative paths
    against the CLI's working directory."""
    if value == "~" or value.startswith("~/"):
        value = home + value[1:]
    elif value.startswith("~"):
        value = os.path.expanduser(value)
    return os.path.join(cwd, value)


def _resolve_value(value: Any, *, home: str, cwd: str) -> tuple[Any, list[str]]:
    """A path, a list of paths, or a list of (key, certificate) path pairs, resolved; and the paths."""
    if isinstance(value, str):
        path = resolve_path(value, home=home, cwd=cwd)
        return path, [path]
    if isinstance(value, (list, tuple)):
        resolved: list[Any] = []
        paths: list[str] = []
        for item in value:
            if isinstance(item, str) or (isinstance(item, (list, tuple))
                                         and all(isinstance(part, str) for part in item)):
                new, found = _resolve_value(item, home=home, cwd=cwd)
                resolved.append(new)
                paths += found
            else:
                resolved.append(item)
        return (tuple(resolved) if isinstance(value, tuple) else resolved), paths
    return value, []


def resolve_options(options: Mapping[str, Any], *, environ: Mapping[str, str], cwd: str,
                    policy: str) -> tuple[dict[str, Any], list[str]]:
    """The asyncssh options with every file path made absolute in the CLI's environment, the
    defaults asyncssh would take from the connecting process's HOME made explicit, and the trust
    files to fingerprint (sorted, without duplicates; known_hosts only when host keys are checked).
    """
    home = home_of(environ)
    resolved = dict(options)
    trust: set[str] = set()
    for name in TRUST_FILE_OPTIONS + PATH_OPTIONS:
        if name in resolved:
            resolved[name], paths = _resolve_value(resolved[name], home=home, cwd=cwd)
            if name in TRUST_FILE_OPTIONS and not (name == "known_hosts" and policy == "no"):
                trust.update(paths)
    if "known_hosts" not in resolved:
        default = os.path.join(home, ".ssh", "known_hosts")
        readable = os.path.isfile(default) and os.access(default, os.R_OK)
        resolved["known_hosts"] = default if readable else NO_KNOWN_HOSTS
        if policy != "no":
            trust.add(default)
    if "config" not in resolved:
        default = os.path.join(home, ".ssh", "config")
        resolved["config"] = [default] if os.access(default, os.R_OK) else []
        trust.add(default)
    return resolved, sorted(trust)


# How a message names a file a login reads, by the asyncssh option that names it.
FILE_ROLES = {"known_hosts": "a known_hosts file", "client_keys": "a client key",
              "client_certs": "a client certificate", "client_host_keys": "a client host key",
              "client_host_certs": "a client host certificate", "config": "an ssh config file",
              "x509_trusted_certs": "a trusted X.509 certificate file"}
# OpenSSH's own trust files: a user's ssh reads them whatever fleet's logins do.
OPENSSH_FILES = (("~/.ssh/known_hosts", "known_hosts"), ("~/.ssh/known_hosts2", "known_hosts"),
                 ("~/.ssh/config", "config"), ("/etc/ssh/ssh_known_hosts", "known_hosts"),
                 ("/etc/ssh/ssh_known_hosts2", "known_hosts"), ("/etc/ssh/ssh_config", "config"))


def login_files(options: Mapping[str, Any], *, environ: Mapping[str, str],
                cwd: str) -> list[tuple[str, str]]:
    """Every file a login with these asyncssh options reads (its known_hosts, the default
    ~/.ssh/known_hosts included, keys, certificates, ssh config), each with its role ("a client
    key"), absolute; and OpenSSH's own trust files, which no output may overwrite either."""
    home = home_of(environ)
    resolved, _ = resolve_options(options, environ=environ, cwd=cwd, policy="yes")
    found = [(resolve_path(path, home=home, cwd=cwd), FILE_ROLES[role]) for path, role in OPENSSH_FILES]
    for name, role in FILE_ROLES.items():
        if name == "known_hosts" and "known_hosts" not in options:  # the default, under its name
            found.append((os.path.join(home, ".ssh", "known_hosts"), role))
            continue
        found += [(path, role) for path in _resolve_value(resolved.get(name), home=home, cwd=cwd)[1]
                  if path != NO_KNOWN_HOSTS]
    return found


def digest(files: Sequence[TrustFile]) -> str:
    """One value for a set of trust files: equal exactly when every path and content is."""
    text = "\n".join(f"{f.path}\0{f.sha256}" for f in sorted(files, key=lambda f: f.path))
    return hashlib.sha256(text.encode()).hexdigest()


class TrustFiles:
    """Fingerprints trust files, hashing a file again only when its size, mtime or inode changed
    (a 2,000-host run names the same known_hosts 2,000 times)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[int, int, int, int], str | None]] = {}

    def fingerprint(self, path: str) -> TrustFile:
        try:
            info = os.stat(path)
        except OSError:
            self._seen.pop(path, None)
            return TrustFile(path, None)
        stamp = (info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)
        seen = self._seen.get(path)
        if seen is not None and seen[0] == stamp:
            return TrustFile(path, seen[1])
        try:
            with open(path, "rb") as handle:
                sha: str | None = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            sha = None
        self._seen[path] = (stamp, sha)
        return TrustFile(path, sha)
