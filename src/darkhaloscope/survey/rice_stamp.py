"""All the RICE_1 files of a stamp (image and invvar of every band) cut in two compiled calls.

Cutting a grz stamp file by file (:meth:`.tile_decode.RiceTiles.read_box`, six times) paid the
Python around each call and numba's unboxing of 19 arguments per call (~0.05 ms per file on the
DR10 bench, more than a file's decoding). :class:`RiceStamp` packs, once per open brick, the six
files' tile tables (file offsets, byte counts, ZSCALE, ZZERO) into flat arrays with one row of
per-file settings each (``meta``), so that a stamp costs:

1. :func:`plan_reads`: the byte spans to read, one per tile row of each file when its tiles lie
   back to back in the heap (as cfitsio writes a tile row), and each tile's offset in the shared
   read buffer;
2. one ``pread(2)`` per span (~10 per grz stamp: a 64 px box touches 1-2 tile rows of the
   100 x 100 tiles DR10 writes, legacypipe ``py/legacypipe/survey.py`` ``get_compression_args``,
   DR10 tags), called from compiled code (libc's ``pread`` declared as an external function, so
   numba's cache keeps working; no Python loop around the ~10 system calls);
3. :func:`decode_stamp`: :func:`.rice_box.decode_box` for every file into its plane of one
   float32 [n files, S, S] array (same kernel, so bit-identical to the per-file path and to
   astropy's full decode);

all three in one compiled call per stamp, :func:`read_stamp`.

Local files only (``os.preadv`` on their descriptors); https and S3 keep the per-file path.
Units: bytes; pixels as the files hold them (nanomaggies, 1/nanomaggy^2).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types

from ..dataset.fits_quant import RANDOMS
from . import http
from .rice_box import ERR_TRUNCATED, PAD, decode_box
from .tile_decode import RiceTiles

# meta columns (int64 [n files, N_META]): first tile in the packed arrays, image rows / columns,
# tile rows / columns, quantisation method, ZDITHER0, ZBLANK
BASE, NY, NX, TH, TW, METHOD, DITHER0, ZBLANK, N_META = range(9)
ERR_SHORT_READ, ERR_BUFFER = -3, -4  # read_stamp status codes beyond rice_box's
# POSIX pread(fd, buf, count, offset) -> bytes read or -1 (the pointer passed as an address:
# the same register on the 64-bit ABIs numba targets); an external symbol keeps the cache usable
_pread = types.ExternalFunction("pread", types.intp(types.intc, types.uintp, types.uintp, types.int64))
PREAD_RETRIES = 4  # -1 (EINTR and the like) is retried this many times before a short read is reported


@numba.njit(cache=True, nogil=True)
def plan_reads(meta, offsets, nbytes, after, y0, y1, x0, x1, spans, rel):
    """Byte spans covering the tiles that box [y0:y1, x0:x1] touches in every file.

    ``offsets``/``nbytes`` int64 [all tiles]: file offsets and sizes of every file's tiles,
    packed (file f's tile k at ``meta[f, BASE] + k``); ``after[i]``: packed tile i + 1 follows
    tile i in the same file's heap. Writes ``spans[j] = (file, file offset, bytes)`` (int64
    [>= spans needed, 3]) and, for every tile read, ``rel[i]`` = its offset in the read buffer
    (spans laid back to back from 0). Returns (spans, total bytes)."""
    n = 0
    pos = 0
    for f in range(meta.shape[0]):
        base, th, tw = meta[f, BASE], meta[f, TH], meta[f, TW]
        grid1 = (meta[f, NX] + tw - 1) // tw
        s0, s1 = x0 // tw, (x1 - 1) // tw
        for ty in range(y0 // th, (y1 - 1) // th + 1):
            k = base + ty * grid1 + s0
            k1 = base + ty * grid1 + s1
            while k <= k1:
                e = k
                while e < k1 and after[e]:  # extend the span over tiles lying back to back
                    e += 1
                a = offsets[k]
                ln = offsets[e] + nbytes[e] - a
                for i in range(k, e + 1):
                    rel[i] = offsets[i] - a + pos
                spans[n, 0], spans[n, 1], spans[n, 2] = f, a, ln
                n += 1
                pos += ln
                k = e + 1
    return n, pos


@numba.njit(cache=True, nogil=True, error_model="numpy")
def decode_stamp(buf, rel, nbytes, scale, zero, meta, randoms, y0, y1, x0, x1, ints, out):
    """Box [y0:y1, x0:x1] of every file f into ``out[f]`` (float32 [n files, y1 - y0, x1 - x0]),
    from the tiles :func:`plan_reads` placed in ``buf`` (with :data:`.rice_box.PAD` spare bytes).
    Returns (bytes used, -1, -1) or (ERR_*, file, tile of that file)."""
    used = 0
    for f in range(meta.shape[0]):
        b = meta[f, BASE]
        e = meta[f + 1, BASE] if f + 1 < meta.shape[0] else nbytes.shape[0]
        status, k = decode_box(buf, rel[b:e], nbytes[b:e], meta[f, TH], meta[f, TW], meta[f, NY], meta[f, NX], meta[f, METHOD],
                               meta[f, DITHER0], scale[b:e], zero[b:e], meta[f, ZBLANK], randoms, y0, y1, x0, x1, ints, out[f])
        if k >= 0:
            return status, f, k
        used += status
    return used, -1, -1


@numba.njit(cache=True, nogil=True)
def _pread_all(fd, buf, pos, ln, offset):
    """Read ``ln`` bytes at file ``offset`` into ``buf[pos:]``; returns the bytes read (< ln at EOF or on errors)."""
    got, tries = 0, 0
    base = buf.ctypes.data + np.uintp(pos)
    while got < ln:
        r = _pread(np.intc(fd), base + np.uintp(got), np.uintp(ln - got), np.int64(offset + got))
        if r == 0:
            break
        if r < 0:
            tries += 1
            if tries >= PREAD_RETRIES:
                break
            continue
        got += r
    return got


@numba.njit(cache=True, nogil=True, error_model="numpy")
def read_stamp(fds, meta, offsets, nbytes, after, scale, zero, randoms, y0, y1, x0, x1, spans, rel, buf, ints, out):
    """Plan, read (``fds[f]``: file f's descriptor) and decode box [y0:y1, x0:x1] of every file
    into ``out[f]``. Returns (status, file, detail, bytes read): status 0, or ERR_BUFFER (``buf``
    needs ``detail`` bytes), ERR_SHORT_READ (``detail`` = file offset of the span cut short),
    ERR_CORRUPT / ERR_TRUNCATED (``detail`` = tile of that file)."""
    n, total = plan_reads(meta, offsets, nbytes, after, y0, y1, x0, x1, spans, rel)
    if total + PAD > buf.shape[0]:
        return ERR_BUFFER, -1, total + PAD, 0
    pos = 0
    for j in range(n):
        f, a, ln = spans[j, 0], spans[j, 1], spans[j, 2]
        if _pread_all(fds[f], buf, pos, ln, a) != ln:
            return ERR_SHORT_READ, f, a, pos
        pos += ln
    status, f, k = decode_stamp(buf, rel, nbytes, scale, zero, meta, randoms, y0, y1, x0, x1, ints, out)
    if f >= 0:
        return status, f, k, total
    return 0, -1, -1, total


class RiceStamp:
    """The packed tile tables of several local RICE_1 files of one brick (see module doc)."""

    def __init__(self, files: list[RiceTiles], paths: list[str]) -> None:
        self.paths = paths
        self.fds = np.array([rt.fd for rt in files], np.int64)
        self.shape = files[0].shape
        counts = [len(rt.nbytes) for rt in files]
        base = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.meta = np.array([[b, *rt.shape, *rt.tile, rt.method, rt.dither0, rt.zblank] for b, rt in zip(base.tolist(), files, strict=True)], np.int64)
        self.offsets = np.concatenate([rt.offsets for rt in files]).astype(np.int64)
        self.nbytes = np.concatenate([rt.nbytes for rt in files]).astype(np.int64)
        self.after = np.concatenate([rt.after for rt in files])  # a file's last tile has after = False
        self.scale = np.concatenate([rt.scale for rt in files])
        self.zero = np.concatenate([rt.zero for rt in files])
        self.rel = np.full(len(self.nbytes), -1, np.int64)
        self.ints = np.empty(max(int(th) * int(tw) for th, tw in (rt.tile for rt in files)), np.int32)
        self._buf = np.zeros(1 << 16, np.uint8)
        self._spans: dict[int, np.ndarray] = {}
        self.bytes_read = 0

    @classmethod
    def of(cls, files: list, paths: list[str]) -> RiceStamp | None:
        """The packed reader of ``files`` (their :class:`.tile_decode.RiceTiles`), or None unless
        every one is a local RICE_1 file (a descriptor) and they share one image shape."""
        if not files or not all(isinstance(rt, RiceTiles) and rt.fd is not None for rt in files):
            return None
        if len({rt.shape for rt in files}) != 1:
            return None
        return cls(files, paths)

    def _span_table(self, size: int) -> np.ndarray:
        """Scratch for the spans of a size x size box (at most one per tile it touches per file)."""
        spans = self._spans.get(size)
        if spans is None:
            cap = sum((1 + (size + int(th) - 2) // int(th)) * (1 + (size + int(tw) - 2) // int(tw)) for th, tw in self.meta[:, [TH, TW]].tolist())
            spans = self._spans[size] = np.zeros((cap, 3), np.int64)
        return spans

    def read(self, y0: int, x0: int, size: int, out: np.ndarray) -> None:
        """Box [y0:y0+size, x0:x0+size] (inside the image) of every file f into ``out[f]``
        (C-contiguous float32 [n files, size, size]). A short read or a corrupt tile raises
        ValueError naming the file and tile."""
        y1, x1 = y0 + size, x0 + size
        spans = self._span_table(size)
        args = (self.fds, self.meta, self.offsets, self.nbytes, self.after, self.scale, self.zero, RANDOMS, y0, y1, x0, x1, spans, self.rel)
        status, f, detail, total = read_stamp(*args, self._buf, self.ints, out)
        if status == ERR_BUFFER:  # a larger box than any before: grow the buffer once
            self._buf = np.zeros(max(detail, 2 * self._buf.shape[0]), np.uint8)
            status, f, detail, total = read_stamp(*args, self._buf, self.ints, out)
        http.BYTES.add(total)
        self.bytes_read += total
        if status == ERR_SHORT_READ:
            raise ValueError(f"{self.paths[f]}: the tiles at byte {detail} lie past the end of the file (truncated)")
        if status < 0:
            what = "lies past the end of the file (truncated)" if status == ERR_TRUNCATED else "its bytes end before its pixels (corrupt)"
            raise ValueError(f"{self.paths[f]}: tile {detail}: {what}")
