"""Stamp format 3 (dataset.stamp_v3): RICE_1-coded integers, bit for bit what format 2 gives.

References: format 2's decoder (itself checked against astropy's decompression of the real DR6
files in test_fits_quant.py) and astropy's own decompression of files it writes here; every
pixel must come back with the same float32 bits, and the number of raw pixels is bounded so a
wrong integer recovery cannot hide behind the raw fallback.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from astropy.io import fits
from test_fits_quant import DR6, _bits_equal, _dr6_stamp, _windows

from darkhaloscope.dataset.fits_quant import QuantGrid
from darkhaloscope.dataset.stamp import decode_image, decode_stamp, decode_stamp_grids, encode_stamp
from darkhaloscope.dataset.stamp_v3 import MAGIC, _Sections, is_format3
from darkhaloscope.survey.decoded import file_quant


def _same_arrays(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
                                    and np.array_equal(a[k].view(np.uint8), b[k].view(np.uint8)) for k in a)


def _rice_bytes_per_pixel(blob: bytes) -> dict[str, float]:
    """Bytes of the RICE_1 integer streams per pixel, per plane."""
    sec = _Sections(blob)
    nb, s0, s1 = sec.dims
    out = {}
    for name in ("image", "invvar"):
        sec.next(name)
        out[name] = sum(len(sec.next(name)) for _ in range(nb)) / (nb * s0 * s1)
        sec.next(name), sec.next(name)
    return out


def _raw_counts(blob: bytes) -> dict[str, int]:
    """Raw pixels per plane, read from the format-3 sections."""
    sec = _Sections(blob)
    nb, s0, s1 = sec.dims
    out = {}
    for name in ("image", "invvar"):
        for _ in range(nb + 2):
            sec.next(name)
        out[name] = int(np.unpackbits(np.frombuffer(sec.next(name), np.uint8).reshape(nb, -1), axis=1)[:, : s0 * s1].sum())
    return out


def _grids_equal(a, b) -> bool:
    for k in ("image", "invvar"):
        for p, q in zip(a[k], b[k], strict=True):
            if (p is None) != (q is None):
                return False
            if p is not None and not (p.method == q.method and p.dither0 == q.dither0 and p.tile == q.tile and p.shape == q.shape
                                      and p.origin == q.origin and p.tile0 == q.tile0 and np.array_equal(p.scale, q.scale)
                                      and np.array_equal(p.zero, q.zero)):
                return False
    return True


def _dr6_stamps(n: int):
    """n real two-band stamps of the DR6 brick: image/invvar float32 [2, 64, 64] and grids. The
    brick's z coverage is 0.2 % of it, so each band is a different g window (its own tiles)."""
    data, quant = {}, {}
    for kind in ("image", "invvar"):
        with fits.open(DR6 / f"legacysurvey-0959p805-{kind}-g.fits.fz") as hdul:
            data[kind] = hdul[1].data.astype(np.float32)
            quant[kind] = file_quant(hdul[1])
    windows = list(_windows(data["image"] * data["invvar"], 2 * n, seed=11))  # observed: invvar > 0
    for pair in zip(windows[0::2], windows[1::2], strict=True):
        arrays = {k: np.ascontiguousarray(np.stack([data[k][y : y + 64, x : x + 64] for y, x in pair])) for k in data}
        grids = {k: [quant[k].window(y, x, 64) for y, x in pair] for k in data}
        yield arrays["image"], arrays["invvar"], grids


def test_real_dr6_stamps_decode_as_format_2_with_fewer_bytes():
    """Six real two-band stamps, hosts and injections: format 3 decodes to format 2's arrays bit for
    bit, no pixel raw, same grids, under 0.9 byte per pixel for the integers, and fewer bytes
    than format 2 after gzip."""
    yy, xx = np.mgrid[0:64, 0:64]
    arc = (0.03 * np.exp(-((np.hypot(yy - 32, xx - 32) - 9) ** 2) / 3.0)).astype(np.float32)
    n, v2_bytes, v3_bytes = 0, 0, 0
    for image, invvar, grids in _dr6_stamps(6):
        mb = np.zeros((64, 64), np.int32)
        mb[40:44, 10:30] = 2**1 | 2**16
        for values, host in ((image, None), (image + arc[None], image)):
            b3 = encode_stamp(values, invvar, mb, grids=grids, host_image=host)
            b2 = encode_stamp(values, invvar, mb, grids=grids, host_image=host, stamp_format=2)
            assert is_format3(b3) and not is_format3(b2)
            out = decode_stamp(b3)
            assert _same_arrays(out, decode_stamp(b2))
            assert _bits_equal(out["image"], values) and _bits_equal(out["invvar"], invvar) and np.array_equal(out["maskbits"], mb)
            assert _raw_counts(b3) == {"image": 0, "invvar": 0}
            assert _grids_equal(decode_stamp_grids(b3), decode_stamp_grids(b2)) and _grids_equal(decode_stamp_grids(b3), grids)
            assert _bits_equal(decode_image(b3), values)
            # measured 0.86 (image) and 0.78-0.83 (invvar) byte per pixel; format 2 after gzip 6: ~0.95
            assert max(_rice_bytes_per_pixel(b3).values()) < 0.9
            v2_bytes += len(zlib.compress(b2, 1))
            v3_bytes += len(zlib.compress(b3, 1))
        n += 1
    assert n == 6
    assert v3_bytes < v2_bytes, (v3_bytes, v2_bytes)


def test_edge_pixels_round_trip_and_only_they_go_raw():
    """NaN, +-inf, -0.0 in an injection, zero invvar, a band without a grid (stitched), all exact."""
    image, invvar, grids = _dr6_stamp()
    image3, invvar3 = np.concatenate([image] * 3), np.concatenate([invvar] * 3)
    grids3 = {"image": [grids["image"][0], None, grids["image"][0]], "invvar": grids["invvar"] * 3}
    injected = image3 + np.float32(0.01)
    injected[0, 3, 4], injected[0, 5, 6], injected[2, 7, 8] = np.nan, -np.inf, -0.0
    invvar3[2, 0, :5] = 0.0  # masked pixels: invvar 0 is off the tile's grid here, stored raw
    blob = encode_stamp(injected, invvar3, np.zeros((64, 64), np.int32), grids=grids3, host_image=image3)
    out = decode_stamp(blob)
    assert _bits_equal(out["image"], injected) and _bits_equal(out["invvar"], invvar3)
    raw = _raw_counts(blob)
    assert raw["image"] == 3 + 4096  # the three odd pixels and the whole band without a grid
    assert raw["invvar"] <= 5
    no_grids = encode_stamp(injected, invvar3, np.zeros((64, 64), np.int32))  # stitched stamp: no grids at all
    assert _raw_counts(no_grids) == {"image": 3 * 4096, "invvar": 3 * 4096}
    assert _same_arrays(decode_stamp(no_grids), {"image": injected, "invvar": invvar3, "maskbits": np.zeros((64, 64), np.int32)})


def test_dither_2_zeros_astropy_writes_are_raw_and_exact(tmp_path):
    """SUBTRACTIVE_DITHER_2 keeps exact zeros as zeros (FITS 4.0 section 10.2.2): not on the grid."""
    rng = np.random.default_rng(4)
    data = rng.normal(0.0, 0.01, (100, 100)).astype(np.float32)
    data[10:12, :] = 0.0
    path = tmp_path / "d2.fits.fz"
    hdu = fits.CompImageHDU(data, compression_type="RICE_1", tile_shape=(100, 100), quantize_level=-1e-4,
                            quantize_method=2, dither_seed=5)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with fits.open(path) as hdul:
        back, fq = hdul[1].data.astype(np.float32), file_quant(hdul[1])
    assert fq.method == 2
    host = np.ascontiguousarray(back[None, 0:64, 0:64])
    blob = encode_stamp(host, np.ones_like(host), np.zeros((64, 64), np.int32), grids={"image": [fq.window(0, 0, 64)]})
    assert _bits_equal(decode_stamp(blob)["image"], host)
    assert _raw_counts(blob)["image"] == 2 * 64  # the two zero rows, nothing else


def test_integers_at_the_ends_of_int32_and_any_maskbits_come_back():
    """NO_DITHER with ZSCALE 1, ZZERO 0: the integers are the floats; neighbours jump by ~2^32."""
    ends = np.array([-(2**31), 2**31 - 256, 0, -256], np.float32)  # exact in float32
    values = ends[np.random.default_rng(7).integers(0, 4, (2, 64, 64))].astype(np.float32)
    grid = QuantGrid(0, 1, (64, 64), (64, 64), (0, 0), (0, 0), np.ones((1, 1)), np.zeros((1, 1)))
    mb = np.random.default_rng(8).integers(-(2**31), 2**31, (64, 64)).astype(np.int32)
    blob = encode_stamp(values, values, mb, grids={"image": [grid, grid], "invvar": [grid, grid]})
    out = decode_stamp(blob)
    assert _bits_equal(out["image"], values) and _bits_equal(out["invvar"], values) and np.array_equal(out["maskbits"], mb)
    assert _raw_counts(blob) == {"image": 0, "invvar": 0}


def test_bytes_are_deterministic_and_length_does_not_tell_the_role():
    image, invvar, grids = next(_dr6_stamps(1))
    mb = np.zeros((64, 64), np.int32)
    arc = np.zeros_like(image)
    arc[:, 28:36, 20:44] = np.float32(0.02)
    control = encode_stamp(image, invvar, mb, grids=grids)
    injection = encode_stamp(image + arc, invvar, mb, grids=grids, host_image=image)
    assert control == encode_stamp(image.copy(), invvar.copy(), mb, grids=grids)
    assert len(control) == len(injection) and control != injection
    masked = mb.copy()
    masked[20:40, 10:50] = 2**1 | 2**16  # a mask on the injection alone changes no length either
    assert len(encode_stamp(image + arc, invvar, masked, grids=grids, host_image=image)) == len(control)


def test_corrupt_blobs_are_named_errors():
    image, invvar, grids = _dr6_stamp()
    blob = encode_stamp(image, invvar, np.zeros((64, 64), np.int32), grids=grids)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x40
    with pytest.raises(ValueError, match="CRC"):
        decode_stamp(bytes(flipped))
    with pytest.raises(ValueError, match="CRC"):
        decode_stamp(blob[:-100])
    with pytest.raises(ValueError, match="format-3"):
        decode_stamp(MAGIC + b"\x00")

    def resealed(body: bytes) -> bytes:  # a well-formed CRC over bad content
        return body + struct.pack("<I", zlib.crc32(body))

    body = blob[:-4]
    with pytest.raises(ValueError, match="after the last section"):
        decode_stamp(resealed(body + b"\x00"))
    with pytest.raises(ValueError, match="runs past the end|missing"):
        decode_stamp(resealed(body[:-3]))
    sec = _Sections(blob)
    grid_start = sec.pos + 4
    vec = np.frombuffer(sec.next("grid"), "<f8").copy()
    vec[2 + 6] = 4000.0  # the stamp's origin moved outside the tiles it carries
    bad = body[:grid_start] + vec.tobytes() + body[grid_start + vec.nbytes :]
    with pytest.raises(ValueError, match="grid does not describe"):
        decode_stamp(resealed(bad))


@pytest.mark.parametrize("bad_band", [0, 1])
def test_a_corrupt_band_stream_is_named_when_bands_decode_in_pairs(bad_band):
    """Bands are RICE-decoded two at a time (v3_kernels.decode_plane_kernel); a corrupt stream in
    either band of the pair must still be reported as that band."""
    image, invvar, grids = next(_dr6_stamps(1))  # two bands: one pair
    blob = encode_stamp(image, invvar, np.zeros((64, 64), np.int32), grids=grids)
    sec = _Sections(blob)
    nb = sec.dims[0]
    assert nb == 2
    for name in ("image grid", *(f"band {b}" for b in range(nb)), "addends", "raw bits", "invvar grid", *(f"band {b}" for b in range(nb))):
        sec.next(name)
    start, stop = sec.spans[nb + 4 + bad_band]  # the invvar plane's band streams follow its grid
    body = bytearray(blob[:-4])
    body[start + 4 : stop] = b"\xff" * (stop - start - 4)  # after the first pixel, split code 31: impossible
    with pytest.raises(ValueError, match=f"RICE_1 stream of invvar band {bad_band} does not decode"):
        decode_stamp(bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))))
