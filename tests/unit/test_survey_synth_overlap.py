"""Synthetic bricks that overlap as DR10's do (``survey.synthetic.brick_overlap_pix``).

DR10: 3600 px images on a 0.25 deg grid reach ~82 px into their neighbours; pixels outside a
brick's unique area are NPRIMARY (legacypipe ``py/legacypipe/runbrick.py``), Tractor catalogs
keep the objects of the whole image with ``brick_primary`` saying which brick owns each, and the
sweeps keep the primary rows only.
"""

from __future__ import annotations

import numpy as np
import pytest
import survey_helpers
from astropy.io import fits

from darkhaloscope.errors import ConfigError
from darkhaloscope.survey.brick_reader import BrickReader
from darkhaloscope.survey.build_survey import build_survey
from darkhaloscope.survey.catalogs import read_catalog
from darkhaloscope.survey.maskbits import BITS
from darkhaloscope.survey.synth_geometry import synthetic_bricks

MARGIN = 40


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory):
    cfg = survey_helpers.small_config(brick_overlap_pix=MARGIN, lrg_per_brick=60, galaxies_per_brick=30, stars_per_brick=6)
    out = tmp_path_factory.mktemp("overlap")
    build_survey(cfg, out)
    return cfg, out / "south"


def test_bricks_overlap_by_twice_the_margin_and_share_their_pixels(overlapping):
    cfg, root = overlapping
    a, b = synthetic_bricks(cfg)
    n = cfg.survey.synthetic.brick_size_pix
    assert b.x0 - a.x0 == n - 2 * MARGIN  # centres one primary side apart
    img = [fits.getdata(root / "coadd" / s.brick.brickname[:3] / s.brick.brickname / f"legacysurvey-{s.brick.brickname}-maskbits.fits.fz", 1)
           for s in (a, b)]
    # the shared 2 x MARGIN columns: the same sky (one global field), so the same star masks
    shared_a, shared_b = img[0][:, n - 2 * MARGIN :], img[1][:, : 2 * MARGIN]
    assert np.array_equal(shared_a & ~np.int32(1), shared_b & ~np.int32(1))
    for m in img:  # NPRIMARY exactly outside the central (n - 2 MARGIN)^2 pixels
        npr = (m & (1 << BITS["NPRIMARY"])) != 0
        inner = np.zeros_like(npr)
        inner[MARGIN : n - MARGIN, MARGIN : n - MARGIN] = True
        assert np.array_equal(npr, ~inner)


def _sweeps(root) -> dict:
    cats = [read_catalog(str(p)) for p in sorted((root / "sweep" / "10.1").glob("sweep-*.fits"))]
    return {k: np.concatenate([np.asarray(c[k]) for c in cats]) for k in ("ra", "dec", "brickname", "bx", "brick_primary")}


def test_sweeps_hold_each_object_once_and_tractor_files_say_who_owns_it(overlapping):
    cfg, root = overlapping
    bricks = synthetic_bricks(cfg)
    tractor = [fits.getdata(root / "tractor" / s.brick.brickname[:3] / f"tractor-{s.brick.brickname}.fits", 1) for s in bricks]
    n = cfg.survey.synthetic.brick_size_pix
    for t in tractor:  # an object in the overlap is in both catalogs, primary in one
        inner = (t["bx"] >= MARGIN - 0.5) & (t["bx"] < n - MARGIN - 0.5) & (t["by"] >= MARGIN - 0.5) & (t["by"] < n - MARGIN - 0.5)
        assert np.array_equal(np.asarray(t["brick_primary"], bool), inner)
        assert (~inner).any()
    sweep = _sweeps(root)
    assert np.asarray(sweep["brick_primary"], bool).all()
    assert len(sweep["ra"]) == sum(int(np.sum(t["brick_primary"])) for t in tractor)
    pos = np.round(np.c_[sweep["ra"], sweep["dec"]] * 3.6e6)  # milliarcsec: no object twice
    assert len(np.unique(pos, axis=0)) == len(pos)
    # the survey-bricks table's RA1..RA2 are the primary areas: they abut, and every sweep row lies in its brick's
    table = fits.getdata(root.parent / "survey-bricks.fits.gz", 1)
    assert table["RA1"][0] == pytest.approx(table["RA2"][1], abs=1e-9)
    for name, ra, dec in zip(sweep["brickname"], sweep["ra"], sweep["dec"], strict=True):
        row = table[table["BRICKNAME"] == name][0]
        assert min(row["RA1"], row["RA2"]) <= ra <= max(row["RA1"], row["RA2"]) and row["DEC1"] <= dec <= row["DEC2"]


def test_a_stamp_on_any_primary_object_stays_inside_its_image(overlapping):
    """With a margin >= stamp / 2, no stamp is stitched: every one keeps its quantisation grids."""
    cfg, root = overlapping
    sweep = _sweeps(root)
    reader = BrickReader(str(root))
    size = 2 * MARGIN
    near_edge = 0
    for ra, dec, name, bx in zip(sweep["ra"], sweep["dec"], sweep["brickname"], sweep["bx"], strict=True):
        cut = reader.cutout(float(ra), float(dec), size, "grz", brickname=str(name))
        assert cut.ok, cut.reason
        assert all(g is not None for g in cut.grids["image"] + cut.grids["invvar"]), name
        near_edge += bx < MARGIN + size / 2 or bx > cfg.survey.synthetic.brick_size_pix - MARGIN - size / 2
    assert near_edge > 0  # some stamps would have crossed an edge of a non-overlapping brick


def test_an_overlap_leaving_no_primary_area_is_a_config_error():
    with pytest.raises(ConfigError) as ei:
        survey_helpers.small_config(brick_overlap_pix=150)
    assert ei.value.field == "survey.synthetic.brick_overlap_pix"
