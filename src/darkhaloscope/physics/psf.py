"""Moffat PSF kernels and per-band FFT convolution with cached kernel transforms.

I(r) = (1 + (r/alpha)^2)^(-beta), alpha = FWHM / (2 sqrt(2^(1/beta) - 1)), sampled at pixel
centres (the DR10 ``psfsize_*`` is the FWHM of the pixelised PSF), normalised to unit sum. The
kernel half-width R (pixels) is the radius enclosing ``flux_fraction`` of a continuous Moffat,
r = alpha sqrt((1 - f)^(1/(1-beta)) - 1), so the square kernel holds at least that fraction.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import fft as sfft

from ..errors import PhysicsError


def moffat_alpha(fwhm_pix: float, beta: float) -> float:
    """Moffat core radius alpha (pixels) of a profile with FWHM ``fwhm_pix`` (pixels)."""
    return fwhm_pix / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def kernel_radius(fwhm_pix: float, beta: float, flux_fraction: float) -> int:
    """Half-width R (pixels) of a kernel enclosing ``flux_fraction`` of the Moffat flux."""
    alpha = moffat_alpha(fwhm_pix, beta)
    r = alpha * math.sqrt((1.0 - flux_fraction) ** (1.0 / (1.0 - beta)) - 1.0)
    return max(1, int(math.ceil(r)))


def _check_fwhm(fwhm_arcsec: float) -> None:
    if not (isinstance(fwhm_arcsec, (int, float)) and math.isfinite(fwhm_arcsec) and fwhm_arcsec > 0):
        raise PhysicsError(f"PSF FWHM must be a positive finite number of arcsec, got {fwhm_arcsec!r}", field="psf_fwhm")


@functools.lru_cache(maxsize=512)
def moffat_kernel(fwhm_arcsec: float, pixel_scale: float, beta: float = 3.5, flux_fraction: float = 0.995, max_radius: int = 63) -> np.ndarray:
    """Unit-sum Moffat kernel, float64 [2R+1, 2R+1], centre at [R, R] (read-only, cached).

    fwhm_arcsec: FWHM (arcsec); pixel_scale: arcsec/pixel; R is capped at ``max_radius``
    (a 'same'-size convolution of an S-pixel stamp never uses more than S-1).
    """
    _check_fwhm(fwhm_arcsec)
    fwhm_pix = fwhm_arcsec / pixel_scale
    rad = min(kernel_radius(fwhm_pix, beta, flux_fraction), max_radius)
    alpha = moffat_alpha(fwhm_pix, beta)
    y, x = np.mgrid[-rad : rad + 1, -rad : rad + 1]
    k = (1.0 + (x * x + y * y) / alpha**2) ** (-beta)
    k /= k.sum()
    k.flags.writeable = False
    return k


@functools.lru_cache(maxsize=512)
def _kernel_rfft(fwhm_arcsec: float, pixel_scale: float, beta: float, flux_fraction: float, max_radius: int, nfft: int) -> np.ndarray:
    k = moffat_kernel(fwhm_arcsec, pixel_scale, beta, flux_fraction, max_radius)
    pad = np.zeros((nfft, nfft))
    pad[: k.shape[0], : k.shape[1]] = k
    out = sfft.rfft2(pad)
    out.flags.writeable = False
    return out


def convolve_bands(image: np.ndarray, fwhms_arcsec: list[float], pixel_scale: float, beta: float = 3.5, flux_fraction: float = 0.995) -> np.ndarray:
    """Convolve one [S, S] image with each band's Moffat: float64 [B, S, S] ('same' size).

    Linear (zero-padded) convolution through one shared FFT of the image and cached kernel
    transforms per (FWHM, FFT size); flux that the PSF scatters off the stamp is lost, as in a
    real cutout. The result equals ``scipy.signal.fftconvolve(image, kernel, mode="same")``.
    """
    s = image.shape[0]
    max_radius = s - 1
    radii = [moffat_kernel(float(f), pixel_scale, beta, flux_fraction, max_radius).shape[0] // 2 for f in fwhms_arcsec]
    nfft = sfft.next_fast_len(s + 2 * max(radii), real=True)
    pad = np.zeros((nfft, nfft))
    pad[:s, :s] = image
    spec = sfft.rfft2(pad)
    kspecs = np.stack([_kernel_rfft(float(f), pixel_scale, beta, flux_fraction, max_radius, nfft) for f in fwhms_arcsec])
    full = sfft.irfft2(spec[None] * kspecs, s=(nfft, nfft), axes=(-2, -1))
    return np.stack([full[b, r : r + s, r : r + s] for b, r in enumerate(radii)])
