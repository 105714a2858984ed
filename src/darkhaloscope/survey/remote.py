"""Random-access binary files under a survey root: a local folder, ``s3://bucket/prefix`` or ``https://``.

Each opener returns a seekable, buffered binary file object, so astropy can read a FITS header
and then only the compressed tiles a stamp needs (``CompImageHDU.section``) with memmap off:

- local: ``pyarrow.fs.LocalFileSystem().open_input_file``;
- S3: ``pyarrow.fs.S3FileSystem`` via :func:`darkhaloscope.dataset.storage.filesystem_for`
  (endpoint override for the loopback test server); each buffered read is one ranged GET;
- https: a small ``io.RawIOBase`` that issues HTTP ``Range`` requests with urllib (stdlib).

A 64 KiB read buffer coalesces astropy's small reads: a 64x64 stamp of a 3600x3600 brick with
100x100 tiles reads ~200 KB of a 1.7 MB file (measured on the DR6 brick).
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request

from pyarrow import fs as pafs

from ..dataset.storage import StorageOptions, filesystem_for, join

BUFFER_BYTES = 65536


class FileMissing(FileNotFoundError):
    """The file does not exist under the root (a distinct reason from unreadable/corrupt)."""


def is_http(root: str) -> bool:
    """True for ``http://`` and ``https://`` roots."""
    return str(root).startswith(("https://", "http://"))


class HttpRangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP(S) Range requests (no whole-file download)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._pos = 0
        req = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                self._size = int(resp.headers["Content-Length"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise FileMissing(url) from None
            raise OSError(f"HTTP {exc.code} for {url}") from None

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
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={self._pos}-{end}"})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            data = resp.read()
            if resp.status == 200:  # server ignored Range (whole file, even at offset 0): take our slice
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
