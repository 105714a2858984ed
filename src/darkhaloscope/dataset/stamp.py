"""Stamp encoding: arrays <-> uncompressed NPZ bytes, never pickles.

``stamp_npz`` holds ``image`` float32 [3, S, S] (g, r, z; nanomaggies), ``invvar`` float32
[3, S, S] (1/nanomaggy^2) and ``maskbits`` int32 [S, S] (DR10 bits). ``arc_npz`` holds ``arc``
float32 [3, S, S] (the noiseless injected arc alone, nanomaggies). NPZ is stored uncompressed:
noisy float32 barely compresses and Parquet compresses the column anyway.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

from ..errors import SecurityError

_NPY_HEADERS: dict[tuple, bytes] = {}
_ZIP_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01 00:00 (DOS date): fixed, so the bytes are too


def _npy_header(arr: np.ndarray) -> bytes | None:
    """NPY format 1.0 header of a C-ordered array (what ``np.save`` writes), cached per
    (dtype, shape); None when the array needs another format version."""
    key = (arr.dtype, arr.shape)
    head = _NPY_HEADERS.get(key)
    if head is None:
        buf = io.BytesIO()
        d = np.lib.format.header_data_from_array_1_0(arr)
        try:
            np.lib.format.write_array_header_1_0(buf, d)
        except ValueError:  # header too long for format 1.0
            return None
        head = buf.getvalue()
        if len(_NPY_HEADERS) > 256:
            _NPY_HEADERS.clear()
        _NPY_HEADERS[key] = head
    return head


def encode_npz(**arrays: np.ndarray) -> bytes:
    """Uncompressed NPZ bytes of the named arrays (dtypes kept).

    A hand-built ZIP (stored, no compression) of ``<name>.npy`` members, each the NPY 1.0
    header plus the C-ordered array bytes: the layout ``np.savez`` writes, read by ``np.load``
    (allow_pickle=False), ~3x faster than ``np.savez`` on a BytesIO and with a fixed member
    timestamp, so the same arrays always give the same bytes. Object arrays and members too
    large for a plain ZIP fall back to ``np.savez``.
    """
    local, central, offset = [], [], 0
    for name, value in arrays.items():
        arr = np.asarray(value)
        if not arr.flags.c_contiguous:  # (ascontiguousarray would make a 0-d array 1-d)
            arr = np.ascontiguousarray(arr)
        head = None if arr.dtype.hasobject else _npy_header(arr)
        if head is None or arr.nbytes + len(head) >= 0xFFFFFFFF or offset >= 0xFFFFFFFF:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            return buf.getvalue()
        data = arr.reshape(-1).view(np.uint8)
        fname = (name + ".npy").encode("utf-8")
        flags = 0 if fname.isascii() else 0x800  # bit 11: UTF-8 name
        crc = zlib.crc32(data, zlib.crc32(head))
        size = len(head) + arr.nbytes
        fields = (20, flags, 0, 0, _ZIP_DATE, crc, size, size, len(fname))
        local += [struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0), fname, head, data]
        central += [struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, *fields, 0, 0, 0, 0, 0o644 << 16, offset), fname]
        offset += 30 + len(fname) + size
    cd = b"".join(central)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(arrays), len(arrays), len(cd), offset, 0)
    return b"".join([*local, cd, end])


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
