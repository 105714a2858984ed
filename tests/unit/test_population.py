"""Population (issue 15): redshift order, theta_E from sigma_v, mass follows light, region SNR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from darkhaloscope.config import Config
from darkhaloscope.physics.acceptance import pixel_variance, region_snr, snr_upper_bound
from darkhaloscope.physics.population import C_KM_S, theta_e_sis, tractor_to_pixel_ellipticity
from darkhaloscope.sources.bank import SourceBank
from darkhaloscope.sources.select import choose_source_behind


def _bank(z: np.ndarray) -> SourceBank:
    n = len(z)
    images = np.ones((n, 4, 4), np.float32) / 16
    meta = {
        "cosmos_index": np.arange(n), "ident": np.array([f"s{i}" for i in range(n)]), "mag_f814w": np.full(n, 23.0, np.float32),
        "hlr_arcsec": np.full(n, 0.3, np.float32), "z_phot": z.astype(np.float32), "sersic_n": np.ones(n, np.float32),
        "q": np.ones(n, np.float32), "pixel_scale": np.full(n, 0.03, np.float32), "split_group": np.array(["train"] * n),
    }
    return SourceBank.from_arrays(images, meta)


def test_no_source_in_front_of_its_lens_over_1e4_draws():
    rng = np.random.default_rng(1)
    z = np.exp(rng.normal(0.0, 0.6, 500))  # half the sources below z = 1, many below the lenses
    bank = _bank(z)
    min_dz = Config().lens.min_dz
    draw = np.random.default_rng(2)
    n_none = 0
    for lens_z in rng.uniform(0.2, 1.2, 10_000):
        k = choose_source_behind(draw, bank, "train", lens_z + min_dz)
        if k is None:
            n_none += 1
            continue
        assert float(bank.meta["z_phot"][k]) >= np.float32(lens_z + min_dz) - 1e-7
    assert n_none < 100  # the bank has sources behind almost every lens


def test_theta_e_from_sigma_matches_hand_computation():
    from astropy.cosmology import Planck18

    sigma, zl, zs = 250.0, 0.5, 1.5
    # flat universe: D_ls = (D_M(zs) - D_M(zl)) / (1 + zs), D_s = D_M(zs) / (1 + zs)
    dm_l = Planck18.comoving_transverse_distance(zl).value
    dm_s = Planck18.comoving_transverse_distance(zs).value
    ratio = (dm_s - dm_l) / dm_s
    hand = 4 * math.pi * (sigma / C_KM_S) ** 2 * ratio * 180 / math.pi * 3600
    assert theta_e_sis(sigma, zl, zs, "Planck18") == pytest.approx(hand, rel=1e-6)
    assert 0.9 < hand < 1.2  # a 250 km/s LRG at z = 0.5 lenses z = 1.5 at ~1" (the issue's figure)
    assert theta_e_sis(sigma, 0.8, 0.7, "Planck18") == 0.0  # a source in front is not lensed


def _pixel_angle_of_moments(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    """Major-axis angle (deg, [0, 180)) from +x of points / a weighted map, by second moments."""
    w = np.ones_like(x) if w is None else w
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    qxx = np.average((x - mx) ** 2, weights=w)
    qyy = np.average((y - my) ** 2, weights=w)
    qxy = np.average((x - mx) * (y - my), weights=w)
    return math.degrees(0.5 * math.atan2(2 * qxy, qxx - qyy)) % 180.0


def _tractor_ellipse_in_pixels(e1: float, e2: float) -> tuple[np.ndarray, np.ndarray]:
    """Boundary of a Tractor EllipseE (re = 2") in the pixels of a DR10-like north-up, east-left TAN WCS.

    Tractor (tractor/ellipses.py EllipseE.getRaDecBasis): theta = atan2(e2, e1)/2, ab = (1+e)/(1-e),
    G = re * [[cos/ab, sin], [-sin/ab, cos]] maps unit vectors to (dRA, dDec)."""
    from astropy.wcs import WCS

    e, th = math.hypot(e1, e2), 0.5 * math.atan2(e2, e1)
    ab = (1 + e) / (1 - e)
    g = (2.0 / 3600) * np.array([[math.cos(th) / ab, math.sin(th)], [-math.sin(th) / ab, math.cos(th)]])
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    d_ra, d_dec = g @ np.vstack([np.sin(t), np.cos(t)])
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 10.0]
    w.wcs.crpix = [1800.5, 1800.5]
    w.wcs.cd = [[-0.262 / 3600, 0.0], [0.0, 0.262 / 3600]]
    ra = 150.0 + d_ra / math.cos(math.radians(10.0))
    x, y = w.all_world2pix(ra, 10.0 + d_dec, 0)
    return np.asarray(x), np.asarray(y)


def _lenstronomy_mass_angle(e1: float, e2: float) -> float:
    from lenstronomy.LensModel.lens_model import LensModel

    yy, xx = np.mgrid[-40:41, -40:41] * 0.1
    kappa = LensModel(["SIE"]).kappa(xx.ravel(), yy.ravel(), [{"theta_E": 1.0, "e1": e1, "e2": e2, "center_x": 0.0, "center_y": 0.0}])
    r = np.hypot(xx.ravel(), yy.ravel())
    ring = (r > 0.5) & (r < 3.5)  # an isophote band of the convergence, away from the core
    level = np.median(kappa[ring])
    sel = ring & (np.abs(kappa - level) < 0.05 * level)
    return _pixel_angle_of_moments(xx.ravel()[sel], yy.ravel()[sel])


@pytest.mark.parametrize("e1, e2", [(0.3, 0.0), (0.0, 0.3), (-0.2, 0.15)])
def test_mass_angle_follows_a_tractor_ellipse_drawn_on_the_pixel_grid(e1, e2):
    x, y = _tractor_ellipse_in_pixels(e1, e2)
    light = _pixel_angle_of_moments(x, y)
    p1, p2 = tractor_to_pixel_ellipticity(e1, e2)
    mass = _lenstronomy_mass_angle(p1, p2)
    diff = abs((light - mass + 90) % 180 - 90)
    assert diff < 2.0, (light, mass)
    if (e1, e2) == (0.3, 0.0):
        assert abs((light - 90 + 90) % 180 - 90) < 1.0  # Tractor e1 > 0: elongated North-South = pixel y
    if (e1, e2) == (0.0, 0.3):
        assert abs((light - 135 + 90) % 180 - 90) < 1.0  # e2 > 0: PA 45 deg East of North = up-left with east left


def _reference_region_snr(arc: np.ndarray, var: np.ndarray, good: np.ndarray) -> float:
    """Independent implementation: scipy.ndimage.label with 4-connectivity (slsim's cross structure)."""
    snr = np.where(good, arc / np.sqrt(var), 0.0)
    labels, n = ndimage.label(good & (snr > 1.0), structure=ndimage.generate_binary_structure(2, 1))
    if n == 0:
        return 0.0
    idx = np.arange(1, n + 1)
    return float(np.max(ndimage.sum_labels(arc, labels, idx) / np.sqrt(ndimage.sum_labels(var, labels, idx))))


def test_region_snr_known_regions_and_diagonal_pair():
    arc = np.zeros((8, 8))
    var = np.ones((8, 8))
    good = np.ones((8, 8), bool)
    arc[2, 2] = arc[3, 3] = 3.0  # a diagonal pair: two regions of SNR 3 each, not one of 6/sqrt(2)
    best, region = region_snr(arc, var, good)
    assert best == pytest.approx(3.0) and region.sum() == 1
    arc[2, 3] = 3.0  # now an L of three 4-connected pixels: 9 / sqrt(3)
    best, region = region_snr(arc, var, good)
    assert best == pytest.approx(9 / math.sqrt(3)) and region.sum() == 3
    good[2, 3] = False  # a masked pixel breaks the region again
    assert region_snr(arc, var, good)[0] == pytest.approx(3.0)
    assert region_snr(np.zeros((8, 8)), var, good)[0] == 0.0


def test_region_snr_matches_scipy_reference_on_random_stamps():
    rng = np.random.default_rng(5)
    for _ in range(30):
        arc = np.clip(rng.normal(0.5, 1.0, (40, 40)), 0, None) * rng.uniform(0.5, 3)
        host = np.clip(rng.normal(2.0, 1.0, (40, 40)), 0, None)
        invvar = rng.uniform(0.5, 2.0, (40, 40))
        invvar[rng.random((40, 40)) < 0.05] = 0.0
        good = rng.random((40, 40)) > 0.05
        var = pixel_variance(arc, host, invvar, 3.0)
        ok = good & np.isfinite(var)
        ours, _ = region_snr(arc, var, good)
        assert ours == pytest.approx(_reference_region_snr(arc, np.where(ok, var, 1.0), ok), rel=1e-12)
        bound = snr_upper_bound(arc.sum(), float(np.square(arc).sum() / arc.sum() ** 2), 1.0, float(invvar.max()))
        assert ours <= bound + 1e-9


def test_compiled_band_region_snr_is_bit_identical_to_the_numpy_variance():
    """physics/trials.py takes the region SNR through band_region_snr (the variance in one compiled
    pass): the same bits as pixel_variance + region_snr on float32 stamps with negative host and
    arc pixels, -0.0, zero invvar and bad pixels."""
    from darkhaloscope.physics.acceptance import band_region_snr

    rng = np.random.default_rng(8)
    for _ in range(40):
        arc = (rng.normal(0.3, 1.0, (64, 64)) * rng.uniform(0.1, 3)).astype(np.float32)
        host = rng.normal(0.5, 1.0, (64, 64)).astype(np.float32)
        arc[:2, :2], host[:2, :2] = -0.0, -0.0
        invvar = rng.uniform(0.5, 2.0, (64, 64)).astype(np.float32)
        invvar[rng.random((64, 64)) < 0.05] = 0.0
        good = rng.random((64, 64)) > 0.05
        sky = float(rng.uniform(0.1, 3.0))
        want, want_region = region_snr(arc, pixel_variance(arc, host, invvar, sky), good)
        got, got_region = band_region_snr(arc, host, invvar, sky, good)
        assert np.float64(got).tobytes() == np.float64(want).tobytes()
        assert np.array_equal(got_region, want_region)


def test_variance_adds_host_and_arc_light_through_the_effective_gain():
    invvar, sky = np.full((2, 2), 4.0), 2.0
    v = pixel_variance(np.full((2, 2), 1.0), np.full((2, 2), 3.0), invvar, sky)
    assert v == pytest.approx(np.full((2, 2), 0.25 + 4.0 / 8.0))


@pytest.mark.parametrize("g1, g2", [(0.25, 0.0), (0.0, 0.25), (-0.1, -0.2)])
def test_synthetic_hosts_drawn_with_galsim_align_with_their_catalog_shape(g1, g2):
    """The synthetic sky draws a host with GalSim shear (g1, g2) on the pixel grid (x = column,
    y = row) and writes Tractor shape_e = -g (survey/synth_render.py): the mass made from that
    catalog shape must lie along the drawn galaxy."""
    import galsim

    img = galsim.Gaussian(sigma=1.0).shear(g1=g1, g2=g2).drawImage(nx=61, ny=61, scale=0.1).array
    yy, xx = np.mgrid[:61, :61]
    drawn = _pixel_angle_of_moments(xx.ravel().astype(float), yy.ravel().astype(float), img.ravel())
    p1, p2 = tractor_to_pixel_ellipticity(-g1, -g2)
    mass = _lenstronomy_mass_angle(p1, p2)
    assert abs((drawn - mass + 90) % 180 - 90) < 2.0, (drawn, mass)
