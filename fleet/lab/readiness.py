"""Waiting until guests answer: an SSH banner read through the forwarder is the proof of life.

One non-blocking probe per guest still booting, multiplexed with `selectors`, so 200 guests cost
no more threads than 2. A probe that gets EOF or no banner is retried after a short pause.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

PROBE_TIMEOUT = 10.0
RETRY_PAUSE = 0.5


@dataclass
class _Probe:
    name: str
    sock: socket.socket
    started: float
    received: bytes = b""


def wait_for_banners(ports: dict[str, int], *, timeout: float,
                     on_ready: Callable[[str], None],
                     check: Callable[[], None] = lambda: None,
                     host: str = "127.0.0.1") -> list[str]:
    """Wait until every guest's port gives an "SSH-" banner; return the names still silent at timeout.

    `on_ready(name)` is called as each one answers; `check()` runs about once a second and may
    raise to abort the wait (a QEMU that died, say).
    """
    deadline = time.monotonic() + timeout
    pending = dict(ports)
    retry_at = {name: 0.0 for name in ports}
    probes: dict[int, _Probe] = {}
    last_check = 0.0
    with selectors.DefaultSelector() as selector:
        try:
            while pending and time.monotonic() < deadline:
                now = time.monotonic()
                if now - last_check >= 1.0:
                    check()
                    last_check = now
                active = {probe.name for probe in probes.values()}
                for name, port in pending.items():
                    if name not in active and retry_at[name] <= now:
                        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        sock.setblocking(False)
                        sock.connect_ex((host, port))
                        probes[sock.fileno()] = _Probe(name, sock, now)
                        selector.register(sock, selectors.EVENT_READ)
                for key, _ in selector.select(timeout=0.2):
                    probe = probes[key.fd]
                    try:
                        chunk = probe.sock.recv(256)
                    except OSError:
                        chunk = b""
                    probe.received += chunk
                    if probe.received.startswith(b"SSH-") and b"\n" in probe.received:
                        selector.unregister(probe.sock)
                        probe.sock.close()
                        del probes[key.fd]
                        del pending[probe.name]
                        on_ready(probe.name)
                    elif not chunk:
                        selector.unregister(probe.sock)
                        probe.sock.close()
                        del probes[key.fd]
                        retry_at[probe.name] = time.monotonic() + RETRY_PAUSE
                now = time.monotonic()
                for fd, probe in list(probes.items()):
                    if now - probe.started > PROBE_TIMEOUT:
                        selector.unregister(probe.sock)
                        probe.sock.close()
                        del probes[fd]
                        retry_at[probe.name] = now
        finally:
            for probe in probes.values():
                probe.sock.close()
    return sorted(pending)
