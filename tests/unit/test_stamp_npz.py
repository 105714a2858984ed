"""The hand-built NPZ writer (dataset.stamp.encode_npz) against numpy's own np.savez / np.load."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from darkhaloscope.dataset.stamp import decode_npz, encode_npz


def _savez(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _cases():
    rng = np.random.default_rng(4)
    yield {"image": rng.normal(size=(3, 64, 64)).astype(np.float32), "invvar": rng.uniform(size=(3, 64, 64)).astype(np.float32),
           "maskbits": rng.integers(0, 2**13, (64, 64)).astype(np.int32)}
    yield {"arc": rng.normal(size=(3, 17, 17)).astype(np.float32)}
    yield {
        "f64_fortran": np.asfortranarray(rng.normal(size=(5, 7))), "strided": rng.normal(size=(6, 8))[::2, 1::3],
        "scalar": np.array(3.5), "empty": np.zeros((0, 4), np.int16), "big_endian": np.arange(10, dtype=">i4"),
        "bools": rng.integers(0, 2, 9).astype(bool), "text": np.array(["a", "bcd"]),
        "record": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]), "názov": np.arange(3, dtype=np.uint8),
    }


@pytest.mark.parametrize("arrays", list(_cases()))
def test_fast_npz_equals_savez_arrays(arrays):
    blob = encode_npz(**arrays)
    ours = decode_npz(blob)  # np.load with allow_pickle=False
    ref = decode_npz(_savez(**arrays))
    assert list(ours) == list(ref) == list(arrays)
    for k in arrays:
        assert ours[k].dtype == ref[k].dtype and ours[k].shape == ref[k].shape, k
        assert np.array_equal(ours[k], ref[k]), k
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.testzip() is None  # every member's CRC-32 is right
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        assert zf.namelist() == [f"{k}.npy" for k in arrays]
    with np.load(io.BytesIO(blob), allow_pickle=False, mmap_mode=None) as npz:
        assert npz.files == list(arrays)


def test_fast_npz_member_bytes_equal_np_save_and_are_deterministic():
    rng = np.random.default_rng(9)
    a = rng.normal(size=(3, 64, 64)).astype(np.float32)
    m = rng.integers(0, 99, (64, 64)).astype(np.int32)
    blob = encode_npz(a=a, m=m)
    assert blob == encode_npz(a=a.copy(), m=m.copy())  # no timestamp or other state in the bytes
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for name, arr in (("a", a), ("m", m)):
            buf = io.BytesIO()
            np.save(buf, arr)
            assert zf.read(f"{name}.npy") == buf.getvalue()
    # the ZIP container is the same size as np.savez's (which adds ZIP64 extra fields)
    assert abs(len(blob) - len(_savez(a=a, m=m))) < 200


def test_object_arrays_fall_back_to_savez_and_are_refused_on_decode():
    from darkhaloscope.errors import SecurityError

    blob = encode_npz(x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(SecurityError):
        decode_npz(blob)
