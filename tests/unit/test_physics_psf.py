"""Moffat kernels against GalSim and against their own definition (FWHM, enclosed flux)."""

from __future__ import annotations

import galsim
import numpy as np
import pytest
from scipy.signal import fftconvolve

from darkhaloscope.physics.psf import convolve_bands, moffat_alpha, moffat_kernel

PIX = 0.262


@pytest.mark.parametrize("fwhm", [0.8, 1.1, 1.45, 2.2])
def test_kernel_equals_galsim_moffat(fwhm):
    k = moffat_kernel(fwhm, PIX, 3.5, 0.995, 63)
    n = k.shape[0]
    ref = galsim.Moffat(beta=3.5, fwhm=fwhm).drawImage(nx=n, ny=n, scale=PIX, method="no_pixel", dtype=np.float64).array
    assert np.allclose(k, ref / ref.sum(), rtol=1e-6, atol=1e-12)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("fwhm", [0.8, 1.1, 1.45, 2.2])
def test_measured_fwhm_within_one_percent(fwhm):
    """Half-maximum radius measured from the kernel's pixel values (all pixels, by radius)."""
    k = moffat_kernel(fwhm, PIX, 3.5, 0.995, 63)
    r0 = k.shape[0] // 2
    yy, xx = np.indices(k.shape)
    r = np.hypot(yy - r0, xx - r0).ravel()
    v = k.ravel() / k.max()
    order = np.argsort(r)
    r, v = r[order], v[order]
    i = np.flatnonzero(v < 0.5)[0]
    r_half = r[i - 1] + (0.5 - v[i - 1]) * (r[i] - r[i - 1]) / (v[i] - v[i - 1])
    assert abs(2 * r_half * PIX / fwhm - 1) < 0.01


@pytest.mark.parametrize("fwhm", [0.9, 1.6, 3.0])
def test_kernel_holds_the_required_flux(fwhm):
    """Sum of the un-normalised kernel x pixel area vs the analytic total pi alpha^2 / (beta - 1)."""
    beta = 3.5
    k = moffat_kernel(fwhm, PIX, beta, 0.995, 63)
    r0 = k.shape[0] // 2
    alpha = moffat_alpha(fwhm / PIX, beta)
    yy, xx = np.indices(k.shape) - r0
    raw = (1 + (xx**2 + yy**2) / alpha**2) ** (-beta)
    assert raw.sum() / (np.pi * alpha**2 / (beta - 1)) >= 0.995


def test_convolution_equals_scipy_fftconvolve():
    rng = np.random.default_rng(0)
    img = rng.random((64, 64))
    fwhms = [1.5, 1.3, 1.1]
    out = convolve_bands(img, fwhms, PIX)
    for b, f in enumerate(fwhms):
        ref = fftconvolve(img, moffat_kernel(f, PIX, 3.5, 0.995, 63), mode="same")
        assert np.allclose(out[b], ref, atol=1e-12)


def test_scaled_float32_output_equals_scaling_afterwards():
    """The ``scale`` path writes float32(convolved x scale) directly: the same bits."""
    img = np.zeros((64, 64))
    img[20:41, 25:37] = np.random.default_rng(1).random((21, 12))
    fwhms, flux = [1.7, 1.25, 0.95], [0.37, 2.5, 11.0]
    ref = (convolve_bands(img, fwhms, PIX) * np.array(flux)[:, None, None]).astype(np.float32)
    out = convolve_bands(img, fwhms, PIX, scale=flux)
    assert out.dtype == np.float32 and np.array_equal(out, ref)
    assert not convolve_bands(np.zeros((64, 64)), fwhms, PIX, scale=flux).any()


def test_small_arc_box_near_the_edge_equals_fftconvolve():
    """The FFT covers only the arc's box padded by the largest radius: check a box at the stamp
    corner with very different kernel radii (flux scattered off the stamp is lost in both)."""
    img = np.zeros((64, 64))
    img[0:5, 58:64] = np.random.default_rng(2).random((5, 6))
    fwhms = [2.6, 0.7]
    out = convolve_bands(img, fwhms, PIX)
    for b, f in enumerate(fwhms):
        ref = fftconvolve(img, moffat_kernel(f, PIX, 3.5, 0.995, 63), mode="same")
        assert np.allclose(out[b], ref, rtol=0, atol=1e-13 * ref.max())


def test_bad_fwhm_is_a_physics_error():
    from darkhaloscope.errors import PhysicsError

    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(PhysicsError):
            moffat_kernel(bad, PIX)


@pytest.mark.parametrize("beta", [2.5, 3.5, 4.765])
def test_moffat_for_dr10_psfsize_has_the_gaussian_neff(beta):
    """DR10 PSFSIZE = FWHM of the Gaussian with the PSF's Neff = 1/psfnorm^2: the Moffat drawn for a
    row must have that Neff. Checked against a numerical integral of the Moffat profile squared."""
    from scipy import integrate

    from darkhaloscope.physics.psf import gaussian_neff, moffat_alpha, moffat_fwhm_for_psfsize

    psfsize = 1.3  # arcsec
    fwhm = moffat_fwhm_for_psfsize(psfsize, beta)
    alpha = moffat_alpha(fwhm, beta)

    def profile(r):  # unnormalised Moffat
        return (1.0 + (r / alpha) ** 2) ** (-beta)

    flux = integrate.quad(lambda r: 2 * np.pi * r * profile(r), 0, np.inf)[0]
    sq = integrate.quad(lambda r: 2 * np.pi * r * profile(r) ** 2, 0, np.inf)[0]
    neff_numeric = flux**2 / sq
    sigma = psfsize / (2 * np.sqrt(2 * np.log(2)))
    assert neff_numeric == pytest.approx(4 * np.pi * sigma**2, rel=1e-7)
    assert gaussian_neff(psfsize) == pytest.approx(4 * np.pi * sigma**2, rel=1e-12)
    if beta == 3.5:  # the figure: FWHM = PSFSIZE would blur arcs ~23 % too much
        assert psfsize / fwhm == pytest.approx(1.2325, abs=5e-4)
    # the pixel-sampled kernel the arc is convolved with has that Neff too (sampling at 0.262" costs < 1 %)
    k = moffat_kernel(fwhm, 0.262, beta, 0.9999, 63)
    neff_kernel_arcsec2 = 1.0 / float((k**2).sum()) * 0.262**2
    assert neff_kernel_arcsec2 == pytest.approx(4 * np.pi * sigma**2, rel=0.01)


@pytest.mark.parametrize("psfsize", [0.9, 1.3, 2.0])
def test_pixel_integrated_moffat_has_the_neff_of_psfsize(psfsize):
    """DR10 measures Neff on the pixelised PSF: Moffat x pixel (GalSim drawImage) has it, 1.5 %
    (the box-variance approximation of the pixel is worst at the smallest PSF)."""
    from darkhaloscope.physics.psf import gaussian_neff, moffat_fwhm_for_psfsize

    fwhm = moffat_fwhm_for_psfsize(psfsize, 3.5, PIX)
    img = galsim.Moffat(beta=3.5, fwhm=fwhm).drawImage(nx=101, ny=101, scale=PIX, dtype=np.float64).array
    p = img / img.sum()
    assert 1.0 / float((p**2).sum()) * PIX**2 == pytest.approx(gaussian_neff(psfsize), rel=0.015)
