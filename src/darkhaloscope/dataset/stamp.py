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


def _load_members(blob: bytes, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Members ``names`` (all when None) of an NPZ blob via ``np.load(allow_pickle=False)``."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return {k: npz[k] for k in (names if names is not None else npz.files)}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise SecurityError("refusing an NPZ blob that holds pickled objects", reason=str(exc)) from None
        raise


def decode_npz(blob: bytes) -> dict[str, np.ndarray]:
    """Arrays of an NPZ blob. Pickled objects are refused (``allow_pickle=False``)."""
    return _load_members(blob)


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


# -- fast read of the image member (training's hot path) ------------------------------------
_EOCD = struct.Struct("<IHHHHIIH")  # ZIP end of central directory, 22 bytes
_CDIR = struct.Struct("<IHHHHHHIIIHHHHHII")  # ZIP central directory entry, 46 bytes
_IMAGE_MEMBER = b"image.npy"
_NPY_LAYOUTS: dict[bytes, tuple[np.dtype, tuple[int, ...], int] | None] = {}


def _npy_layout(header: bytes) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """(dtype, shape, nbytes) of an NPY 1.0 header (magic included), parsed by numpy once per
    distinct header; None for anything the fast path does not take (object or structured
    dtypes, Fortran order, malformed): those go through ``np.load``."""
    if header in _NPY_LAYOUTS:
        return _NPY_LAYOUTS[header]
    layout = None
    try:
        fp = io.BytesIO(header)
        if np.lib.format.read_magic(fp) == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            if not fortran and dtype.kind in "biuf" and dtype.fields is None and dtype.subdtype is None:
                layout = (dtype, tuple(shape), int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    except (ValueError, OSError):
        layout = None
    if len(_NPY_LAYOUTS) > 64:
        _NPY_LAYOUTS.clear()
    _NPY_LAYOUTS[header] = layout
    return layout


def _image_view(blob: bytes) -> np.ndarray | None:
    """Read-only view of the ``image`` member of an uncompressed NPZ, or None to defer to np.load.

    Follows the ZIP central directory as ``zipfile`` does (the last ``image.npy`` entry wins),
    requires a stored (uncompressed, unencrypted, non-ZIP64) member whose NPY 1.0 header has a
    plain numeric dtype, and checks the member's CRC-32, so it returns exactly what
    ``np.load(...)["image"]`` returns or nothing. Dropping ``np.load``'s ZipFile + header
    parsing takes the decode from ~170 us to ~15 us per 64x64x3 stamp.
    """
    mv = memoryview(blob)
    n = len(mv)
    if n < _EOCD.size:
        return None
    sig, disk, cd_disk, n_disk, n_total, cd_size, cd_off, comment = _EOCD.unpack_from(mv, n - _EOCD.size)
    if sig != 0x06054B50 or disk or cd_disk or comment or n_disk != n_total or cd_off + cd_size != n - _EOCD.size:
        return None
    entry, pos = None, cd_off
    for _ in range(n_total):
        if pos + _CDIR.size > cd_off + cd_size:
            return None
        f = _CDIR.unpack_from(mv, pos)
        if f[0] != 0x02014B50:
            return None
        name = bytes(mv[pos + 46 : pos + 46 + f[10]])
        if name == b"image":  # np.load would read a member called plainly "image" first
            return None
        if name == _IMAGE_MEMBER:
            entry = f
        pos += 46 + f[10] + f[11] + f[12]
    if entry is None:
        return None
    flags, method, crc, csize, usize, offset = entry[3], entry[4], entry[7], entry[8], entry[9], entry[16]
    if flags & 0x1 or method != 0 or csize != usize or 0xFFFFFFFF in (csize, usize, offset):
        return None
    if offset + 30 > n or bytes(mv[offset : offset + 4]) != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack_from("<HH", mv, offset + 26)
    start = offset + 30 + name_len + extra_len
    if bytes(mv[offset + 30 : offset + 30 + name_len]) != _IMAGE_MEMBER or start + usize > n or usize < 10:
        return None
    if bytes(mv[start : start + 8]) != b"\x93NUMPY\x01\x00":
        return None
    data = start + 10 + struct.unpack_from("<H", mv, start + 8)[0]
    layout = _npy_layout(bytes(mv[start:data])) if data <= start + usize else None
    if layout is None or data - start + layout[2] != usize:
        return None
    if zlib.crc32(mv[start : start + usize]) != crc:
        return None  # np.load raises its own error for a corrupt member
    dtype, shape, nbytes = layout
    return np.frombuffer(blob, dtype=dtype, count=nbytes // dtype.itemsize, offset=data).reshape(shape)


def _decode_image_np_load(blob: bytes) -> np.ndarray:
    """The reference path: ``np.load`` with ``allow_pickle=False``; pickles -> SecurityError."""
    return _load_members(blob, ("image",))["image"]


def decode_image_readonly(blob: bytes) -> np.ndarray:
    """The image array, possibly a read-only view on ``blob`` (the batch stacks it anyway)."""
    view = _image_view(blob)
    return view if view is not None else _decode_image_np_load(blob)


def decode_image(blob: bytes) -> np.ndarray:
    """The ``image`` array (float32 [B, S, S] nanomaggies) of a ``stamp_npz`` blob.

    Reads only the image member of the NPZ (half the cost of decoding invvar and maskbits too,
    which training does not use). Blobs as ``dataset.stamp`` writes them take a direct path
    (:func:`_image_view`, validated against the ZIP directory, NPY header and CRC); anything
    else goes through ``np.load(allow_pickle=False)``, and pickles are refused exactly as in
    ``dataset.stamp`` (SecurityError).
    """
    view = _image_view(blob)
    return view.copy() if view is not None else _decode_image_np_load(blob)
