"""Rows of a host blob (dataset.stamp_splice) and the compiled format-3 decode (dataset.v3_kernels).

Reference: the full encode (``encode_stamp``, format 3) of the same arrays, byte for byte, and
astropy's cfitsio RICE_1 codec for the streams. Hosts are real DR6 stamps (shared/data) and
hand-made edge cases (NaN, inf, -0.0, zero invvar, a band without grid, DITHER_2 zeros); every
case that should splice is checked to splice (not to fall back), so a fallback cannot hide a
wrong splice.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.hdu.compressed._codecs import compress_rice_1_c
from test_fits_quant import _bits_equal, _dr6_stamp
from test_stamp_v3 import _dr6_stamps, _raw_counts

from darkhaloscope.dataset.rows import encode_row
from darkhaloscope.dataset.stamp import decode_stamp, encode_stamp
from darkhaloscope.dataset.stamp_splice import decode_host_stamp, reuse_host_blob
from darkhaloscope.dataset.stamp_v3 import _Sections
from darkhaloscope.survey.decoded import file_quant
from darkhaloscope.survey.rice_box import rice_ints


def _host(image, invvar, mb, grids, quantised=True):
    """The decoded host blob, as stage writes it and generate --hosts reads it."""
    host = decode_host_stamp(encode_stamp(image, invvar, mb, grids=grids), quantised)
    assert host is not None and _bits_equal(host.image, image) and _bits_equal(host.invvar, invvar)
    return host


def _painted(host, values, maskbits=None) -> dict:
    return {"image": values, "invvar": host.invvar, "maskbits": host.maskbits if maskbits is None else maskbits,
            "grids": host.grids, "host_image": host.image}


def _full(row) -> bytes:
    return encode_stamp(row["image"], row["invvar"], row["maskbits"], grids=row["grids"], host_image=row["host_image"])


def _check_spliced(host, row) -> bytes:
    spliced = reuse_host_blob(row, host)
    assert spliced is not None, "expected the splice, got the fallback"
    assert spliced == _full(row)
    out = decode_stamp(spliced)
    assert _bits_equal(out["image"], row["image"]) and np.array_equal(out["maskbits"], row["maskbits"])
    return spliced


def _arc(nb: int, amp: float = 0.03) -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:64]
    ring = (amp * np.exp(-((np.hypot(yy - 32, xx - 30) - 9) ** 2) / 3.0)).astype(np.float32)
    return np.stack([ring * (b + 1) for b in range(nb)])


def test_painted_real_stamps_splice_to_the_full_encode():
    """Six real two-band DR6 hosts: arc + noise painted, with the host's and with new maskbits;
    a control gives the host blob itself; all equal the full encode."""
    rng = np.random.default_rng(3)
    n = 0
    for image, invvar, grids in _dr6_stamps(6):
        mb = np.zeros((64, 64), np.int32)
        mb[40:44, 10:30] = 2**1
        host = _host(image, invvar, mb, grids)
        control = {"image": host.image, "invvar": host.invvar, "maskbits": host.maskbits, "grids": host.grids, "host_image": None}
        assert reuse_host_blob(control, host) == host.blob == _full(control)
        arc = _arc(2)
        noisy = (host.image + arc + rng.normal(0, 0.002, arc.shape) * (arc > 0.001)).astype(np.float32)
        _check_spliced(host, _painted(host, noisy))
        star = host.maskbits.copy()
        star[20:30, 20:30] |= 2**16
        _check_spliced(host, _painted(host, noisy, star))
        n += 1
    assert n == 6


def test_edge_pixels_splice_exactly():
    """NaN, +-inf, -0.0 painted; NaN, zero invvar and a band without grid in the host."""
    image, invvar, grids = _dr6_stamp()
    image3, invvar3 = np.concatenate([image] * 3), np.concatenate([invvar] * 3)
    image3[0, 10, 10] = np.nan  # a host pixel off the grid (band 0 has one)
    invvar3[2, 0, :5] = 0.0
    grids3 = {"image": [grids["image"][0], None, grids["image"][0]], "invvar": grids["invvar"] * 3}
    host = _host(image3, invvar3, np.zeros((64, 64), np.int32), grids3)
    values = host.image + _arc(3)
    values[0, 3, 4], values[0, 5, 6], values[2, 7, 8], values[1, 9, 9] = np.nan, -np.inf, -0.0, np.inf
    values[2, 30, 30] = np.float32(3e38)  # far off the grid: raw
    _check_spliced(host, _painted(host, values))
    # a band whose grid gives no host pixel back is turned raw by the encoder (its grid kept)
    shifted = replace(grids["image"][0], zero=grids["image"][0].zero + 1000.0)
    turned = _host(image, invvar, np.zeros((64, 64), np.int32), {"image": [shifted], "invvar": grids["invvar"]})
    assert _raw_counts(turned.blob)["image"] == 4096
    _check_spliced(turned, _painted(turned, turned.image + _arc(1)))
    nogrid = _host(image3, invvar3, np.zeros((64, 64), np.int32), None, quantised=False)  # stitched: stored raw
    _check_spliced(nogrid, _painted(nogrid, nogrid.image + _arc(3)))


def test_dither_2_zero_hosts_splice_exactly(tmp_path):
    """SUBTRACTIVE_DITHER_2 zeros are raw in the host (+0.0): painted over, the splice stays exact."""
    rng = np.random.default_rng(4)
    data = rng.normal(0.0, 0.01, (100, 100)).astype(np.float32)
    data[10:12, :] = 0.0
    path = tmp_path / "d2.fits.fz"
    hdu = fits.CompImageHDU(data, compression_type="RICE_1", tile_shape=(100, 100), quantize_level=-1e-4, quantize_method=2, dither_seed=5)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with fits.open(path) as hdul:
        back, fq = hdul[1].data.astype(np.float32), file_quant(hdul[1])
    image = np.ascontiguousarray(back[None, 0:64, 0:64])
    host = _host(image, np.ones_like(image), np.zeros((64, 64), np.int32), {"image": [fq.window(0, 0, 64)], "invvar": [None]})
    assert (host.image[0, 10:12] == 0.0).all() and _raw_counts(host.blob)["image"] >= 2 * 64  # the zeros are raw in the host
    row = _painted(host, host.image + _arc(1))
    assert _check_spliced(host, row) == _full(row)


def test_falls_back_when_a_precondition_fails():
    """Anything the splice cannot vouch for gives None (encode_row then encodes in full)."""
    image, invvar, grids = _dr6_stamp()
    mb = np.zeros((64, 64), np.int32)
    host = _host(image, invvar, mb, grids)
    values = host.image + _arc(1)
    row = _painted(host, values)
    for change in ({"invvar": host.invvar.copy()}, {"grids": dict(host.grids)}, {"host_image": host.image.copy()},
                   {"maskbits": np.zeros((32, 32), np.int32)}, {"image": values.astype(np.float64)}):
        assert reuse_host_blob({**row, **change}, host) is None, change
    # a blob with grids read as not quantised: the full encode stores the bands raw
    unq = decode_host_stamp(host.blob, quantised=False)
    assert reuse_host_blob(_painted(unq, unq.image + _arc(1)), unq) is None
    # a painted blob used as a host (its kept pixels have addends): not a bare host
    painted = decode_host_stamp(_full(row), quantised=True)
    assert reuse_host_blob(_painted(painted, painted.image + _arc(1)), painted) is None
    # a -0.0 host pixel is raw for two possible reasons: only a full encode can tell
    signed = image.copy()
    signed[0, 1, 1] = -0.0
    neg = _host(signed, invvar, mb, grids)
    assert reuse_host_blob(_painted(neg, neg.image + _arc(1)), neg) is None
    # format 2 host blobs are not spliced
    assert decode_host_stamp(encode_stamp(image, invvar, mb, grids=grids, stamp_format=2), True) is None


def test_encode_row_gives_the_same_bytes_with_and_without_the_host():
    image, invvar, grids = _dr6_stamp()
    host = _host(image, invvar, np.zeros((64, 64), np.int32), grids)
    for row in (_painted(host, host.image + _arc(1)), {**_painted(host, host.image), "host_image": None},
                {**_painted(host, host.image + _arc(1)), "invvar": host.invvar * np.float32(2)}):
        assert encode_row({**row, "host_stamp": host}, False)["stamp_npz"] == encode_row(row, False)["stamp_npz"]


def _resealed(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_corrupt_rice_streams_are_named_errors():
    """A stream whose bits run out, or one cut short, with a valid CRC: ValueError naming plane and band."""
    image, invvar, grids = _dr6_stamp()
    blob = encode_stamp(image, invvar, np.zeros((64, 64), np.int32), grids=grids)
    sec = _Sections(blob)
    sec.next("grid")
    stream = sec.next("band 0")
    start, stop = sec.spans[-1]
    cut = blob[: start - 4] + struct.pack("<I", 40) + blob[start : start + 40] + blob[stop:-4]
    with pytest.raises(ValueError, match="RICE_1 stream of image band 0"):
        decode_stamp(_resealed(cut))
    zeros = bytearray(blob[:-4])
    zeros[start + 4 : stop] = b"\xff" * (len(stream) - 4)  # split codes 31: impossible
    with pytest.raises(ValueError, match="RICE_1 stream of image band 0"):
        decode_stamp(_resealed(bytes(zeros)))


def test_rice_reader_decodes_format_3_streams_as_astropy_codes_them():
    """The survey's compiled reader on cfitsio RICE_1 streams (block 32, 4 bytes) of integers
    with all-zero blocks, raw (fs = 25) blocks and int32's ends: the integers come back."""
    rng = np.random.default_rng(9)
    seq = np.cumsum(rng.integers(-40, 40, 4096)).astype(np.int32)
    seq[64:128] = seq[63]  # zero differences: fs + 1 = 0 blocks
    seq[200:232] = rng.integers(-(2**31), 2**31, 32, dtype=np.int64).astype(np.int32)  # raw blocks
    seq[300], seq[301] = -(2**31), 2**31 - 1
    for n in (4096, 33, 1):
        data = compress_rice_1_c(seq[:n].tobytes(), 32, 4)
        buf = np.zeros(len(data) + 16, np.uint8)
        buf[: len(data)] = np.frombuffer(data, np.uint8)
        out = np.empty(n, np.int32)
        assert rice_ints(buf, 0, len(data), n, 32, out) == 0
        assert np.array_equal(out, seq[:n])
