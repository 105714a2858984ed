"""HTTP(S) for brick mirrors (the Legacy Surveys portal's ``https://`` layout): a bounded
keep-alive connection pool, retries with back-off, clear errors, and a count of bytes fetched.

- At most ``max_connections`` requests are in flight per process (a semaphore over a pool of
  ``http.client`` keep-alive connections per host), so a Spark executor's workers cannot flood
  the portal, and a stamp's dozen Range requests reuse one TLS connection.
- 429 and 5xx answers, connection resets, timeouts and short reads are retried ``retries``
  times, waiting ``backoff_s * 2**attempt`` seconds (or the server's ``Retry-After``, capped at
  60 s, when longer); then the request fails with an OSError naming the URL and the last cause.
- 404 is :class:`FileMissing` (a missing brick file is a reason, not an error); any other 4xx
  fails at once (``HttpClientError``, naming the URL and status): retrying cannot fix it.

Units: seconds for timeouts and delays, bytes for counts.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

RETRY_AFTER_MAX_S = 60.0


class FileMissing(FileNotFoundError):
    """The file does not exist under the root (a distinct reason from unreadable/corrupt)."""


class HttpClientError(OSError):
    """A 4xx answer other than 404/429: the request itself is wrong (not retried)."""


@dataclass(frozen=True)
class HttpSettings:
    """max_connections (count per process), retries (count), backoff_s and timeout_s (seconds)."""

    max_connections: int = 4
    retries: int = 5
    backoff_s: float = 0.5
    timeout_s: float = 30.0

    @classmethod
    def from_config(cls, stage) -> HttpSettings:
        """From a :class:`~darkhaloscope.config.StageConfig`."""
        return cls(stage.http_max_connections, stage.http_retries, stage.http_backoff_s, stage.http_timeout_s)


class _Counter:
    """Bytes of survey files read by this process (thread-safe; the stage summary reports it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


BYTES = _Counter()


def _retry_after(headers: Message | None) -> float:
    try:
        return min(RETRY_AFTER_MAX_S, float(headers.get("Retry-After", 0))) if headers is not None else 0.0
    except (TypeError, ValueError):  # an HTTP date: fall back to our own back-off
        return 0.0


class HttpPool:
    """Keep-alive connections per (scheme, host), at most ``settings.max_connections`` in use."""

    def __init__(self, settings: HttpSettings | None = None) -> None:
        self.settings = settings or HttpSettings()
        self._slots = threading.BoundedSemaphore(self.settings.max_connections)
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self.requests = 0  # attempts made, retries included (tests, benchmarks)

    def _take(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get((scheme, netloc))
            if idle:
                return idle.pop()
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        return cls(netloc, timeout=self.settings.timeout_s)

    def _give(self, scheme: str, netloc: str, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault((scheme, netloc), []).append(conn)

    def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
        """(status, headers, body) of a successful (2xx/3xx) answer, after retries.

        Raises FileMissing (404), HttpClientError (other 4xx but 429) and OSError (retries
        exhausted), each naming ``url``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url}")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        s = self.settings
        last = "no attempt"
        for attempt in range(s.retries + 1):
            status, head, body = None, None, b""
            with self._slots:
                conn = self._take(parts.scheme, parts.netloc)
                self.requests += 1
                try:
                    conn.request(method, path, headers=headers or {})
                    resp = conn.getresponse()
                    body = resp.read()
                    status, head = resp.status, resp.headers
                    length = head.get("Content-Length")
                    if method != "HEAD" and length is not None and int(length) != len(body):
                        raise http.client.IncompleteRead(body, int(length) - len(body))
                    if resp.will_close:
                        conn.close()
                    else:
                        self._give(parts.scheme, parts.netloc, conn)
                except (OSError, http.client.HTTPException) as exc:  # resets, timeouts, short reads
                    conn.close()
                    status, last = None, f"{type(exc).__name__}: {exc}"
            if status is not None:
                if status == 404:
                    raise FileMissing(url)
                if status == 429 or status >= 500:
                    last = f"HTTP {status}"
                elif status >= 400:
                    raise HttpClientError(f"HTTP {status} for {url} (a client error: not retried)")
                else:
                    BYTES.add(len(body))
                    return status, head, body
            if attempt < s.retries:
                time.sleep(max(s.backoff_s * 2**attempt, _retry_after(head)))
        raise OSError(f"{method} {url} failed after {s.retries + 1} attempts (stage.http_retries = {s.retries}): {last}")


_POOL: list[HttpPool] = []


def configure(settings: HttpSettings) -> HttpPool:
    """The process's pool, replaced when ``settings`` differ (a worker's next job)."""
    if not _POOL or _POOL[0].settings != settings:
        _POOL[:] = [HttpPool(settings)]
    return _POOL[0]


def pool() -> HttpPool:
    """The process's pool (default settings until :func:`configure` is called)."""
    return _POOL[0] if _POOL else configure(HttpSettings())
