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


def test_bad_fwhm_is_a_physics_error():
    from darkhaloscope.errors import PhysicsError

    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(PhysicsError):
            moffat_kernel(bad, PIX)
