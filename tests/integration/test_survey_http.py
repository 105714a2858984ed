"""survey/http.py against a loopback HTTP server: Range reads equal the file's bytes, 429/5xx and
resets are retried, a 4xx other than 404/429 fails at once naming the URL, retries run out
with an error naming the URL and the cause, 404 is FileMissing, and the pool never holds more
than ``max_connections`` requests in flight."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from darkhaloscope.survey import http, remote

sys.path.insert(0, str(Path(__file__).parent))
from http_mirror import HttpMirror  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
def folder(tmp_path):
    data = bytes(range(256)) * 1000
    (tmp_path / "f.bin").write_bytes(data)
    return tmp_path, data


def _pool(**kw):
    return http.HttpPool(http.HttpSettings(**{"backoff_s": 0.001, "timeout_s": 5.0, **kw}))


def test_range_reads_and_byte_count(folder):
    root, data = folder
    with HttpMirror(root) as m:
        before = remote.bytes_read()
        f = remote.HttpRangeFile(f"{m.url}/f.bin", _pool())
        f.seek(1000)
        buf = bytearray(5000)
        assert f.readinto(buf) == 5000 and bytes(buf) == data[1000:6000]
        assert remote.bytes_read() - before == 5000  # the body only, counted once
        with pytest.raises(remote.FileMissing):
            remote.HttpRangeFile(f"{m.url}/absent.bin", _pool())


def test_retries_429_503_and_resets(folder):
    root, data = folder
    with HttpMirror(root, ["429", "503", "reset", "ok"]) as m:
        pool = _pool(retries=3)
        status, _, body = pool.request("GET", f"{m.url}/f.bin", {"Range": "bytes=10-19"})
        assert status == 206 and body == data[10:20]
        assert [f for *_, f in m.log] == ["503", "reset", "ok"] and pool.requests == 3  # the cycle starts at its 2nd entry


def test_client_error_named_and_retries_exhausted(folder):
    root, _ = folder
    with HttpMirror(root, ["403"]) as m:
        with pytest.raises(http.HttpClientError, match=r"HTTP 403 for http://127\.0\.0\.1:\d+/f\.bin"):
            _pool().request("GET", f"{m.url}/f.bin", {"Range": "bytes=0-9"})
        assert len(m.log) == 1  # not retried
    with HttpMirror(root, ["503"]) as m:
        with pytest.raises(OSError, match=r"f\.bin failed after 3 attempts .*HTTP 503"):
            _pool(retries=2).request("GET", f"{m.url}/f.bin", {"Range": "bytes=0-9"})
        assert len(m.log) == 3


def test_connections_are_bounded(folder, monkeypatch):
    root, _ = folder
    active, peak, lock = [0], [0], threading.Lock()
    real = http.http.client.HTTPConnection.getresponse

    def counting(self, *a, **k):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            import time

            time.sleep(0.01)
            return real(self, *a, **k)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(http.http.client.HTTPConnection, "getresponse", counting)
    with HttpMirror(root) as m:
        pool = _pool(max_connections=2)
        threads = [threading.Thread(target=pool.request, args=("GET", f"{m.url}/f.bin", {"Range": "bytes=0-99"})) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peak[0] == 2 and pool.requests == 8
    assert sum(len(v) for v in pool._idle.values()) <= 2  # keep-alive connections reused
