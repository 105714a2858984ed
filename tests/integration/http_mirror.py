"""A loopback HTTP mirror of a survey folder with Range support (python http.server, in a
thread on 127.0.0.1), optionally answering some requests with 429, 503 or a connection reset:
what the Legacy Surveys portal looks like to the stage job, and what it does on a bad day."""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


def make_handler(root: Path, faults: list[str] | None, log: list):
    """Handler serving ``root``; ``faults`` is a cycle of per-GET outcomes ("ok", "reset" or
    an HTTP status such as "429", "503", "403") applied to Range GETs in arrival order."""
    lock = threading.Lock()
    state = {"n": 0}

    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the portal

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):  # quiet
            pass

        def _fault(self) -> str:
            if not faults:
                return "ok"
            with lock:
                state["n"] += 1
                return faults[state["n"] % len(faults)]

        def do_GET(self):  # noqa: N802
            path = Path(self.translate_path(self.path))
            rng = self.headers.get("Range")
            if not path.is_file() or not rng:
                return super().do_GET()
            fault = self._fault()
            log.append((self.path, rng, fault))
            if fault == "reset":  # RST instead of an answer
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return None
            if fault.isdigit():  # an error status: 429 (with Retry-After), 5xx, 4xx
                self.send_response(int(fault))
                self.send_header("Content-Length", "0")
                if fault == "429":
                    self.send_header("Retry-After", "0")
                self.end_headers()
                return None
            m = _RANGE.match(rng)
            size = os.path.getsize(path)
            start = int(m.group(1))
            end = min(size - 1, int(m.group(2)) if m.group(2) else size - 1)
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read(end - start + 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None

    return Handler


class HttpMirror:
    """``with HttpMirror(root, faults) as m: m.url`` -> ``http://127.0.0.1:<port>``; ``m.log``
    lists (path, Range, outcome) of every Range GET."""

    def __init__(self, root: Path, faults: list[str] | None = None) -> None:
        self.log: list = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Path(root), faults, self.log))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HttpMirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
