"""Direct decoding of the HCOMPRESS_1 integer tiles a stamp needs (DR10 maskbits), from the tile heap.

DR10 writes maskbits (and nexp) as int32 HCOMPRESS, lossless (legacypipe ``py/legacypipe/survey.py``
``get_compression_args``, DR10 tags; issue #14). astropy's ``CompImageHDU.section`` costs ~0.5 ms
per call before it decodes a pixel (header checks), several times a stamp's decoding. As
:class:`.tile_decode.RiceTiles` does for RICE_1 floats, :class:`HcompressTiles` reads the tile
table once, then only the compressed bytes of the tiles a stamp touches (:class:`.tile_decode.HeapTiles`:
one read per run of adjacent tiles), and decodes each tile with astropy's own HCOMPRESS codec
(``astropy.io.fits.hdu.compressed._codecs.HCompress1``: cfitsio's ``fits_hdecompress``, the
H-transform of White 1992), with the settings astropy uses for a tile (BYTEPIX 8, nx = tile rows,
ny = tile columns; ``_tiled_compression._header_to_settings`` / ``_update_tile_settings``, astropy
8.0). Same codec, same bytes: bit-identical to astropy's decode (tested against its full decode).

Used for integer HCOMPRESS_1 images with ZBITPIX 16 or 32 (DR6/DR10 nexp are int16) and no BSCALE/BZERO, ZBLANK or lossless
fallback columns; anything else stays with astropy. Units: whatever the file holds (maskbits: bits).
"""

from __future__ import annotations

import numpy as np

from .tile_decode import HeapTiles, heap_layout

# An HCOMPRESS_1 tile stream starts with: magic 0xDD 0x99, nx (tile rows), ny (tile columns) and
# scale as 4-byte big-endian ints, the sum of all pixels (8 bytes), the bit planes of the three
# quadrant groups (3 bytes); then the quadtree-coded bit planes, an end nybble 0 and the sign bits
# (cfitsio ``fits_hdecompress.c`` ``decode`` / ``dodecode``, as astropy 8.0 bundles it).
_MAGIC = b"\xdd\x99"
_SUM, _PLANES, _END = slice(14, 22), slice(22, 25), 25
DTYPES = {16: np.int16, 32: np.int32}  # ZBITPIX -> pixel type (the codec returns int32; lossless, so values fit)


class HcompressTiles(HeapTiles):
    """Direct decoder of one HCOMPRESS_1 int16/int32 image's tiles, or None via :meth:`of`.
    Tiles are decoded whole (the H-transform needs the whole tile) and kept by the caller."""

    @classmethod
    def of(cls, hdu, fileobj, fd: int | None = None) -> HcompressTiles | None:
        """The decoder of a CompImageHDU, or None when astropy must decode it (see module doc)."""
        table = getattr(hdu, "_bintable", None)
        if table is None or (fileobj is None and fd is None):
            return None
        h = table.header
        try:
            names = {c.upper() for c in table.columns.names}
            vals = {str(h.get(f"ZNAME{i}", "")).upper(): h.get(f"ZVAL{i}") for i in range(1, 10) if f"ZNAME{i}" in h}
            if (h.get("ZCMPTYPE") != "HCOMPRESS_1" or h.get("ZBITPIX") not in DTYPES or h.get("ZNAXIS") != 2 or names != {"COMPRESSED_DATA"}
                    or float(h.get("BZERO", 0.0)) != 0.0 or float(h.get("BSCALE", 1.0)) != 1.0):
                return None
            hscale, smooth = int(vals.get("SCALE", 0)), int(vals.get("SMOOTH", 0))
            layout = heap_layout(table)
        except (KeyError, ValueError, TypeError, OSError):
            return None
        if layout is None:
            return None
        heap, desc, shape, tile = layout
        out = cls(fileobj, heap, desc, tile, shape, fd)
        out.hscale, out.smooth, out.dtype = hscale, smooth, DTYPES[int(h["ZBITPIX"])]
        out._zeros = np.zeros(tile, out.dtype)  # shared by every all-zero tile (read-only)
        out._zeros.flags.writeable = False
        return out

    def zero_tile(self, stream: bytes, h: int, w: int) -> bool:
        """True when ``stream`` is the HCOMPRESS_1 code of an all-zero h x w tile: sum of all pixels
        0, no bit planes in any quadrant, the end nybble next. Every H-transform coefficient is then
        0 and so is every pixel (the inverse transform of zeros; smoothing off). Most DR10 maskbits
        tiles are such a 26-byte stream; their decoding is skipped."""
        return (self.smooth == 0 and len(stream) > _END and stream[:2] == _MAGIC and int.from_bytes(stream[2:6], "big") == h
                and int.from_bytes(stream[6:10], "big") == w and not any(stream[_SUM]) and not any(stream[_PLANES]) and stream[_END] >> 4 == 0)

    def decode_many(self, rows: np.ndarray, cols: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
        """{(row, column): [h, w] tile} of the tiles (``rows[i]``, ``cols[i]``), given in row-major order."""
        from astropy.io.fits.hdu.compressed._codecs import HCompress1

        rows, cols = [int(r) for r in rows], [int(c) for c in cols]
        if not rows:
            return {}
        ks = [r * self.grid[1] + c for r, c in zip(rows, cols, strict=True)]
        buf, offsets = self.fetch(ks)
        out, nbytes = {}, self.lists[1]
        for r, c, k in zip(rows, cols, ks, strict=True):
            h, w = self.tile_size(r, c)
            start, n = int(offsets[k]), nbytes[k]
            if start + n > buf.shape[0]:
                raise ValueError(f"tile {k}: lies past the end of the file (truncated)")
            if self.zero_tile(bytes(buf[start : start + _END + 1]), h, w):
                out[(r, c)] = self._zeros[:h, :w]
                continue
            codec = HCompress1(scale=self.hscale, smooth=self.smooth, bytepix=8, nx=h, ny=w)
            try:
                px = codec.decode(buf[start : start + n])
            except Exception as exc:  # the C codec raises on bytes that are not a valid HCOMPRESS stream
                raise ValueError(f"tile {k}: not a valid HCOMPRESS_1 stream ({type(exc).__name__}: {exc})") from None
            if px.shape[0] < h * w:
                raise ValueError(f"tile {k}: {px.shape[0]} of its {h * w} pixels decoded (corrupt)")
            out[(r, c)] = px[: h * w].astype(self.dtype, copy=False).reshape(h, w)
        return out

    def decode_into(self, out: np.ndarray, t0: int, t1: int, s0: int, s1: int) -> None:
        """Decode tile rows [t0, t1) x tile columns [s0, s1) into ``out`` (a full-size image)."""
        th, tw = self.tile
        rows, cols = np.meshgrid(np.arange(t0, t1), np.arange(s0, s1), indexing="ij")
        for (r, c), tile in self.decode_many(rows.ravel(), cols.ravel()).items():
            out[r * th : r * th + tile.shape[0], c * tw : c * tw + tile.shape[1]] = tile
