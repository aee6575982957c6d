"""The last round's metrics served over HTTP for Prometheus to scrape, as Goldpinger serves its
own: `GET /metrics` answers the text fleet.formats.prometheus renders (the names and labels of
`fleet run mesh --prometheus`), replaced whole after each round.

prometheus_client (the `watch` extra) serves it: its WSGI app, content negotiation (the text
format, OpenMetrics when asked) and its own parser, which reads fleet's text into metric
families once per round. A scrape before the first round ends gets an empty answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from fleet.core.errors import UsageError

INSTALL_HINT = "pip install 'fleet-isatap[watch]' (prometheus_client)"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base's name
        """No line on stderr per scrape."""


class _LastRound:
    """A prometheus_client collector that yields the families of the last text given."""

    def __init__(self) -> None:
        self._families: list[Any] = []
        self._lock = threading.Lock()

    def set_text(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        families = list(text_string_to_metric_families(text))
        with self._lock:
            self._families = families

    def collect(self) -> Iterator[Any]:
        with self._lock:
            return iter(list(self._families))


class MetricsServer:
    """An HTTP server on a thread of its own; `port` is the one it listens on (0 asked: the one
    the system gave)."""

    def __init__(self, address: str, port: int) -> None:
        try:
            from prometheus_client import CollectorRegistry
            from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
        except ImportError:
            raise UsageError(f"--metrics-port needs prometheus_client: {INSTALL_HINT}") from None
        self._collector = _LastRound()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self._collector)
        try:
            self._server: WSGIServer = make_server(address, port, make_wsgi_app(registry),
                                                   ThreadingWSGIServer, handler_class=_Quiet)
        except OSError as exc:
            raise UsageError(f"--metrics-port {port} on {address}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="fleet-metrics",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> None:
        self._thread.start()

    def publish(self, pieces: Iterable[str]) -> None:
        """The round's Prometheus text (fleet.formats.prometheus.render), served from now on."""
        self._collector.set_text("".join(pieces))

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
