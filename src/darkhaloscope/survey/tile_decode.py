"""Compiled decoding of the RICE_1 tiles a stamp needs, straight from the file's tile heap.

astropy's ``CompImageHDU.section`` costs ~0.5 ms per call before it decodes a pixel, and a DR10
stamp touches ~2.7 tiles in each of 6 RICE files (image, invvar). :class:`RiceTiles` reads the
compressed tile table once (descriptors, ZSCALE, ZZERO), then for each tile it reads exactly that
tile's bytes from the open file object and decodes them with a numba Rice decoder (the
algorithm of cfitsio ``ricecomp.c`` ``fits_rdecomp``: 32-pixel blocks, a 5-bit split code per
block, zigzag-mapped differences) and dequantises them as cfitsio does (FITS 4.0 section 10.2;
``dataset.fits_quant`` holds the dither sequence): ``float32((I - R + 0.5) * ZSCALE + ZZERO)``
for SUBTRACTIVE_DITHER_1/2 (DITHER_2: I = -2147483646 is an exact 0), ``float32(I * ZSCALE +
ZZERO)`` for NO_DITHER, NaN for ZBLANK. Bit-identical to astropy's decode (tested on every DR10
setting, ``tests/unit/test_survey_dr10_files.py``).

Used for RICE_1 float images with BYTEPIX 4 and BLOCKSIZE 32 (what legacypipe writes for DR10
image and invvar, ``py/legacypipe/survey.py`` ``get_compression_args``); anything else (HCOMPRESS
maskbits, GZIP maps, lossless fallback tiles) stays with astropy. Units: whatever the file holds.
"""

from __future__ import annotations

import numba
import numpy as np

from ..dataset.fits_quant import METHODS, RANDOMS

ZERO_VALUE = -2147483646  # cfitsio: DITHER_2 stores exact zeros as this integer
NULL_VALUE = -2147483647  # cfitsio's default ZBLANK for quantised floats

_BITS = np.array([int(b).bit_length() for b in range(256)], np.int64)  # cfitsio nonzero_count


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _refill(buf, c, acc, nacc):
    """Append whole bytes of ``buf`` from ``c`` to the bit window ``acc`` (``nacc`` valid low bits) up to 57+ bits."""
    nbuf = buf.shape[0]
    while nacc <= 56 and c < nbuf:
        acc = (acc << np.uint64(8)) | np.uint64(buf[c])
        c += 1
        nacc += 8
    return c, acc, nacc


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rice_decode(buf, n, block, out, bits_table):
    """Decode the first ``n`` 32-bit integers of one RICE_1 tile (``buf`` uint8) into ``out`` int64 [n].
    Returns 0, or -1 when the bytes run out before the pixels do or a block's split code is
    impossible (a corrupt tile: never reads past ``buf``). Stopping early (``n`` below the tile's
    pixels) detects only corruption in the bytes it reads.

    The stream is cfitsio's (``ricecomp.c`` ``fits_rdecomp``); bits are read through a 64-bit window
    refilled a byte at a time (one refill serves several pixels), the unary part's leading zeros
    found a byte at a time with ``bits_table`` (cfitsio's ``nonzero_count``)."""
    fsmax, bbits = 25, 32
    if buf.shape[0] < 5:
        return -1
    mask32 = np.uint64(0xFFFFFFFF)
    lastpix = (np.uint64(buf[0]) << np.uint64(24)) | (np.uint64(buf[1]) << np.uint64(16)) | (np.uint64(buf[2]) << np.uint64(8)) | np.uint64(buf[3])
    c, acc, nacc = 4, np.uint64(0), 0  # next byte; bit window (valid bits: the low nacc, read from the top)
    i = 0
    while i < n:
        c, acc, nacc = _refill(buf, c, acc, nacc)
        if nacc < 5:
            return -1
        nacc -= 5
        fs = np.int64((acc >> np.uint64(nacc)) & np.uint64(31)) - 1
        if fs > fsmax:  # 5-bit codes 27..31 never occur in a valid stream: corrupt (caught even when decoding stops early)
            return -1
        imax = min(i + block, n)
        if fs < 0:  # low entropy: every difference is zero
            for j in range(i, imax):
                out[j] = np.int64(lastpix)
            i = imax
            continue
        for j in range(i, imax):
            c, acc, nacc = _refill(buf, c, acc, nacc)
            if fs == fsmax:  # high entropy: differences stored raw, bbits each
                if nacc < bbits:
                    return -1
                nacc -= bbits
                diff = (acc >> np.uint64(nacc)) & mask32
            else:  # unary high part (zeros then a one), then fs low bits
                nzero = 0
                while True:
                    if nacc == 0:
                        c, acc, nacc = _refill(buf, c, acc, nacc)
                        if nacc == 0:
                            return -1
                    k = min(8, nacc)
                    top = np.int64((acc >> np.uint64(nacc - k)) & np.uint64((1 << k) - 1)) << (8 - k)
                    if top != 0:
                        z = 8 - bits_table[top]
                        nzero += z
                        nacc -= z + 1
                        break
                    nzero += k
                    nacc -= k
                if nacc < fs:
                    c, acc, nacc = _refill(buf, c, acc, nacc)
                    if nacc < fs:
                        return -1
                nacc -= fs
                diff = (np.uint64(nzero) << np.uint64(fs)) | ((acc >> np.uint64(nacc)) & ((np.uint64(1) << np.uint64(fs)) - np.uint64(1)))
            diff = (diff >> np.uint64(1)) if (diff & np.uint64(1)) == 0 else (mask32 ^ (diff >> np.uint64(1)))  # zigzag
            lastpix = (diff + lastpix) & mask32
            out[j] = np.int64(lastpix)
        i = imax
    for j in range(n):  # unsigned 32-bit -> signed
        if out[j] >= 2147483648:
            out[j] -= 4294967296
    return 0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def dequantize_tile(ints, k, method, dither0, scale, zero, zblank, randoms, out):
    """float32 pixels of tile ``k`` (0-based, row-major tile order) from its integers, as cfitsio."""
    n = ints.shape[0]
    if method == 0:
        for p in range(n):
            out[p] = np.nan if ints[p] == zblank else np.float32(np.float64(ints[p]) * scale + zero)
        return
    iseed = (k + dither0 - 1) % 10000
    nextrand = int(randoms[iseed] * 500.0)
    for p in range(n):
        v = ints[p]
        if v == zblank:
            out[p] = np.nan
        elif method == 2 and v == -2147483646:
            out[p] = 0.0
        else:
            out[p] = np.float32((np.float64(v) - randoms[nextrand] + 0.5) * scale + zero)
        nextrand += 1
        if nextrand == 10000:
            iseed = (iseed + 1) % 10000
            nextrand = int(randoms[iseed] * 500.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def decode_tiles(buf, rel, nbytes, ks, nrows, grid1, th, tw, ny, nx, block, method, dither0, scale, zero, zblank, randoms, bits_table, out):
    """Decode the first ``nrows[i]`` rows of the tiles ``ks`` whose bytes are ``buf[rel[i] : rel[i] +
    nbytes[i]]`` into ``out[i]`` (float32 [n, th, tw]; a short edge tile fills its top-left h x w).
    RICE is sequential, so a tile is decoded only down to the last row asked for. Returns -1 - i
    for the first tile whose bytes are corrupt, else 0."""
    ints = np.empty(th * tw, np.int64)
    px = np.empty(th * tw, np.float32)
    for i in range(ks.shape[0]):
        k = ks[i]
        ty, tx = k // grid1, k % grid1
        h, w = min(th, ny - ty * th, nrows[i]), min(tw, nx - tx * tw)
        if rice_decode(buf[rel[i] : rel[i] + nbytes[i]], h * w, block, ints, bits_table) != 0:
            return -1 - i
        dequantize_tile(ints[: h * w], k, method, dither0, scale[k], zero[k], zblank, randoms, px)
        for y in range(h):
            for x in range(w):
                out[i, y, x] = px[y * w + x]
    return 0


def heap_layout(table) -> tuple[int, np.ndarray, tuple[int, int], tuple[int, int]] | None:
    """(heap start in bytes from the file start, int64 [n tiles, 2] (bytes, heap offset) descriptors,
    image shape, tile shape) of a compressed image's binary table, or None when a tile has no
    compressed bytes (cfitsio's lossless fallback columns) or the table does not match the grid."""
    h = table.header
    desc = np.asarray(table.data["COMPRESSED_DATA"], np.int64).reshape(-1, 2)
    shape = (int(h["ZNAXIS2"]), int(h["ZNAXIS1"]))
    tile = (int(h.get("ZTILE2", 1)), int(h.get("ZTILE1", shape[1])))
    heap = table._data_offset + int(h.get("THEAP", int(h["NAXIS1"]) * int(h["NAXIS2"])))
    if desc.shape[0] != (-(-shape[0] // tile[0])) * (-(-shape[1] // tile[1])) or (desc[:, 0] <= 0).any():
        return None
    return heap, desc, shape, tile


class RiceTiles:
    """Direct decoder of one RICE_1 float image's tiles (see module doc), or None via :meth:`of`."""

    PARTIAL = True  # a tile can be decoded down to a given row only (sequential codec)

    def __init__(self, fileobj, heap_start: int, desc: np.ndarray, scale: np.ndarray, zero: np.ndarray,
                 method: int, dither0: int, tile: tuple[int, int], shape: tuple[int, int], block: int, zblank: int) -> None:
        self.fileobj = fileobj
        self.heap_start = heap_start
        self.desc = desc  # int64 [n tiles, 2]: (bytes, offset in heap)
        self.scale, self.zero = scale, zero
        self.method, self.dither0 = method, dither0
        self.tile, self.shape, self.block, self.zblank = tile, shape, block, zblank
        self.grid = (-(-shape[0] // tile[0]), -(-shape[1] // tile[1]))
        self.bytes_read = 0

    @classmethod
    def of(cls, hdu, fileobj) -> RiceTiles | None:
        """The decoder of a CompImageHDU, or None when astropy must decode it (not RICE_1 float
        with BYTEPIX 4 / BLOCKSIZE 32, unquantised or lossless-fallback tiles, odd tables)."""
        table = getattr(hdu, "_bintable", None)
        if table is None or fileobj is None:
            return None
        h = table.header
        try:
            names = [c.upper() for c in table.columns.names]
            vals = {str(h.get(f"ZNAME{i}", "")).upper(): h.get(f"ZVAL{i}") for i in range(1, 10) if f"ZNAME{i}" in h}
            if (h.get("ZCMPTYPE") not in ("RICE_1", "RICE_ONE") or h.get("ZBITPIX") != -32 or h.get("ZNAXIS") != 2
                    or int(vals.get("BYTEPIX", 4)) != 4 or "GZIP_COMPRESSED_DATA" in names or "ZBLANK" in names
                    or not {"COMPRESSED_DATA", "ZSCALE", "ZZERO"} <= set(names)):
                return None
            method = METHODS.get(str(h.get("ZQUANTIZ", "NO_DITHER")).strip().upper())
            if method is None:
                return None
            layout = heap_layout(table)
            if layout is None:
                return None
            heap, desc, shape, tile = layout
            scale = np.asarray(table.data["ZSCALE"], np.float64)
            zero = np.asarray(table.data["ZZERO"], np.float64)
        except (KeyError, ValueError, TypeError, OSError):
            return None
        return cls(fileobj, heap, desc, scale, zero, method, int(h.get("ZDITHER0", 1)), tile, shape,
                   int(vals.get("BLOCKSIZE", 32)), int(h.get("ZBLANK", NULL_VALUE)))

    def tile_size(self, r: int, c: int) -> tuple[int, int]:
        """(rows, columns) of tile (r, c): edge tiles may be short."""
        th, tw = self.tile
        return min(th, self.shape[0] - r * th), min(tw, self.shape[1] - c * tw)

    def decode_into(self, out: np.ndarray, t0: int, t1: int, s0: int, s1: int) -> None:
        """Decode tile rows [t0, t1) x tile columns [s0, s1) into ``out`` (a full-size float32 image)."""
        th, tw = self.tile
        for r in range(t0, t1):
            for c, tile in self.decode_row(r, np.arange(s0, s1)).items():
                h, w = tile.shape
                out[r * th : r * th + h, c * tw : c * tw + w] = tile

    def decode_row(self, r: int, cols: np.ndarray) -> dict[int, np.ndarray]:
        """{column: [h, w] tile} of tile columns ``cols`` (ascending) of tile row ``r``."""
        cols = np.asarray(cols, np.int64)
        return {c: t for (_, c), t in self.decode_many(np.full(len(cols), r, np.int64), cols).items()}

    def decode_many(self, rows: np.ndarray, cols: np.ndarray, nrows: np.ndarray | None = None) -> dict[tuple[int, int], np.ndarray]:
        """{(row, column): [h, w] tile} of the tiles (``rows[i]``, ``cols[i]``), given in row-major
        order; with ``nrows``, only the first ``nrows[i]`` pixel rows of each tile when the codec
        allows it (:attr:`PARTIAL`; the tile returned then has that many rows). Each run of tiles lying back to back in the heap (cfitsio writes tiles in order: a
        tile row's tiles) is one read; all tiles are decoded in one compiled call. Tiles are kept
        compact (a tile written into a full-size image would touch ~100 fresh pages, each a page
        fault: that cost more than the decoding)."""
        if len(rows) == 0:
            return {}
        ks = np.asarray(rows, np.int64) * self.grid[1] + np.asarray(cols, np.int64)
        full = np.minimum(self.tile[0], self.shape[0] - np.asarray(rows, np.int64) * self.tile[0])
        nrows = full if nrows is None or not self.PARTIAL else np.minimum(full, np.asarray(nrows, np.int64))
        nbytes, off = self.desc[ks, 0], self.desc[ks, 1]
        breaks = (np.flatnonzero(off[1:] != off[:-1] + nbytes[:-1]) + 1).tolist()  # starts of non-contiguous runs
        rel = np.empty(len(ks), np.int64)
        parts, pos = [], 0
        for a, b in zip([0, *breaks], [*breaks, len(ks)], strict=True):
            start, end = int(off[a]), int(off[b - 1] + nbytes[b - 1])
            self.fileobj.seek(self.heap_start + start)
            data = self.fileobj.read(end - start)
            if len(data) != end - start:
                raise ValueError(f"tiles {ks[a]}..{ks[b - 1]}: {len(data)} of their {end - start} bytes in the file (truncated)")
            parts.append(data)
            rel[a:b] = off[a:b] - start + pos
            pos += end - start
        self.bytes_read += pos
        buf = np.frombuffer(parts[0] if len(parts) == 1 else b"".join(parts), np.uint8)
        tiles = self._decode(buf, rel, nbytes, ks, nrows)
        out = {}
        for i, (r, c, h) in enumerate(zip(np.asarray(rows).tolist(), np.asarray(cols).tolist(), nrows.tolist(), strict=True)):
            out[(r, c)] = tiles[i, :h, : self.tile_size(r, c)[1]]
        return out

    def _decode(self, buf: np.ndarray, rel: np.ndarray, nbytes: np.ndarray, ks: np.ndarray, nrows: np.ndarray) -> np.ndarray:
        """float32 [n, th, tw] pixels (first ``nrows[i]`` rows) of tiles ``ks`` whose bytes are ``buf[rel[i] : rel[i] + nbytes[i]]``."""
        tiles = np.empty((len(ks), *self.tile), np.float32)
        status = decode_tiles(buf, rel, nbytes, ks, nrows, self.grid[1], self.tile[0], self.tile[1], self.shape[0], self.shape[1],
                              self.block, self.method, self.dither0, self.scale, self.zero, self.zblank, RANDOMS, _BITS, tiles)
        if status != 0:
            raise ValueError(f"tile {ks[-1 - status]}: its bytes end before its pixels (corrupt)")
        return tiles
