"""The lab's port forwarder: how users reach guests, like an AWS instance reached on a public address.

Run as `python -m fleet.lab.forwarder CONFIG.json`. It binds one listening socket per guest on
127.0.0.1, port 0 (ephemeral, so two labs never collide), in the machine's own network namespace,
THEN moves itself into the lab's namespace, so that each accepted connection is relayed to
<guest ipv4>:22 inside the lab. It writes the chosen ports to a JSON file once it serves, and
runs until SIGTERM. `start_forwarder` launches it detached, for `up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fleet.lab.errors import LabError

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 10.0
BUFFER = 65536


def enter_netns(path: str) -> None:
    """Move this process (before it starts any thread) into the network namespace at `path`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({path}): {os.strerror(error)}")
    finally:
        os.close(fd)


def listen_on_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.close()


async def relay(host: str, port: int, client_reader: asyncio.StreamReader,
                client_writer: asyncio.StreamWriter) -> None:
    """Relay one accepted connection to host:port; closes the client if the guest does not answer."""
    try:
        try:
            guest_reader, guest_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            return
        try:
            await asyncio.gather(_pipe(client_reader, guest_writer), _pipe(guest_reader, client_writer))
        finally:
            guest_writer.close()
    finally:
        client_writer.close()


async def serve(listeners: dict[str, socket.socket], targets: dict[str, tuple[str, int]],
                ports_file: Path | None) -> None:
    """Serve every listener until SIGTERM/SIGINT, after writing {guest: port} to `ports_file`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = []
    for name, sock in listeners.items():
        host, port = targets[name]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         host: str = host, port: int = port) -> None:
            await relay(host, port, reader, writer)

        servers.append(await asyncio.start_server(handle, sock=sock))
    if ports_file is not None:
        ports = {name: sock.getsockname()[1] for name, sock in listeners.items()}
        temporary = ports_file.with_name(ports_file.name + ".tmp")
        temporary.write_text(json.dumps(ports))
        os.replace(temporary, ports_file)
    print(f"forwarder: serving {len(servers)} guests", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fleet.lab.forwarder CONFIG.json", file=sys.stderr)
        return 2
    config = json.loads(Path(args[0]).read_text())
    targets = {name: (host, int(port)) for name, (host, port) in config["targets"].items()}
    listeners = {name: listen_on_loopback() for name in targets}  # in the machine's namespace
    enter_netns(config["netns_path"])  # from here on, connections go out inside the lab
    asyncio.run(serve(listeners, targets, Path(config["ports_file"])))
    return 0


# ---- launching it, for `up` -------------------------------------------------------------------

@dataclass(frozen=True)
class ForwarderFiles:
    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "config.json"

    @property
    def ports(self) -> Path:
        return self.directory / "ports.json"

    @property
    def log(self) -> Path:
        return self.directory / "forwarder.log"

    @property
    def pidfile(self) -> Path:
        return self.directory / "forwarder.pid"


def forwarder_files(workdir: Path) -> ForwarderFiles:
    return ForwarderFiles(workdir / "forwarder")


def start_forwarder(files: ForwarderFiles, netns_path: Path, targets: dict[str, tuple[str, int]],
                    *, timeout: float = 15.0) -> tuple[int, dict[str, int]]:
    """Launch the forwarder detached; return its PID and {guest: port} once it serves.

    LabError, quoting the forwarder's log, if it exits or does not serve within `timeout`.
    """
    files.directory.mkdir(parents=True, exist_ok=True)
    files.ports.unlink(missing_ok=True)
    files.config.write_text(json.dumps({
        "netns_path": str(netns_path), "ports_file": str(files.ports),
        "targets": {name: [host, port] for name, (host, port) in targets.items()},
    }, indent=1))
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    with open(files.log, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "fleet.lab.forwarder", str(files.config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd="/", start_new_session=True, close_fds=True)
    files.pidfile.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if files.ports.exists():
            return process.pid, {name: int(port) for name, port in
                                 json.loads(files.ports.read_text()).items()}
        if process.poll() is not None:
            break
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        if process.poll() is None:
            process.kill()
            process.wait(5)
    raise LabError(f"the port forwarder did not start (log {files.log}): "
                       f"{files.log.read_text(errors='replace').strip()[-2000:]}")


if __name__ == "__main__":
    sys.exit(main())
