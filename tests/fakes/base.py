"""A small stand-in HTTP server for provider tests: stdlib only, 127.0.0.1, port 0, one thread per request.

Subclasses register routes (method + path regex -> handler). Every request is recorded. Failures are injected
on command with ``fail(...)``: an HTTP status with a JSON or HTML body (nothing processed), malformed JSON
(the route runs, its answer is garbled), a slow answer (the route runs, then the answer is held back longer
than the client's timeout), a hang (nothing processed, no answer until the connection is dropped late), or an
immediately dropped connection. ``wait_for`` awaits a condition on the recorded
requests instead of sleeping.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

FAILURE_KINDS = ("status", "html", "malformed_json", "slow", "hang", "drop")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    omit_length: bool = False  # no Content-Length: the body simply ends when the connection closes

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(data).encode(), "application/json", headers or {})


@dataclass
class _Failure:
    kind: str
    status: int
    method: str | None
    path: re.Pattern[str] | None
    remaining: int | None  # None: every matching request
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or bool(self.path.search(path)))


Handler = Callable[[Recorded, re.Match[str]], Response]


class FakeServer:
    """Base class: subclasses call ``self.route(method, pattern, handler)`` in ``__init__``."""

    #: how long "slow" answers are held back; far beyond the short client timeouts tests use
    slow_seconds = 5.0

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._failures: list[_Failure] = []
        self._requests: list[Recorded] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: static files served under /files/{name} once ``serve_files()`` is called: name -> (bytes, type)
        self.files: dict[str, tuple[bytes, str]] = {}
        #: serve files without Content-Length (the body ends when the connection closes)
        self.omit_length = False

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Self:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

            def do_DELETE(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes any handler held back by "slow" / "hang"
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- configuration ---------------------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern), handler))

    def serve_files(self) -> None:
        self.route("GET", r"/files/(?P<name>[\w.-]+)", self._file)

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def _file(self, rec: Recorded, m: re.Match[str]) -> Response:
        found = self.files.get(m["name"])
        if found is None:
            return Response(404, b"<html><body>Not Found</body></html>", "text/html")
        return Response(200, found[0], found[1], omit_length=self.omit_length)

    def fail(self, kind: str = "status", *, status: int = 500, method: str | None = None,
             path: str | None = None, times: int | None = 1, body: Any = None,
             headers: dict[str, str] | None = None) -> None:
        """Make the next ``times`` matching requests fail (``times=None``: all of them)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}")
        with self._cond:
            self._failures.append(_Failure(kind, status, method, re.compile(path) if path else None, times,
                                           body, headers or {}))

    def error_body(self, status: int) -> Any:
        """The JSON error document this provider sends with a status (overridden per provider)."""
        return {"error": {"code": status, "message": f"injected {status}"}}

    # -- inspection ------------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[Recorded]:
        with self._cond:
            return list(self._requests)

    def requests_to(self, method: str, path_pattern: str) -> list[Recorded]:
        rx = re.compile(path_pattern)
        return [r for r in self.requests if r.method == method and rx.search(r.path)]

    def wait_for(self, predicate: Callable[[list[Recorded]], bool], timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._requests), timeout=timeout)

    # -- request handling ------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        rec = Recorded(h.command, parts.path, parse_qs(parts.query), dict(h.headers.items()), body)
        with self._cond:
            self._requests.append(rec)
            failure = self._take_failure(rec.method, rec.path)
            self._cond.notify_all()
        try:
            if failure is not None and failure.kind in ("hang", "drop"):
                if failure.kind == "hang":
                    self._stopping.wait(self.slow_seconds)
                h.close_connection = True
                return  # nothing processed, no answer at all
            if failure is not None and failure.kind in ("status", "html"):
                response = self._failure_response(failure)
            else:
                response = self._dispatch(rec)
                if failure is not None and failure.kind == "malformed_json":  # the work is done, the answer garbled
                    response = Response(response.status, response.body[: max(1, len(response.body) // 2)] + b"<",
                                        "application/json")
                elif failure is not None:  # "slow": the work is done, the answer comes too late
                    self._stopping.wait(self.slow_seconds)
            self._send(h, response)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, as it should

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for f in self._failures:
            if f.matches(method, path):
                if f.remaining is not None:
                    f.remaining -= 1
                    if f.remaining <= 0:
                        self._failures.remove(f)
                return f
        return None

    def _failure_response(self, f: _Failure) -> Response:
        if f.kind == "html":
            page = (f"<!doctype html><html><head><title>{f.status}</title></head>"
                    f"<body><h1>{f.status} Bad Gateway</h1><p>nginx</p></body></html>").encode()
            return Response(f.status, page, "text/html; charset=utf-8", f.headers)
        return Response.json(f.body if f.body is not None else self.error_body(f.status), f.status, f.headers)

    def _dispatch(self, rec: Recorded) -> Response:
        for method, rx, handler in self._routes:
            if method == rec.method:
                m = rx.fullmatch(rec.path)
                if m:
                    return handler(rec, m)
        return Response.json(self.error_body(404), 404)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, r: Response) -> None:
        h.send_response(r.status)
        h.send_header("Content-Type", r.content_type)
        if not r.omit_length:
            h.send_header("Content-Length", str(len(r.body)))
        for k, v in r.headers.items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(r.body)


class FakeFiles(FakeServer):
    """Just static files: a stand-in for any CDN an adapter downloads from."""

    def __init__(self) -> None:
        super().__init__()
        self.serve_files()
