"""Rows of a host table's stamp: encode them by reusing the host blob's bytes (stamp format 3).

In format 3 a pixel's integer depends on the host alone (``quant_split``), so a row whose invvar
and quantisation grids are its host's has the host blob's image grid and RICE_1 sections and its
whole invvar plane, byte for byte; only the image addends and raw bits, the maskbits and the
CRC-32 differ. :func:`reuse_host_blob` gives:

* a control (the host's own arrays): the host blob itself;
* a painted row (injection, unlensed, ring: ``image`` = host + arc, ``host_image`` the host's
  own array): the host blob with new image addends and raw bits (``v3_kernels.splice_addends``,
  ~0.02 ms where a full encode is ~0.55 ms) and new maskbits, spliced;
* None whenever a precondition does not hold, and the caller encodes in full
  (``stamp_v3.encode_stamp_v3``): another invvar, maskbits or grids object than the host's, a host
  image that is not the host's, a format 1/2 host blob, grids dropped (``stamp_quantised`` false
  while the blob has grids), or a host blob that is not a bare host (``splice_addends``).

The arrays are compared by identity: a row maker (``inject``) returns the cutout's own arrays
when it leaves them alone and new ones when it changes them, and never writes into them.
The bytes equal ``encode_stamp_v3``'s for the same arrays (tests/unit/test_stamp_splice.py).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fits_quant import QuantGrid
from .stamp import grids_from_vector
from .stamp_v3 import PLANES, crc32, decode_v3_sections, is_format3
from .v3_kernels import SPLICE_OK, splice_addends

_LEN = struct.Struct("<I")


class LazyGrids(Mapping):
    """``{"image": [QuantGrid | None per band], "invvar": [...]}`` read from a blob's grid vectors
    on first use (``stamp.grids_from_vector``, ~0.03 ms per stamp): a host table's rows need them
    only when they are encoded in full."""

    __slots__ = ("_grids", "_vectors")

    def __init__(self, vectors: Mapping[str, np.ndarray]) -> None:
        self._vectors = dict(vectors)
        self._grids: dict[str, list[QuantGrid | None]] | None = None

    def __getitem__(self, key: str) -> list[QuantGrid | None]:
        if self._grids is None:
            self._grids = {k: grids_from_vector(v) for k, v in self._vectors.items()}
        return self._grids[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._vectors)

    def __len__(self) -> int:
        return len(self._vectors)


@dataclass(frozen=True, eq=False)
class HostStamp:
    """A decoded format-3 host blob: the arrays and grids handed to the row maker, and where
    each section of ``blob`` lies (``spans``: (start, stop) byte offsets, in the layout's order).

    image/invvar float32 [B, S, S] (nanomaggies, 1/nanomaggy^2), maskbits int32 [S, S];
    ``grids`` is what the cutout carries (None when the host row says the stamp is not quantised);
    ``reusable`` is false when those grids do not encode to the blob's (then nothing is reused)."""

    blob: bytes
    image: np.ndarray
    invvar: np.ndarray
    maskbits: np.ndarray
    grids: Mapping[str, list[QuantGrid | None]] | None
    spans: list[tuple[int, int]]
    reusable: bool


def decode_host_stamp(blob: bytes, quantised: bool) -> HostStamp | None:
    """The :class:`HostStamp` of a format-3 host blob (None for formats 1 and 2: the caller
    decodes them with ``stamp.decode_stamp_with_grids``). ``quantised``: the host row's
    ``stamp_quantised`` (false: the cutout carries no grids). ValueError for a corrupt blob."""
    if not is_format3(blob):
        return None
    out, spans = decode_v3_sections(blob)
    vectors = {k: out[f"{k}_grid"] for k in PLANES}
    # with grids dropped the full encode writes raw bands ([0] per band): the blob's only if it has none
    reusable = quantised or not any(v.any() for v in vectors.values())
    grids = LazyGrids(vectors) if quantised else None
    return HostStamp(bytes(blob), out["image"], out["invvar"], out["maskbits"], grids, spans, reusable)


def reuse_host_blob(row: Mapping[str, Any], host: HostStamp) -> bytes | None:
    """``stamp_npz`` of ``row`` (``image``, ``invvar``, ``maskbits``, ``grids``, ``host_image`` as
    ``dataset.rows`` describes them) made from its host's blob, or None when it cannot be (the
    caller then encodes in full). See the module docstring for the rules."""
    if not host.reusable or row.get("invvar") is not host.invvar or row.get("grids") is not host.grids:
        return None
    image, base, maskbits = row.get("image"), row.get("host_image"), row.get("maskbits")
    if image is host.image and (base is None or base is host.image) and maskbits is host.maskbits:
        return host.blob  # a control: the same arrays give the same bytes
    if base is not host.image or not isinstance(image, np.ndarray) or image.dtype != np.float32 or image.shape != host.image.shape:
        return None
    if maskbits is not host.maskbits and np.shape(maskbits) != host.maskbits.shape:
        return None
    return _splice(host, np.ascontiguousarray(image), maskbits)


def _splice(host: HostStamp, image: np.ndarray, maskbits: np.ndarray) -> bytes | None:
    """The host blob with the image addends, raw bits and maskbits of ``image``/``maskbits``."""
    nb, s0, s1 = image.shape
    spans, blob = host.spans, memoryview(host.blob)
    add_span, raw_span = spans[1 + nb], spans[2 + nb]  # image: grid, nb streams, addends, raw bits
    host_add = np.frombuffer(blob[add_span[0] : add_span[1]], np.uint8).reshape(4, nb, s0, s1)
    host_bits = np.frombuffer(blob[raw_span[0] : raw_span[1]], np.uint8).reshape(nb, -1)
    add8 = np.empty((4, nb, s0, s1), np.uint8)
    bits = np.empty_like(host_bits)
    if splice_addends(host.image, image, host_add, host_bits, add8, bits) != SPLICE_OK:
        return None
    mask_span = spans[-1]
    if maskbits is host.maskbits:
        mask = blob[mask_span[0] : mask_span[1]]
    else:  # raw int32 after a 0 codec byte, as stamp_v3 writes it
        mask = b"\x00" + np.ascontiguousarray(maskbits, dtype="<i4").tobytes()
    body = b"".join([
        blob[: add_span[0] - _LEN.size],  # magic, dims, image grid and streams (with their lengths)
        _LEN.pack(add8.nbytes), add8, _LEN.pack(bits.nbytes), bits,
        blob[raw_span[1] : mask_span[0] - _LEN.size],  # the invvar plane, whole
        _LEN.pack(len(mask)), mask,
    ])
    return body + _LEN.pack(crc32(body))
