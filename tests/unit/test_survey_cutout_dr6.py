"""Cutouts from the real DR6 brick 0959p805 (g and z only, no r, no maskbits, survey edge).

Reference: astropy Cutout2D on the fully decompressed image, same WCS: equal to the bit.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

from darkhaloscope.survey.brick_reader import BrickReader
from darkhaloscope.survey.cutout import cutout

BRICK = "0959p805"
REL = f"coadd/095/{BRICK}"


@pytest.fixture(scope="module")
def dr6(shared_data):
    root = shared_data / "desitarget_dr6_coadd_brick"
    with fits.open(root / REL / f"legacysurvey-{BRICK}-image-g.fits.fz") as h:
        wcs = WCS(h[1].header)
    return root, wcs


def _ref(root, kind, band, ra, dec, size):
    with fits.open(root / REL / f"legacysurvey-{BRICK}-{kind}-{band}.fits.fz") as h:
        data = h[1].data
        wcs = WCS(h[1].header)
    return Cutout2D(data, SkyCoord(ra, dec, unit="deg"), size, wcs=wcs, mode="strict").data


@pytest.mark.parametrize("px, py, size", [(400.3, 1200.7, 64), (850.0, 1800.2, 64), (300.9, 200.1, 31)])
def test_cutout_equals_cutout2d_to_the_bit(dr6, px, py, size):
    root, wcs = dr6
    ra, dec = (float(v) for v in wcs.all_pix2world([[px, py]], 0)[0])
    c = cutout(str(root), ra, dec, size=size, bands="gz")
    assert c.ok, c.reason
    assert c.brickname == BRICK
    assert c.image.dtype == np.float32 and c.image.shape == (2, size, size)
    for i, band in enumerate("gz"):
        ref_img = _ref(root, "image", band, ra, dec, size)
        ref_iv = _ref(root, "invvar", band, ra, dec, size)
        assert np.array_equal(c.image[i], ref_img, equal_nan=True)
        assert np.array_equal(c.invvar[i], ref_iv, equal_nan=True)
    assert np.count_nonzero(c.image[0]) > 0  # g has coverage in rows 0-1875, cols 0-881
    # DR6 has no maskbits file: zeros and a note naming it
    assert not c.maskbits.any() and c.maskbits.dtype == np.int32
    assert "maskbits" in c.note and f"legacysurvey-{BRICK}-maskbits.fits.fz" in c.note


def test_missing_band_names_the_file(dr6):
    root, wcs = dr6
    ra, dec = (float(v) for v in wcs.all_pix2world([[400, 1200]], 0)[0])
    c = cutout(str(root), ra, dec, size=64, bands="grz")
    assert not c.ok and c.image.shape == (3, 64, 64)
    assert c.reason.startswith("missing band r") and f"legacysurvey-{BRICK}-image-r.fits.fz" in c.reason


def test_stamp_off_the_brick_edge_without_neighbour(dr6):
    root, wcs = dr6
    ra, dec = (float(v) for v in wcs.all_pix2world([[10.0, 1200.0]], 0)[0])
    c = BrickReader(str(root)).cutout(ra, dec, 64, "gz", brickname=BRICK)
    assert not c.ok and "crosses the edge of brick 0959p805" in c.reason and "no neighbour" in c.reason


def _copy_brick(shared_data, tmp_path):
    src = shared_data / "desitarget_dr6_coadd_brick"
    dst = tmp_path / "dr6"
    shutil.copytree(src / "coadd", dst / "coadd")
    shutil.copy(src / "survey-bricks.fits.gz", dst / "survey-bricks.fits.gz")
    for p in dst.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    return dst


def test_missing_truncated_and_corrupt_files_each_have_their_reason(dr6, shared_data, tmp_path):
    _, wcs = dr6
    root = _copy_brick(shared_data, tmp_path)
    ra, dec = (float(v) for v in wcs.all_pix2world([[400, 1200]], 0)[0])
    d = root / REL
    # missing file: invvar-z gone while image-z is there
    (d / f"legacysurvey-{BRICK}-invvar-z.fits.fz").unlink()
    c = BrickReader(str(root)).cutout(ra, dec, 64, "gz")
    assert not c.ok and c.reason.startswith("missing file") and f"legacysurvey-{BRICK}-invvar-z.fits.fz" in c.reason
    # truncated file: image-g cut to half its length
    p = d / f"legacysurvey-{BRICK}-image-g.fits.fz"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    c = BrickReader(str(root)).cutout(ra, dec, 64, "g")
    assert not c.ok and c.reason.startswith("truncated file") and f"legacysurvey-{BRICK}-image-g.fits.fz" in c.reason
    # corrupt file: not FITS at all
    p.write_bytes(b"this is not a FITS file" * 200)
    c = BrickReader(str(root)).cutout(ra, dec, 64, "g")
    assert not c.ok and c.reason.startswith("corrupt file") and f"legacysurvey-{BRICK}-image-g.fits.fz" in c.reason
    # a whole brick absent: missing file naming the first file looked for
    c = BrickReader(str(root)).cutout(ra, dec, 64, "g", brickname="1234p567")
    assert not c.ok and "missing file" in c.reason and "legacysurvey-1234p567-image-g.fits.fz" in c.reason


def test_bad_brickname_is_refused_not_used_as_a_path(dr6):
    root, _ = dr6
    c = BrickReader(str(root)).cutout(95.9, 80.5, 64, "g", brickname="../../etc")
    assert not c.ok and "invalid brick name" in c.reason


def test_lru_cache_keeps_at_most_cache_size_bricks(dr6):
    root, wcs = dr6
    r = BrickReader(str(root), cache_size=1)
    ra, dec = (float(v) for v in wcs.all_pix2world([[400, 1200]], 0)[0])
    assert r.cutout(ra, dec, 32, "g").ok
    r.cutout(ra, dec, 32, "g", brickname="1234p567")
    assert r.cached_bricks() == ["1234p567"]
    assert r.cutout(ra, dec, 32, "g").ok
    assert r.cached_bricks() == [BRICK]
