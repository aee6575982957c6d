"""SSH keys of a lab: one client key per lab, one host key per guest (ed25519, made by ssh-keygen)."""

from __future__ import annotations

from pathlib import Path

from fleet.lab.commands import require_command, run


def generate_ed25519(path: Path, comment: str) -> str:
    """Write a passphrase-less ed25519 key pair at `path` (+ .pub); return the public key line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    run([require_command("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
        what=f"generating the SSH key {path}")
    return public_key_line(path)


def public_key_line(private_key: Path) -> str:
    return private_key.with_name(private_key.name + ".pub").read_text().strip()


def known_hosts_line(host: str, port: int, public_key: str) -> str:
    """An OpenSSH known_hosts line for host:port; the key's comment is dropped."""
    key_type, key_data = public_key.split()[:2]
    target = host if port == 22 else f"[{host}]:{port}"
    return f"{target} {key_type} {key_data}"
