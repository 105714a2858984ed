"""Stamp format 2 (dataset.fits_quant + dataset.stamp): pixels stored as the integers of the
file's fpack quantisation. Reference: astropy's own decompression of the same files (cfitsio's
algorithm): our integers + dither must give back its float32 pixels bit for bit. The codec
falls back to raw floats for any pixel that does not, so every test also bounds how many
pixels went raw: a wrong dither sequence would pass the round trip but fail that bound.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from darkhaloscope.dataset.fits_quant import RANDOMS
from darkhaloscope.dataset.stamp import (
    decode_plane,
    decode_stamp,
    encode_npz,
    encode_plane,
    encode_stamp,
)
from darkhaloscope.survey.brick_reader import BrickReader
from darkhaloscope.survey.decoded import file_quant

# the real data folder as tests/conftest.py finds it (DARKHALOSCOPE_SHARED_DATA, else ../shared/data)
_SHARED = Path(os.environ.get("DARKHALOSCOPE_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
DR6 = _SHARED / "desitarget_dr6_coadd_brick" / "coadd" / "095" / "0959p805"


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(a.view(np.int32), b.view(np.int32))


def _raw_fraction(members) -> float:
    nb, s0, s1 = members["q"].shape[1:]
    return float(np.unpackbits(members["raw"], axis=1)[:, : s0 * s1].sum()) / (nb * s0 * s1)


def test_fits_random_sequence_is_the_standards():
    assert RANDOMS[0] == np.float32(16807.0 / 2147483647.0)
    assert RANDOMS.shape == (10000,) and 0 < RANDOMS.min() and RANDOMS.max() < 1


def _windows(data: np.ndarray, n: int, size: int = 64, seed: int = 0):
    """n stamp origins (row, col) whose pixels are all non-zero (DR6: most of the brick is empty)."""
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(200 * n):
        y, x = (int(v) for v in rng.integers(0, np.array(data.shape) - size))
        if (data[y : y + size, x : x + size] != 0).all():
            found += 1
            yield y, x
            if found == n:
                return


@pytest.mark.parametrize("kind", ["image-g", "invvar-g"])
def test_real_dr6_pixels_come_back_bit_for_bit_from_their_integers(kind):
    """Real Legacy Surveys fpack files (RICE_1, SUBTRACTIVE_DITHER_2, 100x100 tiles)."""
    path = DR6 / f"legacysurvey-0959p805-{kind}.fits.fz"
    with fits.open(path) as hdul:
        hdu = hdul[1]
        data = hdu.data.astype(np.float32)
        fq = file_quant(hdu)
    assert fq is not None and fq.method == 2 and fq.tile == (100, 100)
    windows = list(_windows(data, 6))
    assert len(windows) == 6
    plain, packed = 0, 0
    for y, x in windows:
        host = np.ascontiguousarray(data[None, y : y + 64, x : x + 64])
        members = encode_plane(host, None, [fq.window(y, x, 64)])
        assert _raw_fraction(members) == 0.0  # every pixel is on the file's grid
        assert _bits_equal(decode_plane(members), host)
        plain += len(zlib.compress(host.tobytes(), 6))
        packed += len(zlib.compress(encode_npz(**members), 6))
    # measured: image 15.1 -> 3.9 KB per band, invvar 12.7 -> 3.2 KB; bound with margin
    assert packed < 0.4 * plain, (packed, plain)


@pytest.mark.parametrize(("tile", "method", "q"), [((1, 300), 1, 16.0), ((37, 50), 1, -1e-4), ((64, 64), 0, 8.0)])
def test_astropy_written_files_round_trip_for_other_tilings_and_methods(tmp_path, tile, method, q):
    """Row tiles (fpack's default), tiles that do not divide the image, NO_DITHER."""
    rng = np.random.default_rng(3)
    data = (rng.normal(0, 0.01, (200, 300)) + np.linspace(0, 0.05, 300)).astype(np.float32)
    path = tmp_path / "x.fits.fz"
    hdu = fits.CompImageHDU(data, compression_type="RICE_1", tile_shape=tile, quantize_level=q, quantize_method=method, dither_seed=77)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with fits.open(path) as hdul:
        back = hdul[1].data.astype(np.float32)
        fq = file_quant(hdul[1])
    assert fq.method == method and fq.tile == tile
    for y, x in [(0, 0), (136, 236), (17, 101)]:
        host = np.ascontiguousarray(back[None, y : y + 64, x : x + 64])
        members = encode_plane(host, None, [fq.window(y, x, 64)])
        assert _raw_fraction(members) == 0.0
        assert _bits_equal(decode_plane(members), host)


def _dr6_stamp():
    data = {k: fits.getdata(DR6 / f"legacysurvey-0959p805-{k}.fits.fz").astype(np.float32) for k in ("image-g", "invvar-g")}
    with fits.open(DR6 / "legacysurvey-0959p805-image-g.fits.fz") as h1, fits.open(DR6 / "legacysurvey-0959p805-invvar-g.fits.fz") as h2:
        qi, qv = file_quant(h1[1]), file_quant(h2[1])
    y, x = next(_windows(data["image-g"], 1, seed=5))
    image = np.ascontiguousarray(data["image-g"][None, y : y + 64, x : x + 64])
    invvar = np.ascontiguousarray(data["invvar-g"][None, y : y + 64, x : x + 64])
    return image, invvar, {"image": [qi.window(y, x, 64)], "invvar": [qv.window(y, x, 64)]}


def test_injected_stamp_keeps_host_integers_and_exact_addends():
    image, invvar, grids = _dr6_stamp()
    arc = np.zeros_like(image)
    yy, xx = np.mgrid[0:64, 0:64]
    arc[0] = (0.05 * np.exp(-((np.hypot(yy - 32, xx - 32) - 10) ** 2) / 4.0)).astype(np.float32)
    injected = image + arc  # float32, as inject adds
    injected[0, 3, 4] = np.nan
    injected[0, 5, 6] = -np.inf
    injected[0, 7, 8] = -0.0
    members = encode_plane(injected, image, grids["image"])
    assert _raw_fraction(members) == 3 / 4096  # only the three non-finite / signed-zero pixels
    assert _bits_equal(decode_plane(members), injected)
    mb = np.zeros((64, 64), np.int32)
    mb[10:20, 5] = 2**11
    out = decode_stamp(encode_stamp(injected, invvar, mb, grids=grids, host_image=image))
    assert _bits_equal(out["image"], injected) and _bits_equal(out["invvar"], invvar) and np.array_equal(out["maskbits"], mb)


def test_without_grids_or_off_grid_every_pixel_is_raw_and_exact():
    image, invvar, grids = _dr6_stamp()
    shifted = np.nextafter(image, np.float32(np.inf))  # one ulp off the grid everywhere
    for values, g in ((image, None), (shifted, grids["image"])):
        members = encode_plane(values, None, g)
        assert _raw_fraction(members) == 1.0
        assert _bits_equal(decode_plane(members), values)


def test_malformed_plane_members_are_named_errors():
    image, _, grids = _dr6_stamp()
    members = encode_plane(image, None, grids["image"])
    with pytest.raises(ValueError, match="grid vector"):
        decode_plane({**members, "grid": np.concatenate([members["grid"], [1.0]])})
    with pytest.raises(ValueError, match="do not agree"):
        decode_plane({**members, "raw": members["raw"][:, :-1]})


def test_cutouts_of_the_real_brick_carry_grids_and_round_trip():
    reader = BrickReader(str(DR6.parents[2]))
    with fits.open(DR6 / "legacysurvey-0959p805-image-g.fits.fz") as hdul:
        from astropy.wcs import WCS

        wcs = WCS(hdul[1].header)
    data = fits.getdata(DR6 / "legacysurvey-0959p805-image-g.fits.fz")
    y, x = next(_windows(data, 1, seed=9))
    ra, dec = (float(v) for v in wcs.all_pix2world([[x + 32, y + 32]], 0)[0])
    cut = reader.cutout(ra, dec, 64, "gz", brickname="0959p805")
    assert cut.ok, cut.reason
    assert all(g is not None for g in cut.grids["image"] + cut.grids["invvar"])
    blob = encode_stamp(cut.image, cut.invvar, cut.maskbits, grids=cut.grids)
    out = decode_stamp(blob)
    assert _bits_equal(out["image"], cut.image) and _bits_equal(out["invvar"], cut.invvar)
    assert len(zlib.compress(blob, 1)) < 0.45 * len(zlib.compress(encode_stamp(cut.image, cut.invvar, cut.maskbits), 1))


def test_blob_length_does_not_tell_injections_from_controls():
    """The report's nuisance gate uses stamp_bytes: a control and an injection of the same host
    must give blobs of the same length (only their content differs)."""
    image, invvar, grids = _dr6_stamp()
    arc = np.zeros_like(image)
    arc[0, 30:34, 30:34] = np.float32(0.02)
    mb = np.zeros((64, 64), np.int32)
    control = encode_stamp(image, invvar, mb, grids=grids)
    injection = encode_stamp(image + arc, invvar, mb, grids=grids, host_image=image)
    assert len(control) == len(injection) and control != injection
