"""The synthetic DR10-format survey: layout, determinism, fluxes, PSF, noise, masks, edges."""

from __future__ import annotations

import math

import galsim
import numpy as np
import pytest
import survey_helpers
from astropy.io import fits

from darkhaloscope.cli import main as cli_main
from darkhaloscope.errors import ConfigError
from darkhaloscope.physics.psf import moffat_fwhm_for_psfsize
from darkhaloscope.survey.brick_reader import BrickReader
from darkhaloscope.survey.build_survey import build_survey
from darkhaloscope.survey.catalogs import read_catalog
from darkhaloscope.survey.lrg import lrg_mask
from darkhaloscope.survey.synth_geometry import SynthGrid, synthetic_bricks
from darkhaloscope.survey.synth_render import render_brick, sky_sigma
from darkhaloscope.survey.synth_sources import LRG_R_MAX, LRG_R_MIN

small_config = survey_helpers.small_config
small_survey = survey_helpers.small_survey  # session fixture


def _tractor(root, name):
    return fits.getdata(root / "tractor" / name[:3] / f"tractor-{name}.fits", 1)


def test_layout_and_headers(small_survey):
    cfg, root = small_survey
    names = [b.brick.brickname for b in synthetic_bricks(cfg)]
    assert names == ["1500p100", "1499p100"]
    t = fits.getdata(root.parent / "survey-bricks.fits.gz", 1)
    assert list(t["BRICKNAME"]) == names
    for name in names:
        d = root / "coadd" / name[:3] / name
        for band in "grz":
            with fits.open(d / f"legacysurvey-{name}-image-{band}.fits.fz") as h:
                assert isinstance(h[1], fits.CompImageHDU)
                assert h[1]._bintable.header["ZCMPTYPE"] == "RICE_1"
                assert h[1]._bintable.header["ZQUANTIZ"] == "SUBTRACTIVE_DITHER_2"
                assert h[1].header["CTYPE1"] == "RA---TAN" and h[1].data.shape == (300, 300)
        cat = _tractor(root, name)
        assert {"release", "brickid", "objid", "bx", "by", "psfsize_r", "fiberflux_z", "flux_w1", "maskbits"} <= set(cat.columns.names)
        assert all(n == n.lower() for n in cat.columns.names)
        # catalog positions agree with the brick WCS
        with fits.open(d / f"legacysurvey-{name}-image-r.fits.fz") as h:
            from astropy.wcs import WCS

            x, y = WCS(h[1].header).all_world2pix(cat["ra"], cat["dec"], 0)
        assert np.allclose(x, cat["bx"], atol=1e-3) and np.allclose(y, cat["by"], atol=1e-3)


def test_same_seed_same_bytes_other_seed_other_sky(tmp_path):
    cfg = small_config(n_bricks_ra=1, lrg_per_brick=5, galaxies_per_brick=2, stars_per_brick=1)
    build_survey(cfg, tmp_path / "a")
    build_survey(cfg, tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    # 6 banded file types x 3 bands + maskbits; tractor, sweep, photo-z, summary, survey-bricks
    assert len(files) == 24
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    from darkhaloscope.config import replace

    build_survey(replace(cfg, seed=8), tmp_path / "c")
    f = next(f for f in files if "image-r" in f.name)
    assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes()


def test_most_synthetic_lrgs_pass_the_lrg_cuts(small_survey):
    cfg, root = small_survey
    passed = total = 0
    for sweep in sorted((root / "sweep" / "10.1").glob("sweep-*.fits")):
        cols = read_catalog(sweep)
        pz = fits.getdata(root / "sweep" / "10.1-photo-z" / sweep.name.replace(".fits", "-pz.fits"), 1)
        is_lrg_pop = np.asarray(pz["Z_PHOT_MEDIAN"], float) > -1  # only the LRG population has a photo-z
        sel = lrg_mask(cols, cfg.tasks.lrg)
        passed += int((sel & is_lrg_pop).sum())
        total += int(is_lrg_pop.sum())
        r = 22.5 - 2.5 * np.log10(cols["flux_r"][is_lrg_pop] / cols["mw_transmission_r"][is_lrg_pop])
        assert r.min() >= LRG_R_MIN - 1e-3 and r.max() <= LRG_R_MAX + 1e-3
        # the DESI cut z_fiber < 21.6 removes the faintest, as in DR10
        zfib = 22.5 - 2.5 * np.log10(np.clip(cols["fiberflux_z"] / cols["mw_transmission_z"], 1e-9, None))
        assert not (sel & (zfib >= cfg.tasks.lrg.zfiber_max)).any()
    assert total > 20 and 0.35 < passed / total < 0.9


def test_noise_matches_invvar(small_survey):
    """Robust sigma of pixel differences (insensitive to smooth sources) vs 1/sqrt(invvar): 5 %."""
    cfg, root = small_survey
    for band in "grz":
        with fits.open(root / "coadd/150/1500p100" / f"legacysurvey-1500p100-image-{band}.fits.fz") as h:
            img = h[1].data.astype(float)
        with fits.open(root / "coadd/150/1500p100" / f"legacysurvey-1500p100-invvar-{band}.fits.fz") as h:
            iv = h[1].data.astype(float)
        d = (img[:, 1:] - img[:, :-1]).ravel()
        sigma = 1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2)
        assert sigma * math.sqrt(np.median(iv)) == pytest.approx(1.0, abs=0.05), band
        assert 1 / math.sqrt(np.median(iv)) == pytest.approx(sky_sigma(cfg, band), rel=0.06)


def test_lrg_flux_in_cutout_matches_catalog(tmp_path):
    """Sum over the render box of isolated LRGs = catalog flux within 5 sigma of the box noise (+0.5 %)."""
    cfg = small_config(n_bricks_ra=1, brick_size_pix=1000, lrg_per_brick=12, galaxies_per_brick=0, stars_per_brick=0)
    build_survey(cfg, tmp_path)
    name = synthetic_bricks(cfg)[0].brick.brickname
    cat = _tractor(tmp_path / "south", name)
    reader = BrickReader(str(tmp_path / "south"))
    half = np.minimum(96, np.ceil((8 * cat["shape_r"] + 3 * cat["psfsize_g"]) / 0.262) + 2).astype(int)
    checked = 0
    for k in range(len(cat)):
        box = half[k] + 2
        others = [j for j in range(len(cat)) if j != k]
        isolated = all(max(abs(cat["bx"][j] - cat["bx"][k]), abs(cat["by"][j] - cat["by"][k])) > box + half[j] + 1 for j in others)
        inside = box < cat["bx"][k] < 999 - box and box < cat["by"][k] < 999 - box
        if not (isolated and inside):
            continue
        c = reader.cutout(float(cat["ra"][k]), float(cat["dec"][k]), size=2 * box + 1, bands="grz")
        assert c.ok, c.reason
        for i, band in enumerate("grz"):
            total = float(c.image[i].sum(dtype=np.float64))
            noise = math.sqrt(float((1.0 / c.invvar[i]).sum()))
            flux = float(cat[f"flux_{band}"][k])
            assert abs(total - flux) < 5 * noise + 0.005 * flux, (k, band, total, flux, noise)
        checked += 1
    assert checked >= 2


def test_psf_fwhm_is_the_catalog_psfsize(tmp_path):
    """Adaptive moments of bright isolated stars = those of the GalSim Moffat(3.5) whose effective
    area is that of the catalog's psfsize (DR10 convention: FWHM of the Gaussian of equal Neff), 2 %."""
    cfg = small_config(n_bricks_ra=1, lrg_per_brick=0, galaxies_per_brick=0, stars_per_brick=40, seeing_r_min=0.9, seeing_r_max=1.6)
    build_survey(cfg, tmp_path)
    name = synthetic_bricks(cfg)[0].brick.brickname
    cat = _tractor(tmp_path / "south", name)
    reader = BrickReader(str(tmp_path / "south"))
    fwhm = {b: float(cat[f"psfsize_{b}"][0]) for b in "grz"}
    assert fwhm["g"] > fwhm["r"] > fwhm["z"] and 0.9 <= fwhm["r"] <= 1.6
    order = np.argsort(-cat["flux_r"])
    measured = 0
    for k in order:
        if not (20 < cat["bx"][k] < 279 and 20 < cat["by"][k] < 279) or cat["flux_r"][k] < 50 or cat["flux_r"][k] > 5e4:
            continue
        c = reader.cutout(float(cat["ra"][k]), float(cat["dec"][k]), size=33, bands="grz")
        for i, b in enumerate("grz"):
            got = galsim.hsm.FindAdaptiveMom(galsim.ImageF(c.image[i].astype(np.float32), scale=0.262)).moments_sigma
            # reference: the catalog's FWHM, drawn by GalSim at the same sub-pixel position
            x0 = math.ceil(cat["bx"][k] - 33 / 2)
            y0 = math.ceil(cat["by"][k] - 33 / 2)
            off = galsim.PositionD(cat["bx"][k] - x0 - 16, cat["by"][k] - y0 - 16)
            ref_img = galsim.Moffat(beta=3.5, fwhm=moffat_fwhm_for_psfsize(fwhm[b], 3.5, 0.262), flux=float(cat[f"flux_{b}"][k])).drawImage(nx=33, ny=33, scale=0.262, offset=off)
            want = galsim.hsm.FindAdaptiveMom(ref_img).moments_sigma
            # the pixelised reference's effective area is the Gaussian's of FWHM psfsize (DR10's Neff)
            p = ref_img.array / ref_img.array.sum()
            sigma_pix = fwhm[b] / 2.3548 / 0.262
            assert 1.0 / float((p**2).sum()) == pytest.approx(4 * math.pi * sigma_pix**2, rel=0.01)
            assert got == pytest.approx(want, rel=0.02), (b, got, want)
        measured += 1
        if measured == 2:
            break
    assert measured >= 1


def test_bright_stars_are_masked_in_maskbits(tmp_path):
    cfg = small_config(n_bricks_ra=1, lrg_per_brick=0, galaxies_per_brick=0, stars_per_brick=400)  # ~2 % have G < 16
    build_survey(cfg, tmp_path)
    name = synthetic_bricks(cfg)[0].brick.brickname
    cat = _tractor(tmp_path / "south", name)
    with fits.open(tmp_path / "south" / "coadd" / name[:3] / name / f"legacysurvey-{name}-maskbits.fits.fz") as h:
        mb = h[1].data.astype(int)
    g = cat["gaia_phot_g_mean_mag"]
    medium = (g > 0) & (g < 16)
    assert medium.sum() >= 3
    for k in np.flatnonzero(medium):
        v = mb[int(round(cat["by"][k])), int(round(cat["bx"][k]))]
        assert v & (1 << 11), k
        if g[k] < 13:
            assert v & (1 << 1), k
        assert cat["maskbits"][k] == v
    assert (mb == 0).any()


def test_stamp_across_brick_edge_equals_larger_brick(small_survey, tmp_path):
    """Two 300 px bricks vs one 600 px brick, same seed and density.

    Rendered arrays: bit-identical on shared pixels. Files (Rice quantised per tile on DR10's steps:
    1e-4 nanomaggy for images; invvar q = 16, a step of ~1e-3 of the value for its 1.5 % pixel
    scatter): a stitched stamp equals the big brick's within 0.25 sigma of the sky noise per
    pixel, invvar within 2e-3 of its value (a step of either file).
    """
    cfg, root = small_survey
    big = small_config(n_bricks_ra=1, brick_size_pix=600, lrg_per_brick=80, galaxies_per_brick=40, stars_per_brick=16)
    (bb,) = synthetic_bricks(big)
    rb_big = render_brick(big, bb)
    for sb in synthetic_bricks(cfg):
        rb = render_brick(cfg, sb)
        # overlap of this brick with the big brick, in global pixels
        xa, xb = max(sb.x0, bb.x0), min(sb.x0 + sb.size, bb.x0 + bb.size)
        ya, yb = max(sb.y0, bb.y0), min(sb.y0 + sb.size, bb.y0 + bb.size)
        assert xb - xa >= 150
        for band in "grz":
            a = rb.image[band][ya - sb.y0 : yb - sb.y0, xa - sb.x0 : xb - sb.x0]
            b = rb_big.image[band][ya - bb.y0 : yb - bb.y0, xa - bb.x0 : xb - bb.x0]
            assert np.array_equal(a, b), band
        assert np.array_equal(rb.maskbits[ya - sb.y0 : yb - sb.y0, xa - sb.x0 : xb - sb.x0], rb_big.maskbits[ya - bb.y0 : yb - bb.y0, xa - bb.x0 : xb - bb.x0])

    build_survey(big, tmp_path)
    grid = SynthGrid(cfg)
    small_reader, big_reader = BrickReader(str(root)), BrickReader(str(tmp_path / "south"))
    for gx, gy in [(150.0, 0.0), (149.6, -100.3), (160.2, 100.0)]:  # the edge between the two bricks is X = 149.5
        ra, dec = (float(v[0]) for v in grid.pix2world([gx], [gy]))
        a = small_reader.cutout(ra, dec, 64, "grz")
        b = big_reader.cutout(ra, dec, 64, "grz")
        assert a.ok and b.ok, (a.reason, b.reason)
        for i, band in enumerate("grz"):
            assert np.abs(a.image[i] - b.image[i]).max() < 0.25 * sky_sigma(cfg, band)
        # invvar: each file quantised per tile on (tile noise) / 16, ~1e-3 of the value
        for i in range(3):
            step = 2e-3 * max(float(a.invvar[i].max()), float(b.invvar[i].max()))
            assert np.abs(a.invvar[i] - b.invvar[i]).max() <= step
        assert np.array_equal(a.maskbits, b.maskbits)
        # the stamp really spans the edge, so it was stitched from both bricks' files
        assert math.ceil(gx - 32) < 149.5 < math.ceil(gx - 32) + 64


def test_brick_names_that_collide_are_a_config_error():
    with pytest.raises(ConfigError) as ei:
        synthetic_bricks(small_config(ra_start=150.05))  # both centres in the 150.0-150.1 cell
    assert ei.value.field == "survey.synthetic.brick_size_pix"


def test_build_survey_cli(tmp_path, capsys):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("seed: 3\nsurvey:\n  synthetic:\n    n_bricks_ra: 1\n    brick_size_pix: 200\n    lrg_per_brick: 3\n    galaxies_per_brick: 0\n    stars_per_brick: 0\n")
    assert cli_main(["build-survey", "--config", str(cfg_file), "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "survey-bricks.fits.gz").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("survey:\n  synthetic:\n    lrgs_per_brick: 3\n")
    assert cli_main(["build-survey", "--config", str(bad), "--out", str(tmp_path / "t")]) == 1
    assert "survey.synthetic.lrgs_per_brick" in capsys.readouterr().err


def test_lrg_hard_core_holds_and_does_not_depend_on_the_box():
    """Matern II thinning: no two LRG centres closer than lrg_min_separation_pix; any box sees the same LRGs."""
    from darkhaloscope.survey.synth_sources import sources_in_box

    cfg = small_config(lrg_per_brick=60, lrg_min_separation_pix=64.0, galaxies_per_brick=0, stars_per_brick=0)
    big = sources_in_box(cfg, -600, 600, -600, 600)
    x, y = big["x"], big["y"]
    d2 = (x[:, None] - x[None]) ** 2 + (y[:, None] - y[None]) ** 2
    np.fill_diagonal(d2, np.inf)
    assert len(x) > 100 and d2.min() >= 64.0**2
    poisson = sources_in_box(small_config(lrg_per_brick=60, galaxies_per_brick=0, stars_per_brick=0), -600, 600, -600, 600)
    assert len(poisson["x"]) > len(x)  # thinning removed some
    small = sources_in_box(cfg, 0, 256, 0, 256)  # one cell: the same points as in the big box's cell
    sel = (x >= -0.5) & (x < 255.5) & (y >= -0.5) & (y < 255.5)
    assert np.array_equal(np.sort(small["x"]), np.sort(x[sel]))
