"""Tests of fleet.lab's loopback parts: the port forwarder and the wait for SSH banners, on
real sockets of 127.0.0.1 (no guest)."""

from __future__ import annotations

import asyncio
import socket
import threading

from fleet.lab import forwarder, readiness


def test_forwarder_relays_both_ways_and_closes_when_the_target_is_gone() -> None:
    async def scenario() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"SSH-2.0-echo\r\n")
            while data := await reader.read(1024):
                writer.write(data.upper())
            writer.close()

        target = await asyncio.start_server(echo, "127.0.0.1", 0)
        target_port = target.sockets[0].getsockname()[1]
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]
        dead.close()  # nothing listens there
        listeners = {"h1": forwarder.listen_on_loopback(), "h2": forwarder.listen_on_loopback()}
        ports = {name: sock.getsockname()[1] for name, sock in listeners.items()}
        serving = asyncio.create_task(forwarder.serve(
            listeners, {"h1": ("127.0.0.1", target_port), "h2": ("127.0.0.1", dead_port)}, None))
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["h1"])
        assert await reader.readline() == b"SSH-2.0-echo\r\n"
        writer.write(b"ping")
        await writer.drain()
        assert await reader.readexactly(4) == b"PING"
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["h2"])
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        serving.cancel()
        target.close()

    asyncio.run(scenario())


def test_wait_for_banners_reports_who_stayed_silent() -> None:
    answering = socket.create_server(("127.0.0.1", 0))
    refusing = socket.create_server(("127.0.0.1", 0))
    refusing_port = refusing.getsockname()[1]
    refusing.close()  # connections there are refused: retried until the timeout
    ready: list[str] = []

    def serve_banner() -> None:
        connection, _ = answering.accept()
        connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        connection.close()


    thread = threading.Thread(target=serve_banner)
    thread.start()
    try:
        silent = readiness.wait_for_banners(
            {"h1": answering.getsockname()[1], "h2": refusing_port}, timeout=1.5, on_ready=ready.append)
    finally:
        thread.join(5)
        answering.close()
    assert (ready, silent) == (["h1"], ["h2"])
