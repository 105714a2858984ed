"""Lossless storage of pixels that came out of a quantised FITS tile-compressed image.

DR10 coadds (image and invvar) are fpack'd: each tile's floats were quantised to integers
``I`` with a per-tile ``ZSCALE``/``ZZERO`` and a subtractive dither ``R`` drawn from the FITS
standard's fixed sequence of 10,000 random numbers (FITS 4.0 section 10.2, cfitsio
``fits_init_randoms``), and a reader gets back ``float32((I - R + 0.5) * ZSCALE + ZZERO)``.
Those decoded floats look like noise to any byte compressor (~3.5 bytes per pixel), although
all their information is in ``I`` (~0.5 byte per pixel after deflate). This module recovers
``I`` exactly from the floats and the tile parameters, and rebuilds the floats bit for bit,
so a stamp can be stored as its integers (see ``dataset.stamp``). Every pixel is checked on the
way in: one that does not come back to the same float32 bits is stored as its raw float.

A :class:`QuantGrid` describes, for one band of one stamp, where the stamp sits in the file
(tile shape, image shape, stamp origin) and the scale/zero of the tiles it touches; it is a
few numbers plus two per tile, so the stamp can be decoded without the file.

Units: whatever the file holds (nanomaggies for images, 1/nanomaggy^2 for invvar); pixel
coordinates are 0-based (row, column) in the file's numpy order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

N_RANDOM = 10000
# ZQUANTIZ keyword -> method code stored in a QuantGrid (FITS 4.0 table 38)
METHODS = {"NO_DITHER": 0, "SUBTRACTIVE_DITHER_1": 1, "SUBTRACTIVE_DITHER_2": 2}
_HEADER = 13  # numbers before the per-tile scale and zero in QuantGrid.to_vector()


def _fits_randoms() -> np.ndarray:
    """The FITS standard's 10,000 dither values (Park & Miller 1988, a = 16807, m = 2^31 - 1),
    as float64 holding float32 values (cfitsio keeps them in a float array)."""
    a, m, seed = 16807.0, 2147483647.0, 1.0
    out = np.empty(N_RANDOM)
    for i in range(N_RANDOM):
        temp = a * seed
        seed = temp - m * int(temp / m)
        out[i] = seed / m
    if int(seed) != 1043618065:  # the check value the standard gives
        raise RuntimeError("FITS random sequence does not reproduce the standard's check value")
    return out.astype(np.float32).astype(np.float64)


RANDOMS = _fits_randoms()
RANDOMS.flags.writeable = False


@dataclass(frozen=True)
class QuantGrid:
    """Quantisation of one band of one stamp: the file's tiling and the touched tiles' scale/zero.

    method: 0 NO_DITHER, 1 SUBTRACTIVE_DITHER_1, 2 SUBTRACTIVE_DITHER_2 (zeros stored raw)
    dither0: ZDITHER0; tile: (ZTILE2, ZTILE1) rows x columns; shape: (ZNAXIS2, ZNAXIS1)
    origin: file pixel (row, column) of stamp pixel (0, 0)
    tile0: (tile row, tile column) of scale[0, 0]; scale, zero: float64 [n tile rows, n tile cols]
    """

    method: int
    dither0: int
    tile: tuple[int, int]
    shape: tuple[int, int]
    origin: tuple[int, int]
    tile0: tuple[int, int]
    scale: np.ndarray
    zero: np.ndarray

    def to_vector(self, imin: int) -> np.ndarray:
        """float64 vector: 12 integers, ``imin`` (the band's smallest stored integer), scale, zero."""
        head = [self.method, self.dither0, *self.tile, *self.shape, *self.origin, *self.tile0, *self.scale.shape, imin]
        return np.concatenate([np.asarray(head, np.float64), self.scale.ravel(), self.zero.ravel()])


@dataclass(frozen=True)
class FileQuant:
    """Quantisation of a whole tile-compressed float image (read once per file by the survey layer).

    scale, zero: float64 [n tile rows, n tile columns] (NaN where a tile was not quantised).
    """

    method: int
    dither0: int
    tile: tuple[int, int]
    shape: tuple[int, int]
    scale: np.ndarray
    zero: np.ndarray

    def window(self, row0: int, col0: int, size: int) -> QuantGrid | None:
        """The QuantGrid of the size x size stamp whose pixel (0, 0) is file pixel (row0, col0),
        or None when the stamp is not inside the image."""
        ny, nx = self.shape
        if row0 < 0 or col0 < 0 or row0 + size > ny or col0 + size > nx:
            return None
        th, tw = self.tile
        t0, t1 = row0 // th, (row0 + size - 1) // th + 1
        s0, s1 = col0 // tw, (col0 + size - 1) // tw + 1
        return QuantGrid(self.method, self.dither0, self.tile, self.shape, (row0, col0), (t0, s0),
                         np.ascontiguousarray(self.scale[t0:t1, s0:s1]), np.ascontiguousarray(self.zero[t0:t1, s0:s1]))


@numba.njit(cache=True, nogil=True, inline="always")
def _dither(k, p, dither0, randoms):
    """R of pixel ``p`` (0-based, row-major) of tile ``k`` (0-based, row-major), as cfitsio
    walks the sequence: start at int(R[iseed] * 500), next seed each time it reaches the end."""
    iseed = (k + dither0 - 1) % 10000
    idx = int(randoms[iseed] * 500.0) + p
    while idx >= 10000:
        idx -= 10000
        iseed = (iseed + 1) % 10000
        idx += int(randoms[iseed] * 500.0)
    return randoms[idx]


@numba.njit(cache=True, nogil=True, inline="always")
def _same(a, b):
    """Bitwise equality of two finite float32 values (0.0 and -0.0 differ)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@numba.njit(cache=True, nogil=True)
def dequantized(q, dither, half, scale, zero):
    """float32 of the fpack integer ``q`` on a tile of ``scale`` and ``zero`` with the pixel's
    ``dither`` and offset ``half`` (FITS 4.0 section 10.2; cfitsio ``imcompress.c``): the one
    dequantisation of every format-2 and format-3 kernel."""
    return np.float32((np.float64(q) - dither + half) * scale + zero)


@numba.njit(cache=True, nogil=True)
def put_addend(add8, b, sy, sx, a, fword, uword):
    """Store float32 ``a`` as its four little-endian bytes at (b, sy, sx) of the byte planes
    ``add8`` uint8 [4, B, S, S]; ``fword`` is a one-number float32 scratch, ``uword`` its uint32 view."""
    fword[0] = a
    u = uword[0]
    for w in range(4):
        add8[w, b, sy, sx] = (u >> (8 * w)) & 0xFF


@numba.njit(cache=True, nogil=True)
def get_addend(add8, b, sy, sx, word, as_float):
    """The float32 stored by :func:`put_addend` at (b, sy, sx); ``word`` is a one-number uint32
    scratch, ``as_float`` its float32 view."""
    word[0] = np.uint32(add8[0, b, sy, sx]) | (np.uint32(add8[1, b, sy, sx]) << 8) | (np.uint32(add8[2, b, sy, sx]) << 16) | (np.uint32(add8[3, b, sy, sx]) << 24)
    return as_float[0]


@numba.njit(cache=True, nogil=True)
def addend_plane(add8, b, words):
    """Band ``b``'s addends as :func:`get_addend` reads them, for the whole plane at once: fills
    ``words`` uint32 [S*S] (row-major) with the little-endian words of ``add8`` uint8 [4, B, S, S];
    the caller reads them through a float32 view. One vectorisable pass instead of a word per pixel."""
    n = words.shape[0]
    a0, a1, a2, a3 = add8[0, b].reshape(n), add8[1, b].reshape(n), add8[2, b].reshape(n), add8[3, b].reshape(n)
    for p in range(n):
        words[p] = np.uint32(a0[p]) | (np.uint32(a1[p]) << 8) | (np.uint32(a2[p]) << 16) | (np.uint32(a3[p]) << 24)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _columns(g, s1):
    """Per stamp column: (tile column, column in tile, tile width, scale/zero column)."""
    tw, nx, ox, tx0 = int(g[3]), int(g[5]), int(g[7]), int(g[9])
    cols = np.empty((4, s1), np.int64)
    for sx in range(s1):
        x = ox + sx
        tx = x // tw
        cols[0, sx], cols[1, sx], cols[2, sx], cols[3, sx] = tx, x - tx * tw, min(tw, nx - tx * tw), tx - tx0
    return cols


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _band_dither(g, s0, s1, randoms, out):
    """The dither value of every pixel of a band (0 for NO_DITHER), into ``out`` float64 [S, S]."""
    method, dither0, th = int(g[0]), int(g[1]), int(g[2])
    tw, nx, oy = int(g[3]), int(g[5]), int(g[6])
    ntx_file = (nx + tw - 1) // tw
    cols = _columns(g, s1)
    for sy in range(s0):
        y = oy + sy
        ty = y // th
        yoff = y - ty * th
        last_k, start = -1, 0
        for sx in range(s1):
            if method == 0:
                out[sy, sx] = 0.0
                continue
            k = ty * ntx_file + cols[0, sx]
            p = yoff * cols[2, sx] + cols[1, sx]
            if k != last_k:
                last_k, start = k, int(randoms[(k + dither0 - 1) % 10000] * 500.0)
            idx = start + p
            out[sy, sx] = randoms[idx] if idx < 10000 else _dither(k, p, dither0, randoms)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def band_grid(vector, pos, s0, s1, randoms, dither):
    """The grid of the band whose entry starts at ``vector[pos]`` (``[0]`` raw, or ``[n, predictor,
    *QuantGrid.to_vector]``): (on the grid?, n, grid numbers g, pixel columns' tiles [4, S1],
    dither offset 0/0.5, tile rows, y offset, first tile row, tile rows, tile columns); fills
    ``dither`` [S0, S1] with the band's dither values when it has a grid."""
    n = int(vector[pos])
    grid = n > 0
    g = vector[pos : pos + 1]
    cols = np.zeros((4, s1), np.int64)
    half, th, oy, ty0, nty, ntx = 0.0, 1, 0, 0, 1, 1
    if grid:
        g = vector[pos + 2 : pos + 2 + n]
        half = 0.0 if int(g[0]) == 0 else 0.5
        th, oy, ty0, nty, ntx = int(g[2]), int(g[6]), int(g[8]), int(g[10]), int(g[11])
        cols = _columns(g, s1)
        _band_dither(g, s0, s1, randoms, dither)
    return grid, n, g, cols, half, th, oy, ty0, nty, ntx


@numba.njit(cache=True, nogil=True, error_model="numpy")
def encode_plane_kernel(base, values, vector, randoms):
    """Encode a float32 [B, S, S] plane: (stored uint8 [2 or 4, B, S, S] byte planes, addends
    uint8 [4, B, S, S] byte planes, raw-pixel bits uint8 [B, S*S/8]) and ``vector`` completed.

    vector: per band ``[0]`` (store the band raw) or ``[n, 0, *QuantGrid.to_vector(0)]``;
    the kernel writes each band's predictor (1: zigzag differences along the raster, chosen when
    smaller) and smallest integer ``lo``, or turns a band raw when no pixel is on its grid.
    A pixel is kept as integer + addend when ``base`` comes back bit for bit from its integer and
    ``float32(back + addend)`` is bit for bit ``values``; otherwise it is raw (addend = value).
    """
    nb, s0, s1 = values.shape
    stored = np.zeros((nb, s0, s1), np.int64)
    addend = np.empty((nb, s0, s1), np.float32)
    raw = np.ones((nb, s0, s1), np.bool_)
    dither = np.empty((s0, s1))
    pos, top = 0, 0
    for b in range(nb):
        n = int(vector[pos])
        if n == 0:
            addend[b] = values[b]
            pos += 1
            continue
        g = vector[pos + 2 : pos + 2 + n]
        method, ntx, nty = int(g[0]), int(g[11]), int(g[10])
        oy_t0, half = int(g[8]), 0.0 if method == 0 else 0.5
        th, oy = int(g[2]), int(g[6])
        cols = _columns(g, s1)
        _band_dither(g, s0, s1, randoms, dither)
        lo, kept = np.int64(2**62), 0
        for sy in range(s0):
            r = (oy + sy) // th - oy_t0
            for sx in range(s1):
                c = cols[3, sx]
                sc, z = g[_HEADER + r * ntx + c], g[_HEADER + nty * ntx + r * ntx + c]
                bv, v = base[b, sy, sx], values[b, sy, sx]
                d = dither[sy, sx]
                ok = sc > 0.0 and np.isfinite(bv) and np.isfinite(v)
                if ok:
                    qi = np.floor((np.float64(bv) - z) / sc + d - half + 0.5)  # the nearest integer
                    ok = abs(qi) < 2.0**52
                if ok:
                    back = dequantized(qi, d, half, sc, z)
                    a = np.float32(v - back)
                    ok = _same(back, bv) and _same(np.float32(back + a), v)
                if ok:
                    stored[b, sy, sx] = np.int64(qi)
                    addend[b, sy, sx] = a
                    raw[b, sy, sx] = False
                    lo = min(lo, np.int64(qi))
                    kept += 1
                else:
                    addend[b, sy, sx] = v
        if kept == 0:  # nothing on the grid: every pixel raw
            vector[pos + 1] = 0.0
            vector[pos + 2 + 12] = 0.0
            pos += 2 + n
            continue
        # integers relative to the smallest; differences along the raster when smaller
        plain, diffs, prev = 0, 0, np.int64(0)
        for sy in range(s0):
            for sx in range(s1):
                j = stored[b, sy, sx] - lo if not raw[b, sy, sx] else np.int64(0)
                stored[b, sy, sx] = j
                plain += j
                diffs += abs(j - prev)
                prev = j
        predictor = 1 if diffs < plain else 0
        prev = 0
        for sy in range(s0):
            for sx in range(s1):
                j = stored[b, sy, sx]
                if predictor == 1:
                    d = j - prev
                    prev = j
                    j = (d << 1) ^ (d >> 63)
                    stored[b, sy, sx] = j
                top = max(top, j)
        vector[pos + 1] = predictor
        vector[pos + 2 + 12] = lo
        pos += 2 + n
    width = 2 if top < 65536 else 4
    if top >= 2**32:
        width = 8  # cannot happen for a stamp of real data; the caller stores the plane raw
    q8 = np.zeros((width, nb, s0, s1), np.uint8)
    add8 = np.empty((4, nb, s0, s1), np.uint8)
    bits = np.empty((nb, (s0 * s1 + 7) // 8), np.uint8)
    fword = np.empty(1, np.float32)
    uword = fword.view(np.uint32)
    for b in range(nb):
        i = 0
        acc = 0
        for sy in range(s0):
            for sx in range(s1):
                j = stored[b, sy, sx]
                for w in range(min(width, 4)):
                    q8[w, b, sy, sx] = (j >> (8 * w)) & 0xFF
                put_addend(add8, b, sy, sx, addend[b, sy, sx], fword, uword)
                acc = (acc << 1) | (1 if raw[b, sy, sx] else 0)
                i += 1
                if i % 8 == 0:
                    bits[b, i // 8 - 1] = acc
                    acc = 0
        if i % 8:
            bits[b, i // 8] = acc << (8 - i % 8)
    return q8, add8, bits


@numba.njit(cache=True, nogil=True, error_model="numpy")
def dequantize_plane(q8, add8, rawbits, vector, randoms, out):
    """Decode a plane into ``out`` float32 [B, S, S]: the inverse of :func:`encode_plane_kernel`.
    Returns how many numbers of ``vector`` it used (the caller checks all were)."""
    width = q8.shape[0]
    nb, s0, s1 = out.shape
    dither = np.empty((s0, s1))
    word = np.empty(1, np.uint32)
    as_float = word.view(np.float32)
    pos = 0
    for b in range(nb):
        grid, n, g, cols, half, th, oy, ty0, nty, ntx = band_grid(vector, pos, s0, s1, randoms, dither)
        predictor, lo = (int(vector[pos + 1]), int(g[12])) if grid else (0, 0)
        pos += 2 + n if grid else 1
        prev, i = np.int64(0), 0
        for sy in range(s0):
            r = (oy + sy) // th - ty0
            for sx in range(s1):
                u = np.int64(0)
                for w in range(width):
                    u |= np.int64(q8[w, b, sy, sx]) << (8 * w)
                a = get_addend(add8, b, sy, sx, word, as_float)
                if predictor == 1:
                    prev += (u >> 1) ^ -(u & 1)  # zigzag -> signed difference
                    u = prev
                is_raw = (rawbits[b, i >> 3] >> (7 - (i & 7))) & 1
                i += 1
                if not grid or is_raw:
                    out[b, sy, sx] = a
                    continue
                c = cols[3, sx]
                back = dequantized(u + lo, dither[sy, sx], half, g[_HEADER + r * ntx + c], g[_HEADER + nty * ntx + r * ntx + c])
                out[b, sy, sx] = np.float32(back + a)
    return pos
