"""Direct decoding of the tiles a stamp needs, straight from a tile-compressed file's heap.

astropy's ``CompImageHDU.section`` costs ~0.5 ms per call before it decodes a pixel, and a DR10
stamp touches ~2.7 tiles in each of 7 files. :class:`HeapTiles` reads the compressed tile table
once (descriptors; ZSCALE, ZZERO) and then only the compressed bytes of the tiles a stamp needs:
from a read-only memory map of a local file (no read call at all), else one ranged read per run
of tiles lying back to back in the heap (cfitsio writes a tile row's tiles in order; https and
S3 keep fetching exactly those bytes, :mod:`.remote`).

:class:`RiceTiles` serves RICE_1 float images with BYTEPIX 4 and BLOCKSIZE 32 (what legacypipe
writes for DR10 image and invvar, ``py/legacypipe/survey.py`` ``get_compression_args``, DR10
tags): one compiled call per file per stamp (:func:`.rice_box.decode_box`) goes from the tile
bytes to the stamp's float32 box, decoding each tile only down to the box's last row and
dequantising only the box's pixels, bit-identical to astropy's decode (tested on every DR10
setting and the real DR6 brick). HCOMPRESS maskbits: :mod:`.hcompress_tiles`; anything else
(GZIP maps, lossless fallback tiles) stays with astropy. Units: bytes; pixels as the file holds.
"""

from __future__ import annotations

import numpy as np

from ..dataset.fits_quant import METHODS, RANDOMS
from . import http
from .rice_box import ERR_TRUNCATED, decode_box

NULL_VALUE = -2147483647  # cfitsio's default ZBLANK for quantised floats


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


class HeapTiles:
    """The compressed bytes of one image's tiles: from ``mapped`` (uint8 array of the whole local
    file) when given, else read from ``fileobj`` by runs of adjacent tiles."""

    def __init__(self, fileobj, heap_start: int, desc: np.ndarray, tile: tuple[int, int], shape: tuple[int, int], mapped: np.ndarray | None = None) -> None:
        self.fileobj = fileobj
        self.mapped = mapped
        self.heap_start = heap_start
        self.desc = desc  # int64 [n tiles, 2]: (bytes, offset in heap)
        self.nbytes = np.ascontiguousarray(desc[:, 0])
        self.offsets = heap_start + desc[:, 1]  # from the file's start
        self.tile, self.shape = tile, shape
        self.grid = (-(-shape[0] // tile[0]), -(-shape[1] // tile[1]))
        self.bytes_read = 0

    def tile_size(self, r: int, c: int) -> tuple[int, int]:
        """(rows, columns) of tile (r, c): edge tiles may be short."""
        th, tw = self.tile
        return min(th, self.shape[0] - r * th), min(tw, self.shape[1] - c * tw)

    def fetch(self, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(buffer, int64 [n tiles] offsets into it; -1 for tiles not fetched) holding the bytes of
        tiles ``ks`` (ascending). Mapped files: the map itself. Counts the bytes in
        :func:`.remote.bytes_read` (the map's too: they are the file's bytes this stamp used)."""
        ks = np.asarray(ks, np.int64)
        nbytes, off = self.desc[ks, 0], self.desc[ks, 1]
        if self.mapped is not None:
            n = int(nbytes.sum())
            self.bytes_read += n
            http.BYTES.add(n)
            return self.mapped, self.offsets
        breaks = (np.flatnonzero(off[1:] != off[:-1] + nbytes[:-1]) + 1).tolist()  # starts of non-contiguous runs
        rel = np.full(self.desc.shape[0], -1, np.int64)
        parts, pos = [], 0
        for a, b in zip([0, *breaks], [*breaks, len(ks)], strict=True):
            start, end = int(off[a]), int(off[b - 1] + nbytes[b - 1])
            self.fileobj.seek(self.heap_start + start)
            data = self.fileobj.read(end - start)
            if len(data) != end - start:
                raise ValueError(f"tiles {ks[a]}..{ks[b - 1]}: {len(data)} of their {end - start} bytes in the file (truncated)")
            parts.append(data)
            rel[ks[a:b]] = off[a:b] - start + pos
            pos += end - start
        self.bytes_read += pos
        return np.frombuffer(parts[0] if len(parts) == 1 else b"".join(parts), np.uint8), rel

    def box_tiles(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Indices (row-major) of the tiles pixels [y0:y1, x0:x1] touch."""
        th, tw = self.tile
        rows = np.arange(y0 // th, (y1 - 1) // th + 1)
        cols = np.arange(x0 // tw, (x1 - 1) // tw + 1)
        return (rows[:, None] * self.grid[1] + cols[None, :]).ravel()


class RiceTiles(HeapTiles):
    """Direct decoder of one RICE_1 float image's pixel boxes (see module doc), or None via :meth:`of`."""

    def __init__(self, fileobj, heap_start: int, desc: np.ndarray, scale: np.ndarray, zero: np.ndarray, method: int, dither0: int,
                 tile: tuple[int, int], shape: tuple[int, int], zblank: int, mapped: np.ndarray | None = None) -> None:
        super().__init__(fileobj, heap_start, desc, tile, shape, mapped)
        self.scale, self.zero = scale, zero
        self.method, self.dither0, self.zblank = method, dither0, zblank
        self._ints = np.empty(tile[0] * tile[1], np.int32)  # scratch: one tile's integers

    @classmethod
    def of(cls, hdu, fileobj, mapped: np.ndarray | None = None) -> RiceTiles | None:
        """The decoder of a CompImageHDU, or None when astropy must decode it (not RICE_1 float
        with BYTEPIX 4 / BLOCKSIZE 32, unquantised or lossless-fallback tiles, odd tables)."""
        table = getattr(hdu, "_bintable", None)
        if table is None or (fileobj is None and mapped is None):
            return None
        h = table.header
        try:
            names = [c.upper() for c in table.columns.names]
            vals = {str(h.get(f"ZNAME{i}", "")).upper(): h.get(f"ZVAL{i}") for i in range(1, 10) if f"ZNAME{i}" in h}
            if (h.get("ZCMPTYPE") not in ("RICE_1", "RICE_ONE") or h.get("ZBITPIX") != -32 or h.get("ZNAXIS") != 2
                    or int(vals.get("BYTEPIX", 4)) != 4 or int(vals.get("BLOCKSIZE", 32)) != 32 or "GZIP_COMPRESSED_DATA" in names
                    or "ZBLANK" in names or not {"COMPRESSED_DATA", "ZSCALE", "ZZERO"} <= set(names)):
                return None
            method = METHODS.get(str(h.get("ZQUANTIZ", "NO_DITHER")).strip().upper())
            if method is None:
                return None
            layout = heap_layout(table)
            if layout is None:
                return None
            heap, desc, shape, tile = layout
            scale = np.asarray(table.data["ZSCALE"], np.float64).ravel()
            zero = np.asarray(table.data["ZZERO"], np.float64).ravel()
        except (KeyError, ValueError, TypeError, OSError):
            return None
        return cls(fileobj, heap, desc, scale, zero, method, int(h.get("ZDITHER0", 1)), tile, shape,
                   int(h.get("ZBLANK", NULL_VALUE)), mapped)

    def read_box(self, y0: int, y1: int, x0: int, x1: int, out: np.ndarray | None = None) -> np.ndarray:
        """float32 pixels [y0:y1, x0:x1] (inside the image), in one compiled call; written into
        ``out`` when given. A corrupt or truncated tile raises ValueError naming it."""
        if out is None:
            out = np.empty((y1 - y0, x1 - x0), np.float32)
        if self.mapped is not None:  # the tiles' bytes are in the map: no fetch
            buf, offsets = self.mapped, self.offsets
        else:
            buf, offsets = self.fetch(self.box_tiles(y0, y1, x0, x1))
        status, k = decode_box(buf, offsets, self.nbytes, self.tile[0], self.tile[1], self.shape[0], self.shape[1], self.method,
                               self.dither0, self.scale, self.zero, self.zblank, RANDOMS, y0, y1, x0, x1, self._ints, out)
        if k >= 0:
            what = "lies past the end of the file (truncated)" if status == ERR_TRUNCATED else "its bytes end before its pixels (corrupt)"
            raise ValueError(f"tile {k}: {what}")
        if self.mapped is not None:  # count the bytes used, as a read would have
            self.bytes_read += status
            http.BYTES.add(status)
        return out

    def decode_into(self, out: np.ndarray, t0: int, t1: int, s0: int, s1: int) -> None:
        """Decode tile rows [t0, t1) x tile columns [s0, s1) into ``out`` (a full-size float32 image)."""
        th, tw = self.tile
        y0, y1, x0, x1 = t0 * th, min(t1 * th, self.shape[0]), s0 * tw, min(s1 * tw, self.shape[1])
        self.read_box(y0, y1, x0, x1, out[y0:y1, x0:x1])
