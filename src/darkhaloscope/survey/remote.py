"""Random-access binary files under a survey root: a local folder, ``s3://bucket/prefix`` or ``https://``.

Each opener returns a seekable, buffered binary file object, so astropy can read a FITS header
and then only the compressed tiles a stamp needs (``CompImageHDU.section``) with memmap off:

- local: ``pyarrow.fs.LocalFileSystem().open_input_file``;
- S3: ``pyarrow.fs.S3FileSystem`` via :func:`darkhaloscope.dataset.storage.filesystem_for`
  (endpoint override for the loopback test server); each buffered read is one ranged GET;
- https: a small ``io.RawIOBase`` that issues HTTP ``Range`` requests through :mod:`.http`
  (bounded keep-alive pool, retries with back-off on 429/5xx/resets, bytes counted).

A 64 KiB read buffer coalesces astropy's small reads: a 64x64 stamp of a 3600x3600 brick with
100x100 tiles reads ~200 KB of a 1.7 MB file (measured on the DR6 brick).
"""

from __future__ import annotations

import io

from pyarrow import fs as pafs

from ..dataset.storage import StorageOptions, filesystem_for, join
from . import http
from .http import FileMissing

__all__ = ["BUFFER_BYTES", "FileMissing", "HttpRangeFile", "bytes_read", "exists", "is_http", "open_file"]

BUFFER_BYTES = 65536


def is_http(root: str) -> bool:
    """True for ``http://`` and ``https://`` roots."""
    return str(root).startswith(("https://", "http://"))


def bytes_read() -> int:
    """Bytes of survey files this process has read so far (local, S3 and HTTP bodies)."""
    return http.BYTES.value


class HttpRangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP(S) Range requests (no whole-file download), through
    the process's bounded, retrying connection pool (:mod:`.http`)."""

    def __init__(self, url: str, pool: http.HttpPool | None = None) -> None:
        self.url = url
        self.pool = pool or http.pool()
        self._pos = 0
        _, head, _ = self.pool.request("HEAD", url)
        length = head.get("Content-Length")
        if length is None:
            raise OSError(f"HEAD {url} gave no Content-Length: cannot read it by ranges")
        self._size = int(length)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._size:
            return 0
        end = min(self._size, self._pos + len(buffer)) - 1
        status, _, data = self.pool.request("GET", self.url, {"Range": f"bytes={self._pos}-{end}"})
        if status == 200:  # server ignored Range (whole file, even at offset 0): take our slice
            data = data[self._pos : end + 1]
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n


def open_file(root: str, relpath: str, options: StorageOptions | None = None):
    """Open ``root/relpath`` for buffered random access. Raises FileMissing when absent."""
    url = join(root, relpath)
    if is_http(root):
        return io.BufferedReader(HttpRangeFile(url), buffer_size=BUFFER_BYTES)
    fs, path = filesystem_for(url, options)
    try:
        f = fs.open_input_file(path)
    except FileNotFoundError:
        raise FileMissing(url) from None
    except OSError as exc:
        if "not found" in str(exc).lower() or "does not exist" in str(exc).lower() or "no such" in str(exc).lower():
            raise FileMissing(url) from None
        raise
    return io.BufferedReader(_NativeRaw(f), buffer_size=BUFFER_BYTES)


class _NativeRaw(io.RawIOBase):
    """pyarrow NativeFile as a RawIOBase, so io.BufferedReader can coalesce reads."""

    def __init__(self, f) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def readinto(self, buffer) -> int:
        data = self._f.read(len(buffer))
        n = len(data)
        http.BYTES.add(n)
        buffer[:n] = data
        return n

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            super().close()


def exists(root: str, relpath: str, options: StorageOptions | None = None) -> bool:
    """True when ``root/relpath`` exists."""
    url = join(root, relpath)
    if is_http(root):
        try:
            HttpRangeFile(url)
            return True
        except (FileMissing, OSError):
            return False
    fs, path = filesystem_for(url, options)
    return fs.get_file_info(path).type == pafs.FileType.File
