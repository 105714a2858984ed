"""All the RICE_1 files of a stamp (image and invvar of every band) cut in two compiled calls.

Cutting a grz stamp file by file (:meth:`.tile_decode.RiceTiles.read_box`, six times) paid the
Python around each call and numba's unboxing of 19 arguments per call (~0.05 ms per file on the
DR10 bench, more than a file's decoding). :class:`RiceStamp` packs, once per open brick, the six
files' tile tables (file offsets, byte counts, ZSCALE, ZZERO) into flat arrays with one row of
per-file settings each (``meta``), so that a stamp costs:

1. :func:`.rice_io.read_spans`: the byte spans to read, one per tile row of each file when its
   tiles lie back to back in the heap (as cfitsio writes a tile row), and each tile's offset in
   the shared read buffer; one ``pread(2)`` per span (~10 per grz stamp: a 64 px box touches 1-2
   tile rows of the 100 x 100 tiles DR10 writes, legacypipe ``py/legacypipe/survey.py``
   ``get_compression_args``, DR10 tags), from compiled code;
2. :func:`.rice_box.decode_boxes`: every file's box into its plane of one float32 [n files, S, S]
   array, two files at a time (:func:`.rice_box.rice_ints2`: the two tiles' serial decoding
   chains overlap in the CPU; 0.43 -> 0.31 ms per grz stamp on the DR10 bench), bit-identical to
   the per-file path and to astropy's full decode.

Local files only (``os.preadv`` on their descriptors); https and S3 keep the per-file path.
Units: bytes; pixels as the files hold them (nanomaggies, 1/nanomaggy^2).
"""

from __future__ import annotations

import numpy as np

from ..dataset.fits_quant import RANDOMS
from . import http
from .rice_box import BASE, ERR_TRUNCATED, NX, PAD, TH, TW, decode_boxes
from .rice_io import ERR_BUFFER, ERR_SHORT_READ, read_spans
from .tile_decode import RiceTiles


class RiceStamp:
    """The packed tile tables of several local RICE_1 files of one brick (see module doc)."""

    def __init__(self, files: list[RiceTiles], paths: list[str]) -> None:
        self.paths = paths
        self.fds = np.array([rt.fd for rt in files], np.int64)
        self.shape = files[0].shape
        counts = [len(rt.nbytes) for rt in files]
        base = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.meta = np.array([[b, *rt.shape, *rt.tile, rt.method, rt.dither0, rt.zblank] for b, rt in zip(base.tolist(), files, strict=True)], np.int64)
        self.geom = np.ascontiguousarray(self.meta[:, [BASE, NX, TH, TW]])  # rice_io's G_BASE, G_NX, G_TH, G_TW
        self.offsets = np.concatenate([rt.offsets for rt in files]).astype(np.int64)
        self.nbytes = np.concatenate([rt.nbytes for rt in files]).astype(np.int64)
        self.after = np.concatenate([rt.after for rt in files])  # a file's last tile has after = False
        self.scale = np.concatenate([rt.scale for rt in files])
        self.zero = np.concatenate([rt.zero for rt in files])
        self.rel = np.full(len(self.nbytes), -1, np.int64)
        self.ints = np.empty((2, max(int(th) * int(tw) for th, tw in (rt.tile for rt in files))), np.int32)  # two tiles decoded at once
        self._buf = np.zeros(1 << 18, np.uint8)  # a DR10 grz stamp reads ~220 KB
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
        args = (self.fds, self.geom, self.offsets, self.nbytes, self.after, y0, y1, x0, x1, spans, self.rel)
        status, f, detail, total = read_spans(*args, self._buf, PAD)
        if status == ERR_BUFFER:  # a larger box than any before: grow the buffer once
            self._buf = np.zeros(max(detail, 2 * self._buf.shape[0]), np.uint8)
            status, f, detail, total = read_spans(*args, self._buf, PAD)
        if status == 0:
            status, f, detail = decode_boxes(self._buf, self.rel, self.nbytes, self.scale, self.zero, self.meta, RANDOMS, y0, y1, x0, x1, self.ints, out)
        http.BYTES.add(total)
        self.bytes_read += total
        if status == ERR_SHORT_READ:
            raise ValueError(f"{self.paths[f]}: the tiles at byte {detail} lie past the end of the file (truncated)")
        if f >= 0:
            what = "lies past the end of the file (truncated)" if status == ERR_TRUNCATED else "its bytes end before its pixels (corrupt)"
            raise ValueError(f"{self.paths[f]}: tile {detail}: {what}")
