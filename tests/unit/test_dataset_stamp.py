"""Stamp encoding: lossless NPZ round trip, fixed dtypes, pickles refused."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from darkhaloscope.dataset.stamp import (
    decode_arc,
    decode_npz,
    decode_stamp,
    encode_arc,
    encode_stamp,
)
from darkhaloscope.errors import SecurityError


def _arrays(seed=0, size=64):
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 0.01, (3, size, size))  # float64 on purpose: stored as float32
    invvar = rng.uniform(1e3, 1e4, (3, size, size)).astype(np.float32)
    maskbits = rng.integers(0, 2**13, (size, size)).astype(np.int64)
    return image, invvar, maskbits


def test_stamp_round_trip_is_lossless_in_float32():
    image, invvar, maskbits = _arrays()
    out = decode_stamp(encode_stamp(image, invvar, maskbits))
    assert set(out) == {"image", "invvar", "maskbits"}
    assert out["image"].dtype == np.float32 and out["image"].shape == (3, 64, 64)
    assert out["invvar"].dtype == np.float32
    assert out["maskbits"].dtype == np.int32 and out["maskbits"].shape == (64, 64)
    np.testing.assert_array_equal(out["image"], image.astype(np.float32))
    np.testing.assert_array_equal(out["invvar"], invvar)
    np.testing.assert_array_equal(out["maskbits"], maskbits.astype(np.int32))


def test_format_2_stamp_bytes_are_deterministic_and_uncompressed():
    """Format 2 (still written on request, and read): an NPZ of stored members."""
    image, invvar, maskbits = _arrays(1)
    blob = encode_stamp(image, invvar, maskbits, stamp_format=2)
    assert blob == encode_stamp(image, invvar, maskbits, stamp_format=2)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        payload = sum(len(zf.read(i)) for i in zf.infolist())
    # stored members only: the blob is the members plus NPY/zip headers
    assert payload < len(blob) < payload + 2_500


def test_arc_round_trip():
    arc = np.random.default_rng(2).exponential(0.1, (3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(decode_arc(encode_arc(arc)), arc)


def test_pickled_npz_is_refused():
    buf = io.BytesIO()
    np.savez(buf, image=np.array([{"evil": 1}], dtype=object))  # object arrays are pickled
    with pytest.raises(SecurityError, match="pickle"):
        decode_stamp(buf.getvalue())


def test_garbage_blob_is_an_error_not_a_crash():
    with pytest.raises((ValueError, OSError)):
        decode_npz(b"not an npz at all")
