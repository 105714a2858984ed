"""Decoded pixels of one tile-compressed FITS image, kept per open file and filled on demand.

Every astropy ``CompImageHDU.section`` call has a fixed cost (header checks, ~0.5 ms here) on top
of decoding whole tiles (~12 ns per pixel, RICE + dequantisation, plus ~0.04 ms per tile read on
its own: a seek and a read per tile, which a whole-image decode does not pay). A stamp cut
straight from sections therefore pays 7 calls, and re-decodes tiles its neighbours already
decoded. A
:class:`DecodedImage` keeps what it decoded (a full-size array filled tile by tile, plus a map of
decoded tiles) and fills it one of two ways, chosen per file:

- **whole**: one ``.section[:, :]`` the first time a pixel is needed, when the brick will serve
  many stamps (:func:`prefer_whole`);
- **tiles**: one ``.section`` over the tile-aligned bounding box of the *missing* tiles of a
  stamp; tiles already decoded are not decoded again. Once the fixed costs paid equal the cost
  of decoding the rest of the image (``calls x SECTION_CALL_MS >= whole_ms(missing pixels)``: the
  ski-rental rule, never worse than 2x the better choice in hindsight), the rest is decoded whole.

Both paths go through ``.section`` on whole tiles, so pixels are bit-identical to a direct
``.section`` of the stamp box (tiles are decoded and dequantised independently). Files with a
direct decoder skip astropy (bit-identical, tested against its full decode):

- RICE_1 floats (DR10 image and invvar): :class:`.tile_decode.RiceTiles` cuts each stamp's box in
  one compiled call (tiles decoded down to the box's last row, only the box's pixels
  dequantised), with no tile cache (at DR10's density stamps rarely share a tile; a box costs
  ~0.1 ms); the whole file is decoded once by the same kernel when the brick serves enough
  stamps (:func:`prefer_whole_direct`, and the same ski-rental switch without a hint);
- HCOMPRESS_1 integers (DR10 maskbits, nexp): :mod:`.hcompress_tiles`, tile by tile with the
  tile cache, never a whole pass (all-zero tiles, most maskbits tiles, cost ~nothing).

Images that are not tile-compressed are read with ``.section`` directly (astropy reads only the
rows needed).

Units: pixels; sizes in bytes.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..dataset.fits_quant import METHODS, FileQuant
from ..errors import DataFileError
from .hcompress_tiles import HcompressTiles
from .tile_decode import RiceTiles

# Decoding costs with astropy 8.0 (CPU ms; `benchmarks/bench_survey.py`: section_call_ms,
# section_tile_ms, decode_ns_per_pixel, on RICE_1 q=16 float32 noise images). Only ratios matter.
SECTION_CALL_MS = 0.5  # fixed cost of one .section call
SECTION_TILE_MS = 0.04  # extra per tile when tiles are read by a section (seek + read per tile)
PIXEL_MS = 12e-6  # per pixel decoded (RICE + dequantisation), either way
# The compiled RICE_1 path (rice_box.py; bench_dr10 figures, this machine): a call per stamp per file,
# then ~5 ns per pixel decoded (whole-image decodes dequantise every pixel: ~6 ns).
DIRECT_CALL_MS = 0.02  # fixed cost of one RiceTiles.read_box (Python + dispatch)
DIRECT_PIXEL_MS = 6e-6  # per pixel decoded and dequantised


def whole_ms(n_pixels: float) -> float:
    """Modelled CPU ms to decode ``n_pixels`` pixels in one whole-image pass (no call cost)."""
    return n_pixels * PIXEL_MS


def tiles_ms(n_tiles: float, n_pixels: float) -> float:
    """Modelled CPU ms to decode ``n_tiles`` tiles holding ``n_pixels`` pixels through sections (no call cost)."""
    return n_tiles * SECTION_TILE_MS + n_pixels * PIXEL_MS


def section(hdu, path: str, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``hdu.section[y0:y1, x0:x1]`` as an array; a decoding failure is a DataFileError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(hdu.section[y0:y1, x0:x1])
    except Exception as exc:
        raise DataFileError(f"corrupt file {path}: cannot decompress [{y0}:{y1}, {x0}:{x1}]: {type(exc).__name__}: {exc}", path=path) from None


def tiles_touched(tile: tuple[int, int], grid: tuple[int, int], size: int) -> float:
    """Mean number of tiles a size x size box at a random position touches (1 + (S-1)/t per axis)."""
    return math.prod(min(g, 1.0 + (size - 1) / t) for t, g in zip(tile, grid, strict=True))


def prefer_whole(shape: tuple[int, int], tile: tuple[int, int], size: int, n_stamps: int) -> bool:
    """True when decoding the whole image once costs no more than ``n_stamps`` tile-cached section reads.

    Whole = 1 call + ``whole_ms(N)``; tiles = n calls + ``tiles_ms`` of the expected union of the
    tiles the stamps touch, a fraction ``f = 1 - (1 - k/T)^n`` of the T tiles and N pixels for n
    uniformly placed stamps each touching k tiles. Examples (S = 64, tiles 100 x 100, as DR10
    writes every coadd: legacypipe ``py/legacypipe/survey.py`` ``get_compression_args``, DR10 tags;
    the real DR6 brick has ZTILE1 = ZTILE2 = 100): a 1000^2 brick (whole ~12 ms) is decoded whole
    from n = 15 stamps; a DR10 brick 3600^2 (whole ~160 ms) only from n ~ 183, so a DR10 brick with
    its ~37 LRGs is cut tile by tile (~2.7 tiles per file per stamp).
    """
    n = int(n_stamps)
    if n <= 1:
        return False
    ny, nx = shape
    grid = (-(-ny // tile[0]), -(-nx // tile[1]))
    total_tiles = grid[0] * grid[1]
    k = tiles_touched(tile, grid, size)
    f = 1.0 - (1.0 - min(k / total_tiles, 1.0)) ** n
    return whole_ms(ny * nx) <= (n - 1) * SECTION_CALL_MS + tiles_ms(f * total_tiles, f * ny * nx)


def direct_box_ms(tile: tuple[int, int], size: int) -> float:
    """Modelled CPU ms of one size x size box through the compiled RICE path, with no cache: the
    tile columns it touches (1 + (S-1)/tw on average) each decoded from their tile row's top down
    to the box's last row (S + th/2 rows on average)."""
    th, tw = tile
    return DIRECT_CALL_MS + (1.0 + (size - 1) / tw) * tw * (size + th / 2.0) * DIRECT_PIXEL_MS


def prefer_whole_direct(shape: tuple[int, int], tile: tuple[int, int], size: int, n_stamps: int) -> bool:
    """True when decoding a RICE file whole with the compiled decoder costs no more than cutting
    ``n_stamps`` boxes from it (each box pays its own tiles: no cache on this path). A DR10 brick
    (3600^2, ~78 ms whole) is cut box by box up to ~600 stamps; a 1800^2 demo brick up to ~150."""
    return int(n_stamps) > 1 and shape[0] * shape[1] * DIRECT_PIXEL_MS <= int(n_stamps) * direct_box_ms(tile, size)


class DecodedImage:
    """Pixels of one 2-D image HDU, decoded at most once per tile while the file stays open
    (the compiled RICE path: box by box, or whole once; see the module doc).

    ``expected``: stamps the caller expects from this brick (0 = unknown: start tile by tile).
    """

    def __init__(self, hdu, path: str, expected: int = 0, fileobj=None, fd: int | None = None) -> None:
        self.hdu = hdu
        self.fileobj = fileobj  # the open file: RICE_1 / HCOMPRESS_1 tiles are then decoded directly (tile_decode.py)
        self.fd = fd  # OS descriptor of a local file (tiles read with pread), else None
        self.path = path
        self.expected = int(expected)
        self.shape = tuple(int(n) for n in hdu.shape)
        tile = getattr(hdu, "tile_shape", None)  # CompImageHDU: (ZTILE2, ZTILE1), numpy order
        self.compressed = tile is not None and len(self.shape) == 2
        self.tile = tuple(max(1, int(t)) for t in tile) if self.compressed else self.shape
        self.grid = tuple(-(-n // t) for n, t in zip(self.shape, self.tile, strict=True))
        self.have = np.zeros(self.grid, bool)  # tiles decoded whole
        self._len = [self._lengths(axis) for axis in (0, 1)]
        self.decoded_pixels = 0  # pixels decoded and held
        self.data: np.ndarray | None = None  # full-size image (astropy paths)
        self.tiles: dict[tuple[int, int], np.ndarray] = {}  # compact decoded tiles (HCOMPRESS path)
        self.calls = 0  # section calls made
        self.boxes = 0  # boxes cut by the compiled RICE path
        self.whole: bool | None = None  # decided at the first read
        self._box_ms = 0.0  # compiled RICE path: modelled ms per box (set with whole)
        self._quant: FileQuant | None | bool = False  # False: not read yet
        self._rice: RiceTiles | HcompressTiles | None | bool = False  # False: not looked at yet

    # per-axis tile lengths (the last tile of an axis may be short)
    def _lengths(self, axis: int) -> np.ndarray:
        n, t, g = self.shape[axis], self.tile[axis], self.grid[axis]
        out = np.full(g, t, np.int64)
        out[-1] = n - t * (g - 1)
        return out

    @property
    def nbytes(self) -> int:
        """Bytes of decoded pixels held (pages of the full-size array never written cost nothing)."""
        itemsize = self.data.itemsize if self.data is not None else next(iter(self.tiles.values())).itemsize if self.tiles else 0
        return self.decoded_pixels * itemsize

    @property
    def quant(self) -> FileQuant | None:
        """The file's quantisation (per-tile ZSCALE/ZZERO, dither), None when its pixels were
        not quantised (integer image, lossless compression) or it cannot be read; read once."""
        if self._quant is False:
            self._quant = file_quant(self.hdu) if self.compressed else None
        return self._quant

    def drop(self) -> None:
        """Forget the decoded pixels (the file stays open)."""
        self.data = None
        self.tiles = {}
        self.have[:] = False
        self.decoded_pixels = 0

    def read(self, y0: int, y1: int, x0: int, x1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Pixels [y0:y1, x0:x1] (0 <= y0 < y1 <= ny, same for x): a view of the full-size array
        (whole-decoded files), a box decoded for this call (compiled RICE path) or a copy
        assembled from the compact tiles (HCOMPRESS path). With ``out`` (C-contiguous, the box's
        shape) the pixels are written there (the compiled path decodes straight into it)."""
        if out is not None:
            if self.data is None and isinstance(self.rice, RiceTiles):  # (a RICE file's data is only ever the whole image)
                return self._read_rice(y0, y1, x0, x1, out)
            np.copyto(out, self.read(y0, y1, x0, x1))
            return out
        if not self.compressed:
            return section(self.hdu, self.path, y0, y1, x0, x1)
        if self.data is not None and self.decoded_pixels == self.shape[0] * self.shape[1]:  # every tile decoded
            return self.data[y0:y1, x0:x1]
        if isinstance(self.rice, RiceTiles):
            return self._read_rice(y0, y1, x0, x1)
        ty, tx = self.tile
        if self.rice is not None and self.data is None:  # HCOMPRESS tiles from the heap, cached compact (plain-Python path: once per stamp)
            t0, t1, s0, s1 = y0 // ty, (y1 - 1) // ty + 1, x0 // tx, (x1 - 1) // tx + 1
            need = [(r, c) for r in range(t0, t1) for c in range(s0, s1) if (r, c) not in self.tiles]
            if need:
                self._decode_list(need)
            if t1 - t0 == 1 and s1 - s0 == 1:  # one tile: a view of it (callers copy)
                return self.tiles[(t0, s0)][y0 - t0 * ty : y1 - t0 * ty, x0 - s0 * tx : x1 - s0 * tx]
            return self._assemble(y0, y1, x0, x1, t0, t1, s0, s1)
        t0, t1, s0, s1 = y0 // ty, (y1 - 1) // ty + 1, x0 // tx, (x1 - 1) // tx + 1
        miss = ~self.have[t0:t1, s0:s1]
        if miss.any() and self.rice is not None:  # HCOMPRESS tiles from the heap: cheap per call, cached, never a whole pass
            self._decode_tiles(t0, s0, miss)
        elif miss.any():
            if self.whole is None:
                self.whole = prefer_whole(self.shape, self.tile, max(y1 - y0, x1 - x0), self.expected)
            rest_ms = whole_ms(self.shape[0] * self.shape[1] - self.decoded_pixels)
            if self.whole or self.calls * SECTION_CALL_MS >= rest_ms:
                self._fill(0, self.grid[0], 0, self.grid[1])
            else:  # bounding box of the missing tiles only
                rows, cols = np.flatnonzero(miss.any(axis=1)), np.flatnonzero(miss.any(axis=0))
                self._fill(t0 + rows[0], t0 + rows[-1] + 1, s0 + cols[0], s0 + cols[-1] + 1)
        if self.data is not None and not self.tiles:
            return self.data[y0:y1, x0:x1]
        return self._assemble(y0, y1, x0, x1, t0, t1, s0, s1)

    def box_by_box(self, size: int) -> bool:
        """True when this RICE file's next size x size box is cut on its own by the compiled path
        (counted: the ski-rental switch), False when the file is (to be) decoded whole instead."""
        if self.data is not None or not isinstance(self.rice, RiceTiles):
            return False
        if self.whole is None:
            self.whole = prefer_whole_direct(self.shape, self.tile, size, self.expected)
            self._box_ms = direct_box_ms(self.tile, size)  # the ski-rental switch's price per box
        if self.whole or self.boxes * self._box_ms >= self.shape[0] * self.shape[1] * DIRECT_PIXEL_MS:
            return False
        self.boxes += 1
        return True

    def _read_rice(self, y0: int, y1: int, x0: int, x1: int, out: np.ndarray | None = None) -> np.ndarray:
        """A box through the compiled RICE path: cut on its own (no tile cache: at DR10's density
        stamps rarely share a tile), or the whole file decoded once when the brick serves enough
        stamps (:func:`prefer_whole_direct`; ski-rental switch after as many boxes' cost)."""
        try:
            if not self.box_by_box(max(y1 - y0, x1 - x0)):
                self.data = self.rice.read_box(0, self.shape[0], 0, self.shape[1])
                self.have[:] = True
                self.decoded_pixels = self.shape[0] * self.shape[1]
                if out is not None:
                    np.copyto(out, self.data[y0:y1, x0:x1])
                    return out
                return self.data[y0:y1, x0:x1]
            return self.rice.read_box(y0, y1, x0, x1, out)
        except Exception as exc:  # a corrupt or truncated tile: name the file, as section() does
            raise DataFileError(f"corrupt file {self.path}: cannot decompress [{y0}:{y1}, {x0}:{x1}]: {type(exc).__name__}: {exc}", path=self.path) from None

    def _assemble(self, y0: int, y1: int, x0: int, x1: int, t0: int, t1: int, s0: int, s1: int) -> np.ndarray:
        """Pixels [y0:y1, x0:x1] copied from the compact tiles (and the full-size array, if any)."""
        ty, tx = self.tile
        dtype = self.data.dtype if self.data is not None else next(iter(self.tiles.values())).dtype
        out = np.empty((y1 - y0, x1 - x0), dtype)
        for r in range(t0, t1):
            for c in range(s0, s1):
                a0, a1 = max(y0, r * ty), min(y1, (r + 1) * ty)
                b0, b1 = max(x0, c * tx), min(x1, (c + 1) * tx)
                tile = self.tiles.get((r, c))
                if tile is None:  # decoded into the full-size array by an astropy path
                    out[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0] = self.data[a0:a1, b0:b1]
                else:
                    out[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0] = tile[a0 - r * ty : a1 - r * ty, b0 - c * tx : b1 - c * tx]
        return out

    @property
    def rice(self) -> RiceTiles | None:
        """The direct decoder of this file (RICE_1 floats: :mod:`.tile_decode`; HCOMPRESS_1 int32:
        :mod:`.hcompress_tiles`), or None (astropy decodes it)."""
        if self._rice is False:
            self._rice = None
            if self.compressed and (self.fileobj is not None or self.fd is not None):
                self._rice = RiceTiles.of(self.hdu, self.fileobj, self.fd) or HcompressTiles.of(self.hdu, self.fileobj, self.fd)
        return self._rice

    def _decode_tiles(self, t0: int, s0: int, miss: np.ndarray) -> None:
        """Decode the tiles ``miss`` (bool [tile rows, tile columns] from tile (t0, s0)) directly
        (HCOMPRESS path) and keep them compact."""
        rows, cols = np.nonzero(miss)
        self._decode_list(list(zip((rows + t0).tolist(), (cols + s0).tolist(), strict=True)))

    def _decode_list(self, need: list[tuple[int, int]]) -> None:
        """Decode the tiles ``need`` ([(tile row, tile column)], row-major) directly (HCOMPRESS
        path) and keep them compact."""
        try:
            tiles = self.rice.decode_many([r for r, _ in need], [c for _, c in need])
        except Exception as exc:  # a corrupt or truncated tile: name the file, as section() does
            raise DataFileError(f"corrupt file {self.path}: cannot decompress tiles {sorted(need)}: "
                                f"{type(exc).__name__}: {exc}", path=self.path) from None
        for (r, c), tile in tiles.items():
            self.decoded_pixels += tile.size
            self.tiles[(r, c)] = tile
            self.have[r, c] = True

    def _fill(self, t0: int, t1: int, s0: int, s1: int) -> None:
        """Decode tiles [t0:t1, s0:s1] through one astropy ``.section`` into the full-size array."""
        ty, tx = self.tile
        py0, py1 = t0 * ty, min(t1 * ty, self.shape[0])
        px0, px1 = s0 * tx, min(s1 * tx, self.shape[1])
        whole = (t0, t1, s0, s1) == (0, self.grid[0], 0, self.grid[1])
        block = section(self.hdu, self.path, py0, py1, px0, px1)
        self.calls += 1
        if self.data is None:
            # np.empty: the OS commits pages only when written, so untouched rows cost no memory
            self.data = np.empty(self.shape, block.dtype)
        self.data[py0:py1, px0:px1] = block
        if whole:  # the full-size array holds every pixel now
            self.tiles = {}
            self.decoded_pixels = self.shape[0] * self.shape[1]
        else:
            new = ~self.have[t0:t1, s0:s1]
            self.decoded_pixels += int(self._len[0][t0:t1] @ new.astype(np.int64) @ self._len[1][s0:s1])
        self.have[t0:t1, s0:s1] = True


def file_quant(hdu) -> FileQuant | None:
    """:class:`FileQuant` of a float ``CompImageHDU`` quantised as fpack does, else None.

    Reads the header and the ZSCALE/ZZERO columns of the compressed table (one small read, not
    the compressed tiles). Tiles stored without quantisation (cfitsio's GZIP_COMPRESSED_DATA
    fallback for tiles it could not quantise) get scale NaN, so their pixels are stored raw.
    """
    table = getattr(hdu, "_bintable", None)
    if table is None:
        return None
    h = table.header
    names = {c.upper() for c in table.columns.names}
    if h.get("ZBITPIX") not in (-32, -64) or not {"ZSCALE", "ZZERO"} <= names:
        return None
    method = METHODS.get(str(h.get("ZQUANTIZ", "NO_DITHER")).strip().upper())
    if method is None or h.get("ZNAXIS") != 2:
        return None
    shape = (int(h["ZNAXIS2"]), int(h["ZNAXIS1"]))
    tile = (int(h.get("ZTILE2", 1)), int(h.get("ZTILE1", shape[1])))
    grid = (-(-shape[0] // tile[0]), -(-shape[1] // tile[1]))
    try:
        scale = np.asarray(table.data["ZSCALE"], np.float64).reshape(grid)
        zero = np.asarray(table.data["ZZERO"], np.float64).reshape(grid)
        if "GZIP_COMPRESSED_DATA" in names:
            desc = table.data["GZIP_COMPRESSED_DATA"]  # astropy gives the (count, offset) descriptors
            counts = desc[:, 0] if getattr(desc, "ndim", 1) == 2 else np.array([len(v) for v in desc])
            lossless = (np.asarray(counts) > 0).reshape(grid)
            scale = np.where(lossless, np.nan, scale)
    except (ValueError, KeyError, OSError):  # an odd table: store this file's pixels raw
        return None
    return FileQuant(method, int(h.get("ZDITHER0", 1)), tile, shape, scale, zero)
