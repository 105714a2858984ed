"""A fault-injecting HTTP proxy on loopback, in front of the S3 API server (moto) for tests.

Clients (boto3, ``pyarrow.fs.S3FileSystem`` in the driver and in Spark workers) talk to
``proxy.url`` instead of the S3 endpoint; the proxy forwards every request unchanged and, when
the current :class:`Fault` says so, answers instead with an S3 ``503 SlowDown`` (or ``500``),
or resets the TCP connection (``SO_LINGER 0`` then close: the client sees ECONNRESET).

    with FaultProxy(moto_url) as proxy:
        proxy.set_fault(Fault("503", first=10))          # the first 10 requests fail
        proxy.set_fault(Fault("reset", window=(0, 2)))   # resets for 2 s from now
        proxy.set_fault(Fault("503", from_request=5, methods=("PUT",)))  # dead from the 5th PUT on
        proxy.set_fault(Fault("503", first=3, methods=("PUT",)), Fault("reset", first=2, path_contains="/coadd/"))
        proxy.stats()   # {"requests": .., "faulted": .., "per_fault": [..], "by_method": {...}, ...}

Several faults may be active at once, each with its own count: requests are numbered (1-based)
per fault among those matching its ``methods`` / ``path_contains``; the first fault that hits
decides. Requests no fault hits are forwarded. No mocks: bytes go to the real server and back.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect", "te", "trailer", "upgrade"}
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>")
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b"<Message>We encountered an internal error. Please try again.</Message><RequestId>fault-proxy</RequestId></Error>")


@dataclass(frozen=True)
class Fault:
    """What to break. ``action``: ``"503"`` (SlowDown), ``"500"`` (InternalError), ``"reset"``
    (TCP reset) or ``"none"``. A matching request is faulted when ANY of these holds:
    its number <= ``first``; ``window = (t0, t1)`` seconds after :meth:`FaultProxy.set_fault`
    contains now; its number >= ``from_request`` (failing for good)."""

    action: str = "none"
    first: int = 0
    window: tuple[float, float] | None = None
    from_request: int | None = None
    methods: tuple[str, ...] = ()
    path_contains: str = ""

    def matches(self, method: str, path: str) -> bool:
        return (not self.methods or method in self.methods) and self.path_contains in path


class FaultProxy:
    """Threaded forwarding proxy on 127.0.0.1 (ephemeral port) with a swappable :class:`Fault`."""

    def __init__(self, upstream: str) -> None:
        up = urlparse(upstream)
        self.upstream = (up.hostname or "127.0.0.1", up.port or 80)
        self._lock = threading.Lock()
        self._faults: tuple[Fault, ...] = ()
        self._armed_at = time.monotonic()
        self._n_matching: list[int] = []
        self._n_hit: list[int] = []
        self._counts: Counter = Counter()
        self._faulted: Counter = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_fault(self, *faults: Fault | None) -> None:
        """Install a new fault plan (none: forward everything); restarts the counts and the clock."""
        with self._lock:
            self._faults = tuple(f for f in faults if f is not None and f.action != "none")
            self._armed_at = time.monotonic()
            self._n_matching = [0] * len(self._faults)
            self._n_hit = [0] * len(self._faults)
            self._counts.clear()
            self._faulted.clear()

    def stats(self) -> dict:
        with self._lock:
            return {"requests": sum(self._counts.values()), "faulted": sum(self._faulted.values()),
                    "by_method": dict(self._counts), "faulted_by_method": dict(self._faulted),
                    "per_fault": list(self._n_hit), "matching": list(self._n_matching)}

    def decide(self, method: str, path: str) -> str:
        """The action for one incoming request (``"none"`` = forward), counted."""
        with self._lock:
            self._counts[method] += 1
            t = time.monotonic() - self._armed_at
            for i, f in enumerate(self._faults):
                if not f.matches(method, path):
                    continue
                self._n_matching[i] += 1
                n = self._n_matching[i]
                hit = n <= f.first
                hit |= f.window is not None and f.window[0] <= t < f.window[1]
                hit |= f.from_request is not None and n >= f.from_request
                if hit:
                    self._n_hit[i] += 1
                    self._faulted[method] += 1
                    return f.action
            return "none"


def _handler_for(proxy: FaultProxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue as S3 clients expect
        _action: str | None = None

        def log_message(self, *args) -> None:  # quiet
            pass

        def handle_one_request(self) -> None:
            self._action = None
            try:
                super().handle_one_request()
            except (OSError, ValueError):  # our own reset, or the client went away
                self.close_connection = True

        def finish(self) -> None:
            try:
                super().finish()
            except (OSError, ValueError):
                pass

        def handle_expect_100(self) -> bool:
            # Decide before the client sends its body: a faulted PUT gets its error instead of 100.
            self._action = proxy.decide(self.command, self.path)
            if self._action != "none":
                return True
            return super().handle_expect_100()

        def _any(self) -> None:
            action = self._action if self._action is not None else proxy.decide(self.command, self.path)
            if action == "reset":
                self._reset()
                return
            if action in ("503", "500"):
                body = SLOWDOWN if action == "503" else INTERNAL
                self.send_response(int(action))
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)) if self.command != "HEAD" else "0")
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                self.close_connection = True  # the request body (if any) was not read
                return
            self._forward()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _forward(self) -> None:
            body = self._read_body()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in HOP_BY_HOP or (k.lower() == "content-length" and self.command != "HEAD"):
                        continue
                    self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        def _reset(self) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            for f in (self.wfile, self.rfile):
                try:
                    f.close()
                except OSError:
                    pass
            self.connection.close()  # linger 0: RST instead of FIN
            self.close_connection = True

    return Handler
