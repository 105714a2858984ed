"""Stamp encoding: arrays <-> uncompressed NPZ bytes, never pickles.

``stamp_npz`` holds ``image`` float32 [3, S, S] (g, r, z; nanomaggies), ``invvar`` float32
[3, S, S] (1/nanomaggy^2) and ``maskbits`` int32 [S, S] (DR10 bits). ``arc_npz`` holds ``arc``
float32 [3, S, S] (the noiseless injected arc alone, nanomaggies). NPZ is stored uncompressed:
noisy float32 barely compresses and Parquet compresses the column anyway.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import SecurityError


def encode_npz(**arrays: np.ndarray) -> bytes:
    """Uncompressed NPZ bytes of the named arrays (dtypes kept)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def decode_npz(blob: bytes) -> dict[str, np.ndarray]:
    """Arrays of an NPZ blob. Pickled objects are refused (``allow_pickle=False``)."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise SecurityError("refusing an NPZ blob that holds pickled objects", reason=str(exc)) from None
        raise


def encode_stamp(image: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray) -> bytes:
    """``stamp_npz`` bytes: image/invvar as float32 [B,S,S], maskbits as int32 [S,S]."""
    return encode_npz(
        image=np.ascontiguousarray(image, dtype=np.float32),
        invvar=np.ascontiguousarray(invvar, dtype=np.float32),
        maskbits=np.ascontiguousarray(maskbits, dtype=np.int32),
    )


def decode_stamp(blob: bytes) -> dict[str, np.ndarray]:
    """``{'image', 'invvar', 'maskbits'}`` arrays of a ``stamp_npz`` blob."""
    return decode_npz(blob)


def encode_arc(arc: np.ndarray) -> bytes:
    """``arc_npz`` bytes of the noiseless arc, float32 [B,S,S] nanomaggies."""
    return encode_npz(arc=np.ascontiguousarray(arc, dtype=np.float32))


def decode_arc(blob: bytes) -> np.ndarray:
    """The arc array of an ``arc_npz`` blob."""
    return decode_npz(blob)["arc"]
