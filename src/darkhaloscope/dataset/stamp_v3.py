"""Stamp format 3: the bytes of ``stamp_npz`` as written now (format 1 and 2 blobs are still read).

Same content as format 2 (``dataset.stamp``): per plane (image, invvar) the coadd's fpack
integers, the float32 added to the host, the pixels stored raw and the quantisation grids; plus
maskbits. What changed is the coding, because gzip over ~120 KB of raw integers was where the
write time went and the integers carry ~1 byte of information per pixel:

* the integers are coded with RICE_1, the codec DR10's own image and invvar files use
  (legacypipe ``py/legacypipe/survey.py`` ``get_compression_string``, tags DR10.0.0-DR10.1.3;
  FITS 4.0 section 10.4.1; astropy's compiled cfitsio ``compress_rice_1_c``, block 32, 4 bytes),
  as the running sum of their residuals from the mean of four causal neighbours
  (``quant_split.to_rice_input``): ~0.9 byte per pixel, no second compressor needed;
* the addend plane keeps format 2's fixed size (uint8 [4, B, S, S] byte planes, 0 for hosts and
  controls), and the raw bits and maskbits (int32, mostly 0) theirs, so a blob's length is a
  function of its host's integers alone and never tells an injection from a control of the same
  host (the report's nuisance gate reads ``stamp_bytes``: it caught 0.551 > 0.55 on the report's
  test fixture, whose injections alone get star masks, when maskbits were RICE_1-coded too); the
  Parquet column codec (``generate.blob_compression``) shrinks the zeros.

Layout, little-endian: ``MAGIC`` (8 bytes), ``<HHH`` bands, rows, columns, then sections, each a
``<I`` byte length and its bytes, in this order: per plane ``grid`` (float64 vector, format 2's
layout, the predictor in each band's second number), one ``rice`` per band, ``add``, ``raw``;
then ``maskbits`` (a codec byte, 0: raw int32 [S, S] follows), then the CRC-32 (``<I``) of all before it.
A blob that does not parse, or whose CRC does not match, is a ValueError saying which part.

Decoding runs one compiled call per plane (``v3_kernels.decode_plane_kernel``: the survey's RICE_1
bit reader, the prediction undone, the join); the CRC-32 is zlib's, computed by ISA-L. Rows made
from a host blob reuse its sections (``dataset.stamp_splice``), the same bytes as :func:`encode_stamp_v3`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np
from astropy.io.fits.hdu.compressed._codecs import compress_rice_1_c
from isal.isal_zlib import (
    crc32,  # zlib's CRC-32, same values; ISA-L's carry-less-multiply code, ~10x faster
)

from .fits_quant import RANDOMS, QuantGrid
from .quant_split import PREDICT_MEAN4, split_plane_kernel, to_rice_input
from .v3_kernels import (
    BAD_STREAM,
    DECODED,
    VECTOR_BAD_GRID,
    VECTOR_LONG,
    VECTOR_SHORT,
    decode_plane_kernel,
)

FORMAT = 3
MAGIC = b"DHSTAMP\x03"
PLANES = ("image", "invvar")
_DIMS = struct.Struct("<HHH")
_LEN = struct.Struct("<I")
_BLOCK, _BYTEPIX = 32, 4  # RICE_1 block size (pixels) and bytes per integer, as fpack's default


def is_format3(blob: bytes) -> bool:
    """True when ``blob`` starts as a format-3 stamp does."""
    return bytes(blob[: len(MAGIC)]) == MAGIC


def _grid_vector(grids: Sequence[QuantGrid | None] | None, nb: int) -> np.ndarray:
    """Format 2's grid vector: per band ``[0]`` (raw) or ``[n, predictor, *grid.to_vector(0)]``
    (the predictor :data:`PREDICT_MEAN4`; the kernel sets it to 0 for a band it turns raw)."""
    parts = []
    for b in range(nb):
        grid = grids[b] if grids is not None and b < len(grids) else None
        if grid is None:
            parts.append(np.zeros(1))
        else:
            v = grid.to_vector(0)
            parts += [np.array([len(v), float(PREDICT_MEAN4)]), v]
    return np.concatenate(parts)


def _rice(values: np.ndarray) -> bytes:
    return compress_rice_1_c(values.tobytes(), _BLOCK, _BYTEPIX)


def _encode_plane(values: np.ndarray, base: np.ndarray, grids: Sequence[QuantGrid | None] | None, zero_addends_empty: bool) -> list[bytes]:
    """Sections of one float32 [B, S, S] plane: grid, one RICE_1 stream per band, addends, raw bits."""
    nb = values.shape[0]
    vector = _grid_vector(grids, nb)
    ints, add8, bits = split_plane_kernel(base, values, vector, RANDOMS)
    seq = to_rice_input(ints)
    if zero_addends_empty and not add8.any():
        add8 = np.zeros(0, np.uint8)
    return [vector.tobytes(), *(_rice(seq[b]) for b in range(nb)), add8.tobytes(), bits.tobytes()]


def _encode_maskbits(maskbits: np.ndarray) -> bytes:
    """Raw int32 (first byte 0): a fixed length, so the blob's length never depends on the mask
    (a row maker may flag pixels of an injection only); the Parquet codec shrinks the zeros."""
    return b"\x00" + np.ascontiguousarray(maskbits, dtype="<i4").tobytes()


def encode_stamp_v3(image: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, *,
                    grids: Mapping[str, Sequence[QuantGrid | None]] | None = None, host_image: np.ndarray | None = None) -> bytes:
    """Format-3 bytes of image/invvar float32 [B, S, S] (nanomaggies, 1/nanomaggy^2) and maskbits
    int32 [S, S]; ``grids`` and ``host_image`` as :func:`dataset.stamp.encode_stamp` takes them.
    The same arrays always give the same bytes."""
    grids = grids or {}
    image = np.ascontiguousarray(image, dtype=np.float32)
    invvar = np.ascontiguousarray(invvar, dtype=np.float32)
    host = image if host_image is None else np.ascontiguousarray(host_image, dtype=np.float32)
    if image.ndim != 3 or invvar.shape != image.shape or host.shape != image.shape:
        raise ValueError(f"image {image.shape}, invvar {invvar.shape} and host {host.shape} must be equal [B, S, S]")
    nb, s0, s1 = image.shape
    if np.shape(maskbits) != (s0, s1):
        raise ValueError(f"maskbits of shape {np.shape(maskbits)} does not match the stamp's {(s0, s1)}")
    # invvar is never changed by an injection; the image's addends keep their full size even when
    # all zero, so a blob's length says nothing about its role
    sections = _encode_plane(image, host, grids.get("image"), False) + _encode_plane(invvar, invvar, grids.get("invvar"), True)
    sections.append(_encode_maskbits(maskbits))
    parts = [MAGIC, _DIMS.pack(nb, s0, s1)]
    for s in sections:
        parts += [_LEN.pack(len(s)), s]
    body = b"".join(parts)
    return body + _LEN.pack(crc32(body))


class _Sections:
    """Sequential reader of a format-3 blob's sections (lengths checked against the blob);
    ``spans`` collects each section's (start, stop) byte offsets in the blob, in order."""

    def __init__(self, blob: bytes) -> None:
        mv = memoryview(blob)
        if len(mv) < len(MAGIC) + _DIMS.size + _LEN.size or not is_format3(blob):
            raise ValueError(f"not a format-3 stamp blob ({len(mv)} bytes)")
        body, (crc,) = mv[:-_LEN.size], _LEN.unpack_from(mv, len(mv) - _LEN.size)
        if crc32(body) != crc:
            raise ValueError("corrupt format-3 stamp blob: CRC-32 mismatch (the bytes were changed or cut)")
        self.mv, self.pos = body, len(MAGIC) + _DIMS.size
        self.dims = _DIMS.unpack_from(body, len(MAGIC))
        self.spans: list[tuple[int, int]] = []

    def next(self, what: str) -> memoryview:
        if self.pos + _LEN.size > len(self.mv):
            raise ValueError(f"corrupt format-3 stamp blob: section {what} missing")
        (n,) = _LEN.unpack_from(self.mv, self.pos)
        start, self.pos = self.pos + _LEN.size, self.pos + _LEN.size + n
        if self.pos > len(self.mv):
            raise ValueError(f"corrupt format-3 stamp blob: section {what} runs past the end")
        self.spans.append((start, self.pos))
        return self.mv[start : self.pos]


def _read_plane(sec: _Sections, name: str, decode: bool, buf: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(float32 [B, S, S] or None when ``decode`` is false, grid vector) of the next plane;
    ``buf`` is the whole blob as uint8 (the compiled decoder reads the band streams in place)."""
    nb, s0, s1 = sec.dims
    npix = s0 * s1
    grid = sec.next(f"{name} grid")
    if len(grid) % 8:
        raise ValueError(f"corrupt format-3 stamp blob: {name} grid of {len(grid)} bytes is not a float64 vector")
    vector = np.frombuffer(grid, dtype="<f8")
    for b in range(nb):
        sec.next(f"{name} band {b}")
    rice = np.array(sec.spans[-nb:], np.int64).reshape(nb, 2)
    add = sec.next(f"{name} addends")
    raw = sec.next(f"{name} raw bits")
    if not decode:
        return None, vector
    if len(add) not in (0, 4 * nb * npix) or len(raw) != nb * ((npix + 7) // 8):
        raise ValueError(f"corrupt format-3 stamp blob: {name} addends ({len(add)} bytes) or raw bits ({len(raw)}) do not fit [{nb}, {s0}, {s1}]")
    add8 = np.frombuffer(add, np.uint8).reshape(4, nb, s0, s1) if len(add) else np.zeros((4, nb, s0, s1), np.uint8)
    bits = np.frombuffer(raw, np.uint8).reshape(nb, -1)
    out = np.empty((nb, s0, s1), np.float32)
    status, detail = decode_plane_kernel(buf, rice[:, 0].copy(), rice[:, 1] - rice[:, 0], add8, bits, vector, RANDOMS, out)
    if status != DECODED:
        raise ValueError(f"corrupt format-3 stamp blob: {_DECODE_ERRORS[status].format(name=name, d=detail, npix=npix, shape=f'{s0} x {s1}')}")
    if detail != len(vector):
        raise ValueError(f"corrupt format-3 stamp blob: {name} grid vector of {len(vector)} numbers does not match its bands")
    return out, vector


_DECODE_ERRORS = {  # decode_plane_kernel's failures, worded for the ValueError
    BAD_STREAM: "RICE_1 stream of {name} band {d} does not decode to {npix} integers",
    VECTOR_SHORT: "{name} grid vector ends before band {d}",
    VECTOR_BAD_GRID: "{name} band {d} grid does not describe a {shape} stamp",
    VECTOR_LONG: "{name} grid vector has {d} numbers too many",
}


def decode_v3(blob: bytes, names: Sequence[str] = ("image", "invvar", "maskbits")) -> dict[str, np.ndarray]:
    """The arrays ``names`` (of image, invvar, maskbits) of a format-3 blob, and ``{plane}_grid``
    vectors of both planes (for ``dataset.stamp.decode_stamp_grids``)."""
    return decode_v3_sections(blob, names)[0]


def decode_v3_sections(blob: bytes, names: Sequence[str] = ("image", "invvar", "maskbits")) -> tuple[dict[str, np.ndarray], list[tuple[int, int]]]:
    """(:func:`decode_v3`, every section's (start, stop) byte offsets in ``blob`` in the layout's
    order): what ``dataset.stamp_splice`` needs to reuse a host blob's sections."""
    sec = _Sections(blob)
    nb, s0, s1 = sec.dims
    buf = np.frombuffer(blob, np.uint8)
    out: dict[str, np.ndarray] = {}
    for name in PLANES:
        arr, vector = _read_plane(sec, name, name in names, buf)
        out[f"{name}_grid"] = vector
        if arr is not None:
            out[name] = arr
    mb = sec.next("maskbits")
    if sec.pos != len(sec.mv):
        raise ValueError(f"corrupt format-3 stamp blob: {len(sec.mv) - sec.pos} bytes after the last section")
    if "maskbits" in names:
        if len(mb) == 1 + 4 * s0 * s1 and mb[0] == 0:
            out["maskbits"] = np.frombuffer(mb[1:], "<i4").reshape(s0, s1).astype(np.int32)
        else:
            raise ValueError(f"corrupt format-3 stamp blob: maskbits section of {len(mb)} bytes")
    return out, sec.spans
