"""Decoded-tile cache of the brick reader: the whole-brick path, the tile-by-tile path and plain
per-stamp sections give bit-identical stamps, inside bricks, stitched across a brick edge, with
DR10's 100 x 100 tiles (legacypipe ``survey.py`` ``get_compression_args``; the real DR6 brick has
ZTILE1 = ZTILE2 = 100) as well as the small survey's 64 x 64, and on an S3 root.

Reference: a mosaic of the bricks' fully decompressed ``hdu.data`` (astropy's whole-image path,
not ``.section``), placed by the synthetic survey's global pixel grid, cut with numpy at the
Cutout2D box ``ceil(p - S/2)``: equal to the bit.
"""

from __future__ import annotations

import math
import shutil

import boto3
import numpy as np
import pytest
from astropy.io import fits
from survey_helpers import small_survey  # noqa: F401  (session fixture)

from darkhaloscope.dataset.storage import StorageOptions
from darkhaloscope.survey import decoded
from darkhaloscope.survey.brick_reader import BrickReader
from darkhaloscope.survey.bricks import coadd_relpath
from darkhaloscope.survey.hcompress_tiles import HcompressTiles
from darkhaloscope.survey.synth_geometry import SynthGrid, synthetic_bricks

SIZE = 64
# global pixels; the two 300 px bricks meet at X = 149.5: inside brick 0, across the edge (twice), inside brick 1
POINTS = [(-60.3, 20.7), (150.3, 10.2), (140.7, -80.6), (300.6, 90.4), (400.2, -100.8)]
KINDS = [("image", b) for b in "grz"] + [("invvar", b) for b in "grz"] + [("maskbits", None)]


def _mosaic(cfg, root) -> dict:
    """{(kind, band): global mosaic from each brick's fully decompressed .data}, and its origin."""
    bricks = synthetic_bricks(cfg)
    gx0, gy0 = min(b.x0 for b in bricks), min(b.y0 for b in bricks)
    nx = max(b.x0 + b.size for b in bricks) - gx0
    ny = max(b.y0 + b.size for b in bricks) - gy0
    out = {}
    for kind, band in KINDS:
        m = None
        for b in bricks:
            with fits.open(root / coadd_relpath(b.brick.brickname, kind, band)) as h:
                data = h[1].data
            if m is None:
                m = np.zeros((ny, nx), data.dtype)
            m[b.y0 - gy0 : b.y0 - gy0 + b.size, b.x0 - gx0 : b.x0 - gx0 + b.size] = data
        out[(kind, band)] = m
    return out, gx0, gy0


def _reference(mosaic, gx0, gy0, gx, gy):
    x0, y0 = math.ceil(gx - SIZE / 2) - gx0, math.ceil(gy - SIZE / 2) - gy0
    return {k: v[y0 : y0 + SIZE, x0 : x0 + SIZE] for k, v in mosaic.items()}


def _check(c, ref) -> None:
    assert c.ok, c.reason
    for i, b in enumerate("grz"):
        assert np.array_equal(c.image[i], ref[("image", b)]), b
        assert np.array_equal(c.invvar[i], ref[("invvar", b)]), b
    assert np.array_equal(c.maskbits, ref[("maskbits", None)].astype(np.int32))


def _cut_all(cfg, root, monkeypatch, options=None):
    """[((gx, gy), whole-brick cut, tile-by-tile cut (no hint), section-only cut)] for POINTS."""
    whole = BrickReader(str(root), options=options)
    for b in synthetic_bricks(cfg):
        whole.expect(b.brick.brickname, 10**6)
    tiles = BrickReader(str(root), options=options)  # no hint: tile by tile, then ski rental
    plain = BrickReader(str(root), options=options)
    grid = SynthGrid(cfg)
    out = []
    for gx, gy in POINTS:
        ra, dec = (float(v[0]) for v in grid.pix2world([gx], [gy]))
        a = whole.cutout(ra, dec, SIZE, "grz")
        b = tiles.cutout(ra, dec, SIZE, "grz")
        with monkeypatch.context() as mp:  # calls cost nothing: never decode whole, one section per missing-tile box
            mp.setattr(decoded, "SECTION_CALL_MS", 0.0)
            c = plain.cutout(ra, dec, SIZE, "grz")
        out.append(((gx, gy), a, b, c))
    # the whole path decoded every brick it touched entirely (HCOMPRESS files read from the heap are
    # cached tile by tile instead: their tiles are cheap per call); the plain path never did
    for ob in whole._bricks.values():
        assert all(of.decoded.have.all() or isinstance(of.decoded.rice, HcompressTiles) for of in ob.files.values())
    assert not all(of.decoded.have.all() for ob in plain._bricks.values() for of in ob.files.values())
    return out


def test_whole_tiles_and_sections_equal_the_decompressed_mosaic(small_survey, monkeypatch):  # noqa: F811
    cfg, root = small_survey
    mosaic, gx0, gy0 = _mosaic(cfg, root)
    results = _cut_all(cfg, root, monkeypatch)
    for (gx, gy), a, b, c in results:
        ref = _reference(mosaic, gx0, gy0, gx, gy)
        for cut in (a, b, c):
            _check(cut, ref)
    # two of the stamps really span the edge between the bricks (X = 149.5)
    assert sum(math.ceil(gx - 32) < 149.5 < math.ceil(gx - 32) + SIZE for gx, _ in POINTS) == 2


@pytest.fixture(scope="module")
def dr10_tiled(small_survey, tmp_path_factory):  # noqa: F811
    """The small survey re-written with DR10's own compression per file type and 100 x 100 tiles."""
    from darkhaloscope.survey.dr10_files import write_coadd

    cfg, root = small_survey
    release = tmp_path_factory.mktemp("dr10_tiled")
    dst = release / "south"
    shutil.copy(root.parent / "survey-bricks.fits.gz", release / "survey-bricks.fits.gz")
    for b in synthetic_bricks(cfg):
        for kind, band in KINDS:
            rel = coadd_relpath(b.brick.brickname, kind, band)
            with fits.open(root / rel) as h:
                data, header = h[1].data, h[1].header
            write_coadd(dst / rel, data, kind, header, dither_seed=3)
    return cfg, dst


def test_dr10_tiles_whole_tiles_and_sections_agree(dr10_tiled, monkeypatch):
    cfg, root = dr10_tiled
    with fits.open(root / coadd_relpath(synthetic_bricks(cfg)[0].brick.brickname, "image", "g")) as h:
        assert tuple(h[1].tile_shape) == (100, 100)  # (ZTILE2, ZTILE1)
    mosaic, gx0, gy0 = _mosaic(cfg, root)
    for (gx, gy), a, b, c in _cut_all(cfg, root, monkeypatch):
        ref = _reference(mosaic, gx0, gy0, gx, gy)
        for cut in (a, b, c):
            _check(cut, ref)


def test_s3_root_whole_and_tiles_equal_local(small_survey, s3_bucket, monkeypatch):  # noqa: F811
    cfg, root = small_survey
    endpoint, bucket = s3_bucket
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for p in root.parent.rglob("*"):  # the release: survey-bricks.fits.gz above south/
        if p.is_file() and "tractor" not in p.parts and "sweep" not in p.parts:
            s3.upload_file(str(p), bucket, f"dr10/{p.relative_to(root.parent).as_posix()}")
    mosaic, gx0, gy0 = _mosaic(cfg, root)
    cuts = list(_cut_all(cfg, f"s3://{bucket}/dr10/south", monkeypatch, StorageOptions(endpoint=endpoint)))
    assert cuts, "no stamp cut from the S3 root"
    for (gx, gy), a, b, c in cuts:
        ref = _reference(mosaic, gx0, gy0, gx, gy)
        for cut in (a, b, c):
            _check(cut, ref)


def test_ski_rental_decodes_whole_after_enough_section_calls(small_survey):  # noqa: F811
    cfg, root = small_survey
    name = synthetic_bricks(cfg)[0].brick.brickname
    r = BrickReader(str(root))
    of = r.brick(name).open("image", "g")
    d = decoded.DecodedImage(of.hdu, of.path)  # astropy sections (no file object: no direct RICE decoding)
    assert d.tile == (64, 64) and d.grid == (5, 5)  # 300 px brick, 64 px tiles
    n_px = 300 * 300
    # fixed costs paid (calls x SECTION_CALL_MS) >= modelled cost of decoding the 64^2 tiles still missing
    calls_to_whole = next(c for c in range(1, 5) if c * decoded.SECTION_CALL_MS >= decoded.whole_ms(n_px - c * 64 * 64))
    ref = fits.open(root / coadd_relpath(name, "image", "g"))[1].data
    for k in range(calls_to_whole + 1):  # 1 x 1 px reads, each in a tile not yet decoded
        assert not d.have.all()
        y = x = 64 * k + 1
        assert np.array_equal(d.read(y, y + 1, x, x + 1), ref[y : y + 1, x : x + 1])
    assert d.calls == calls_to_whole + 1 and d.have.all() and d.decoded_pixels == n_px
    assert d.nbytes == n_px * 4
    assert np.array_equal(d.data, ref)


def test_decoded_memory_stays_within_budget_plus_current_brick(small_survey):  # noqa: F811
    cfg, root = small_survey
    names = [b.brick.brickname for b in synthetic_bricks(cfg)]
    one_brick = 7 * 300 * 300 * 4  # float32 image+invvar x 3 bands, int32 maskbits (DR10: SUB_BLOB is bit 16)
    r = BrickReader(str(root), decoded_cache_mb=0.5 * one_brick / 2**20)
    grid = SynthGrid(cfg)
    for n in names:
        r.expect(n, 1000)
    ra0, dec0 = (float(v[0]) for v in grid.pix2world([0.0], [0.0]))
    ra1, dec1 = (float(v[0]) for v in grid.pix2world([300.0], [0.0]))
    a = r.cutout(ra0, dec0, SIZE, "grz")
    held = r.decoded_bytes  # image and invvar whole; maskbits (HCOMPRESS from the heap) only the tiles cut
    assert one_brick - 300 * 300 * 4 < held <= one_brick  # the brick being cut is never dropped
    b = r.cutout(ra1, dec1, SIZE, "grz")
    assert r.decoded_bytes <= one_brick and r._bricks[names[1]].decoded_bytes == r.decoded_bytes  # LRU brick dropped
    assert r._bricks[names[0]].decoded_bytes == 0
    a2 = r.cutout(ra0, dec0, SIZE, "grz")  # decoded again after the drop: same pixels
    assert np.array_equal(a.image, a2.image) and np.array_equal(a.maskbits, a2.maskbits) and b.ok


def test_prefer_whole_rule():
    # demo-size brick: 1000^2; DR10: 3600^2; both in DR10's 100^2 tiles
    demo = [decoded.prefer_whole((1000, 1000), (100, 100), 64, n) for n in range(0, 60)]
    dr10 = [decoded.prefer_whole((3600, 3600), (100, 100), 64, n) for n in range(0, 400)]
    assert not demo[1] and demo[-1] and not dr10[1] and dr10[-1]
    # monotone: once whole is cheaper, more stamps keep it cheaper
    for seq in (demo, dr10):
        first = seq.index(True)
        assert all(seq[first:]) and not any(seq[:first])
    # a DR10 brick (~37 LRGs) is cut tile by tile: whole-file decoding pays only from ~180 stamps
    assert 5 <= demo.index(True) <= 30 and 120 <= dr10.index(True) <= 260


def test_prefer_whole_direct_rule():
    """The compiled RICE path: a box costs its own tiles (no cache), so whole-file decoding pays only
    when n boxes cost more than one pass over the file; a DR10 brick with its ~37 LRGs never does."""
    dr10 = [decoded.prefer_whole_direct((3600, 3600), (100, 100), 64, n) for n in range(0, 1000)]
    first = dr10.index(True)
    assert all(dr10[first:]) and not any(dr10[:first]) and 400 <= first <= 800
    n_px = (1.0 + 63 / 100) * 100 * (64 + 50)  # tile columns touched x rows from the tile top to the box end
    assert abs(decoded.direct_box_ms((100, 100), 64) - (decoded.DIRECT_CALL_MS + n_px * decoded.DIRECT_PIXEL_MS)) < 1e-12
