"""Rendering against independent references: lenstronomy ImageModel, analytic SIS results."""

from __future__ import annotations

import numpy as np
import pytest

from darkhaloscope.config import Config
from darkhaloscope.physics.fastrender import render_unit_fast
from darkhaloscope.physics.params import LensParams
from darkhaloscope.physics.psf import convolve_bands, moffat_kernel
from darkhaloscope.physics.reference import cosmos_templates, galsim_templates, lenstronomy_arc
from darkhaloscope.physics.render import SourcePlacement, render_unit

PIX = 0.262
R = Config().render  # the production settings
SS = R.supersampling


@pytest.fixture(scope="module")
def templates(shared_data):
    """Four GalSim clumpy galaxies and seven real HST galaxies (with their noise)."""
    return np.concatenate([galsim_templates(4, seed=1), cosmos_templates(shared_data)])


def _production(*args, **kw) -> np.ndarray:
    """The renderer inject() uses: compiled, direction table, config ray spacing."""
    return render_unit_fast(*args, ray_spacing=R.ray_spacing, **kw)


def _gaussian_template(sigma_arcsec: float, n: int = 128, scale: float = 0.03) -> np.ndarray:
    c = (np.arange(n) - (n - 1) / 2) * scale
    g = np.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * sigma_arcsec**2))
    return (g / g.sum()).astype(np.float32)


def test_full_grid_equals_lenstronomy_imagemodel(templates):
    """Axes, rotation, flip and INTERPOL sampling: every pixel traced equals lenstronomy (1e-6)."""
    lens = LensParams(1.3, 0.12, -0.2, 0.03, -0.02, 0.06, -0.1)
    for flip in (False, True):
        src = SourcePlacement(0.31, -0.22, 123.0, flip, 0.03)
        ours = render_unit(templates[5], lens, src, 40, PIX, 3, mask=np.ones((40, 40), bool))
        ref = lenstronomy_arc(templates[5], lens, src, 40, PIX, 3)
        assert np.abs(ours - ref).max() <= 1e-6 * ref.max()


def test_flux_conservation_without_lens(templates):
    """theta_E -> 0: total arc flux (after the PSF) equals the source flux within 0.5 %."""
    lens = LensParams(1e-6)
    for t in templates:
        src = SourcePlacement(0.2, -0.1, 30.0, False, 0.03)
        for render in (render_unit, _production):
            arc = convolve_bands(render(t, lens, src, 64, PIX, SS, faint_supersampling=R.faint_supersampling, core_fraction=R.core_fraction), [1.2], PIX)[0]
            assert abs(arc.sum() / t.sum(dtype=np.float64) - 1) < 0.005


def test_sis_ring_radius():
    """A small round source behind an SIS: the ring's flux-weighted radius is theta_E (2 %)."""
    for theta_e in (0.8, 1.5, 2.3):
        lens = LensParams(theta_e, x=0.05, y=-0.03)
        img = render_unit(_gaussian_template(0.04), lens, SourcePlacement(lens.x, lens.y), 64, PIX, 8)
        c = (np.arange(64) - 31.5) * PIX
        r = np.hypot(c[None, :] - lens.x, c[:, None] - lens.y)
        assert abs((img * r).sum() / img.sum() / theta_e - 1) < 0.02


def test_sis_magnification_analytic():
    """A compact source at beta < theta_E behind an SIS: total magnification 2 theta_E / beta (2 %)."""
    theta_e = 1.6
    for beta in (0.25, 0.4, 0.8):
        src = SourcePlacement(beta * np.cos(0.7), beta * np.sin(0.7))
        t = _gaussian_template(0.02)
        img = render_unit(t, LensParams(theta_e), src, 64, PIX, 8)
        assert abs(img.sum() / t.sum(dtype=np.float64) / (2 * theta_e / beta) - 1) < 0.02


def test_random_configurations_against_lenstronomy_ss16(templates):
    """The production renderer on 100 random lenses / sources / PSFs: p99 of the max pixel error (fraction of the peak) of the
    PSF-convolved arc against lenstronomy ImageModel at ss=16 is <= 1 %, flux p90 <= 0.5 %.
    (A 40-pixel stamp keeps the converged reference affordable; both sides use it.)"""
    rng = np.random.default_rng(2024)
    size, errs, flux_errs = 40, [], []
    for _ in range(100):
        th = rng.uniform(0.5, 2.5)
        e, pe, g, pg = rng.uniform(0, 0.5), rng.uniform(0, np.pi), rng.uniform(0, 0.05), rng.uniform(0, np.pi)
        lens = LensParams(th, e * np.cos(2 * pe), e * np.sin(2 * pe), g * np.cos(2 * pg), g * np.sin(2 * pg), *rng.uniform(-0.13, 0.13, 2))
        r, a = 0.5 * th * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        src = SourcePlacement(lens.x + r * np.cos(a), lens.y + r * np.sin(a), rng.uniform(0, 360), bool(rng.integers(2)), 0.03)
        t = templates[rng.integers(len(templates))]
        fwhm = rng.uniform(0.9, 1.8)
        ours = convolve_bands(_production(t, lens, src, size, PIX, SS, faint_supersampling=R.faint_supersampling, core_fraction=R.core_fraction), [fwhm], PIX)[0]
        ref = lenstronomy_arc(t, lens, src, size, PIX, 16, kernel=moffat_kernel(fwhm, PIX, max_radius=size - 1))
        errs.append(np.abs(ours - ref).max() / ref.max())
        flux_errs.append(abs(ours.sum() / ref.sum() - 1))
    assert np.percentile(errs, 99) <= 0.01, np.percentile(errs, [50, 90, 99])
    assert np.percentile(flux_errs, 90) <= 0.005
