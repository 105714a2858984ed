"""Moffat PSF kernels and per-band FFT convolution with cached kernel transforms.

I(r) = (1 + (r/alpha)^2)^(-beta), alpha = FWHM / (2 sqrt(2^(1/beta) - 1)), sampled at pixel
centres (the DR10 ``psfsize_*`` is the FWHM of the pixelised PSF), normalised to unit sum. The
kernel half-width R (pixels) is the radius enclosing ``flux_fraction`` of a continuous Moffat,
r = alpha sqrt((1 - f)^(1/(1-beta)) - 1), so the square kernel holds at least that fraction.
"""

from __future__ import annotations

import functools
import math

import numba
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


@numba.njit(cache=True, nogil=True)
def _moffat_into(buf, rad, alpha, beta):
    """Write the unit-sum Moffat of half-width ``rad`` (pixels) into buf[:2rad+1, :2rad+1]
    (as :func:`moffat_kernel`, evaluated once per distinct radius: it is 8-fold symmetric)."""
    a2 = alpha * alpha
    total = 0.0
    for y in range(rad + 1):
        for x in range(y + 1):
            v = (1.0 + (x * x + y * y) / a2) ** (-beta)
            for yy in (rad - y, rad + y):
                for xx in (rad - x, rad + x):
                    buf[yy, xx] = v
                    buf[xx, yy] = v
    for y in range(2 * rad + 1):
        for x in range(2 * rad + 1):
            total += buf[y, x]
    for y in range(2 * rad + 1):
        for x in range(2 * rad + 1):
            buf[y, x] /= total


def convolve_bands(image: np.ndarray, fwhms_arcsec: list[float], pixel_scale: float, beta: float = 3.5, flux_fraction: float = 0.995) -> np.ndarray:
    """Convolve one [S, S] image with each band's Moffat: float64 [B, S, S] ('same' size).

    Linear (zero-padded) convolution through one FFT of the image's non-zero bounding box
    (an arc rarely fills the stamp) padded by the largest kernel radius, times the bands'
    kernel transforms in one batched FFT (the FWHM differs per task, so a cache of kernel
    transforms would rarely hit); flux that the PSF scatters off the stamp is lost, as in a real
    cutout. The result equals ``scipy.signal.fftconvolve(image, moffat_kernel(...), mode="same")``.
    """
    s = image.shape[0]
    nb = len(fwhms_arcsec)
    out = np.zeros((nb, s, s))
    for f in fwhms_arcsec:
        _check_fwhm(f)
    fwhm_pix = [float(f) / pixel_scale for f in fwhms_arcsec]
    radii = [min(kernel_radius(fp, beta, flux_fraction), s - 1) for fp in fwhm_pix]
    rows = np.flatnonzero(image.any(axis=1))
    if rows.size == 0:
        return out
    cols = np.flatnonzero(image.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    rmax = max(radii)
    shape = (sfft.next_fast_len(r1 - r0 + 2 * rmax, real=True), sfft.next_fast_len(c1 - c0 + 2 * rmax, real=True))
    kern = np.zeros((nb, *shape))
    for b, (fp, rad) in enumerate(zip(fwhm_pix, radii, strict=True)):
        _moffat_into(kern[b], rad, moffat_alpha(fp, beta), float(beta))
    spec = sfft.rfft2(image[r0:r1, c0:c1], s=shape)
    full = sfft.irfft2(sfft.rfft2(kern) * spec[None], s=shape)
    for b, rad in enumerate(radii):
        # full[b, u, v] is stamp pixel (r0 - rad + u, c0 - rad + v): keep what falls in the stamp
        a0, a1 = max(0, r0 - rad), min(s, r1 + rad)
        b0, b1 = max(0, c0 - rad), min(s, c1 + rad)
        out[b, a0:a1, b0:b1] = full[b, a0 - r0 + rad : a1 - r0 + rad, b0 - c0 + rad : b1 - c0 + rad]
    return out
