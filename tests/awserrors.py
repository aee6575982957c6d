"""A local HTTP server on 127.0.0.1 that stands between boto3 and moto and answers chosen EC2
calls itself: with an EC2 error (throttling, access denied, a group at its rule limit ...) or
with a 200 whose body is not EC2's XML (a captive portal, a proxy's page). Every other call is
passed on to moto unchanged, so one call can fail in the middle of real work.

    seen = error_endpoint(Answer.error(403, "UnauthorizedOperation"))            # every call
    seen = error_endpoint(Answer.error(400, "RulesPerSecurityGroupLimitExceeded"),
                          when={"Action": "AuthorizeSecurityGroupIngress", "GroupId": sg})

`seen` lists the form parameters of every request the server received (Action, GroupId ...).
"""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/xml"

    @classmethod
    def error(cls, status: int, code: str) -> Answer:
        return cls(status, (f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}"
                            f"</Code><Message>{code} from the test server</Message></Error></Errors>"
                            "<RequestID>test</RequestID></Response>").encode())

    @classmethod
    def not_xml(cls, text: str = "<html><body>Please log in to the hotel wifi\n<p>Terms") -> Answer:
        return cls(200, text.encode(), "text/html")


class ErrorServer:
    def __init__(self, rules: list[tuple[Mapping[str, str], Answer]], upstream: str | None) -> None:
        self.seen: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                params = dict(urllib.parse.parse_qsl(body.decode()))
                server.seen.append(params)
                for when, answer in rules:
                    if all(params.get(k) == v for k, v in when.items()):
                        return self._send(answer.status, answer.body, answer.content_type)
                if upstream is None:
                    return self._send(500, b"no rule and no upstream", "text/plain")
                request = urllib.request.Request(upstream + self.path, data=body, method="POST",
                                                 headers={k: v for k, v in self.headers.items()
                                                          if k.lower() != "host"})
                try:
                    with urllib.request.urlopen(request, timeout=30) as reply:
                        status, data = reply.status, reply.read()
                        kind = reply.headers.get("Content-Type", "text/xml")
                except urllib.error.HTTPError as exc:
                    status, data, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "text/xml")
                return self._send(status, data, kind)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def error_endpoints(aws_env, monkeypatch) -> Iterator:
    """The body of a test module's `error_endpoint` fixture (`yield from error_endpoints(...)`):
    start(answer, when=None) points AWS_ENDPOINT_URL (this process's and
    aws_env's, for subprocesses) at a new ErrorServer that answers `answer` to the calls whose
    form parameters include `when` (None: every call) and passes the rest on to moto."""
    servers: list[ErrorServer] = []
    moto = aws_env["AWS_ENDPOINT_URL"]

    def start(answer: Answer, when: Mapping[str, str] | None = None) -> list[dict[str, str]]:
        server = ErrorServer([(when or {}, answer)], moto)
        servers.append(server)
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        aws_env["AWS_ENDPOINT_URL"] = server.url
        return server.seen

    yield start
    for server in servers:
        server.close()
