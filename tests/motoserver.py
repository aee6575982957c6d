"""moto in server mode on 127.0.0.1: boto3 speaks the real EC2 API to it, over HTTP.

`moto_endpoint` (session-wide) starts one server; `aws_env` (per test) resets its state and sets
the environment boto3 reads (endpoint, fake credentials, region), with the user's own AWS files
and the instance metadata service shut out, so that nothing reaches any other address.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REGION = "eu-west-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def moto_available() -> str:
    """Why moto cannot run here, or "" when it can."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        return f"needs boto3 and moto[server] (pip install -e '.[test]'): {exc}"
    return ""


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> Iterator[str]:
    """The URL of a moto server this test session started on 127.0.0.1; stopped at the end."""
    reason = moto_available()
    if reason:
        pytest.skip(reason)
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def aws_environment(endpoint: str, home: Path) -> dict[str, str]:
    """The variables boto3 reads, pointed at the moto server and nowhere else."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask 169.254.169.254 for credentials
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "2",
    }


def reset(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
def aws_env(moto_endpoint, tmp_path, monkeypatch) -> dict[str, str]:
    """A clean moto state and this process's environment pointed at it; returns the variables (for
    a subprocess: `env={**os.environ, **aws_env}` is already what os.environ holds)."""
    reset(moto_endpoint)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    env = aws_environment(moto_endpoint, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
