"""Moffat PSF kernels and per-band convolution: one real FFT of the arc's box, kernel transforms as cosine transforms.

I(r) = (1 + (r/alpha)^2)^(-beta), alpha = FWHM / (2 sqrt(2^(1/beta) - 1)), sampled at pixel
centres, normalised to unit sum. The kernel half-width R (pixels) is the radius enclosing ``flux_fraction`` of a continuous Moffat,
r = alpha sqrt((1 - f)^(1/(1-beta)) - 1), so the square kernel holds at least that fraction.

DR10's ``PSFSIZE`` (catalogue ``psfsize_*`` and the psfsize maps) is NOT a Moffat FWHM: it is the
FWHM of the Gaussian with the same effective area Neff = 1 / psfnorm^2 as the PSF (legacypipe
``py/legacypipe/coadds.py``, psfsize from psfnorm; DR10 catalogue documentation, PSFSIZE). A
Moffat's Neff is pi alpha^2 (2 beta - 1) / (beta - 1)^2, a Gaussian's 4 pi sigma^2, so a Moffat
with the Neff of PSFSIZE has FWHM = PSFSIZE x :func:`moffat_fwhm_per_psfsize` (0.811 at beta =
3.5: drawing FWHM = PSFSIZE would blur arcs ~23 % too much). :func:`moffat_fwhm_for_psfsize`
converts (taking the pixel's share out when the image it blurs is pixel-integrated); callers pass
the result as the kernel FWHM.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict

import numba
import numpy as np
from scipy import fft as sfft

from ..errors import PhysicsError


def moffat_alpha(fwhm_pix: float, beta: float) -> float:
    """Moffat core radius alpha (pixels) of a profile with FWHM ``fwhm_pix`` (pixels)."""
    return fwhm_pix / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


GAUSS_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548


def moffat_neff(fwhm: float, beta: float) -> float:
    """Effective area Neff = 1 / integral(I^2) of a unit-flux continuous Moffat of FWHM ``fwhm``
    (same units squared as ``fwhm``): pi alpha^2 (2 beta - 1) / (beta - 1)^2, beta > 1."""
    alpha = moffat_alpha(fwhm, beta)
    return math.pi * alpha * alpha * (2.0 * beta - 1.0) / (beta - 1.0) ** 2


def gaussian_neff(fwhm: float) -> float:
    """Effective area 4 pi sigma^2 of a Gaussian of FWHM ``fwhm`` (same units squared)."""
    sigma = fwhm / GAUSS_FWHM_PER_SIGMA
    return 4.0 * math.pi * sigma * sigma


def moffat_fwhm_per_psfsize(beta: float) -> float:
    """Moffat FWHM / DR10 PSFSIZE for equal Neff: sqrt(gaussian_neff(1) / moffat_neff(1, beta))."""
    if not beta > 1.0:
        raise PhysicsError(f"Moffat beta must exceed 1 for a finite effective area, got {beta!r}", field="render.moffat_beta")
    return math.sqrt(gaussian_neff(1.0) / moffat_neff(1.0, beta))


def moffat_fwhm_for_psfsize(psfsize: float, beta: float, pixel_scale: float = 0.0) -> float:
    """FWHM (arcsec) of the Moffat with the effective area of a DR10 PSFSIZE (arcsec).

    DR10 measures Neff on the pixelised PSF. When the Moffat is applied to an image that is
    already pixel-integrated (the arc render; GalSim's drawImage), give ``pixel_scale``
    (arcsec/pixel): the pixel's own share of the area (pi p^2 / 3, a box's variance p^2/12 per
    axis) is taken out first, so Moffat x pixel has the Neff of PSFSIZE (to < 1.5 % for PSFSIZE >= 0.9",
    tested).
    """
    sigma2 = (float(psfsize) / GAUSS_FWHM_PER_SIGMA) ** 2 - float(pixel_scale) ** 2 / 12.0
    if not sigma2 > 0:
        raise PhysicsError(f"PSFSIZE {psfsize!r} arcsec is not larger than a {pixel_scale} arcsec pixel", field="psf_fwhm")
    return math.sqrt(sigma2) * GAUSS_FWHM_PER_SIGMA * moffat_fwhm_per_psfsize(beta)


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


@numba.njit(cache=True, nogil=True, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _nonzero_box(image):
    """(r0, r1, c0, c1): half-open bounding box of the non-zero pixels of a 2-D image; r1 = 0
    when it is all zero (one pass, no temporaries)."""
    s0, s1 = image.shape
    r0, r1, c0, c1 = s0, 0, s1, 0
    for i in range(s0):
        for j in range(s1):
            if image[i, j] != 0.0:
                r0 = min(r0, i)
                r1 = i + 1
                c0 = min(c0, j)
                c1 = max(c1, j + 1)
    return r0, r1, c0, c1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _moffat_quadrants(radii, alphas, beta, q):
    """q[b, a, c] = unit-sum Moffat of band b at offset (a, c) pixels, a, c <= radii[b] (zero
    beyond), times the multiplicity of the offset in the (2R+1)^2 kernel (1 at 0, else 2 per
    axis): the kernel's quarter folded onto itself, what its cosine transform needs."""
    for b in range(q.shape[0]):
        rad = radii[b]
        a2 = alphas[b] * alphas[b]
        total = 0.0
        for y in range(rad + 1):
            wy = 1.0 if y == 0 else 2.0
            for x in range(rad + 1):
                v = wy * (1.0 if x == 0 else 2.0) * (1.0 + (x * x + y * y) / a2) ** (-beta)
                q[b, y, x] = v
                total += v
        for y in range(rad + 1):
            for x in range(rad + 1):
                q[b, y, x] /= total


_COS: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()


def _cos_tables(n_rows: int, n_cols: int, rad: int) -> tuple[np.ndarray, np.ndarray]:
    """(cos(2 pi ky a / n_rows) [n_rows, rad+1], cos(2 pi b kx / n_cols) [rad+1, n_cols//2+1]):
    geometry only (no FWHM), so a small LRU hits almost always."""
    key = (n_rows, n_cols, rad)
    hit = _COS.get(key)
    if hit is None:
        a = np.arange(rad + 1)
        cy = np.cos((2.0 * np.pi / n_rows) * np.outer(np.arange(n_rows), a))
        cx = np.cos((2.0 * np.pi / n_cols) * np.outer(a, np.arange(n_cols // 2 + 1)))
        hit = _COS[key] = (cy, cx)
        if len(_COS) > 64:
            _COS.popitem(last=False)
    else:
        _COS.move_to_end(key)
    return hit


def convolve_bands(
    image: np.ndarray, fwhms_arcsec: list[float], pixel_scale: float, beta: float = 3.5, flux_fraction: float = 0.995,
    scale: list[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Convolve one [S, S] image with each band's Moffat: float64 [B, S, S] ('same' size), or,
    with ``scale`` (one factor per band, e.g. the band fluxes in nanomaggies), float32 [B, S, S]
    of ``float32(convolved x scale[b])`` (as scaling and casting afterwards, without the
    float64 temporaries).

    Linear (zero-padded) convolution through one real FFT of the image's non-zero bounding box
    (an arc rarely fills the stamp) padded by the largest kernel radius, times the bands' kernel
    transforms; flux that the PSF scatters off the stamp is lost, as in a real cutout. A Moffat
    is even in x and in y, so, centred on the origin, its transform is real and is a cosine
    transform of one folded quarter: two small matrix products per band instead of an FFT (the
    FWHM differs per task, so a cache of kernel transforms would rarely hit). The result equals
    ``scipy.signal.fftconvolve(image, moffat_kernel(...), mode="same")`` to rounding (tested to
    1e-12 of the image's peak).
    """
    s = image.shape[0]
    nb = len(fwhms_arcsec)
    out = np.zeros((nb, s, s), np.float64 if scale is None else np.float32)
    for f in fwhms_arcsec:
        _check_fwhm(f)
    fwhm_pix = [float(f) / pixel_scale for f in fwhms_arcsec]
    radii = [min(kernel_radius(fp, beta, flux_fraction), s - 1) for fp in fwhm_pix]
    r0, r1, c0, c1 = _nonzero_box(np.ascontiguousarray(image))
    if r1 == 0:
        return out
    pad = max(radii)
    shape = (sfft.next_fast_len(r1 - r0 + 2 * pad, real=True), sfft.next_fast_len(c1 - c0 + 2 * pad, real=True))
    # the image box at offset (pad, pad): with the kernels centred on the origin, buffer pixel
    # (u, v) is stamp pixel (r0 - pad + u, c0 - pad + v) in every band, and the linear
    # convolution (support box + 2 R <= shape) never wraps
    buf = np.zeros(shape)
    buf[pad : pad + r1 - r0, pad : pad + c1 - c0] = image[r0:r1, c0:c1]
    q = np.zeros((nb, pad + 1, pad + 1))
    _moffat_quadrants(np.array(radii, np.int64), np.array([moffat_alpha(fp, beta) for fp in fwhm_pix]), float(beta), q)
    cy, cx = _cos_tables(shape[0], shape[1], pad)
    kspec = cy @ (q @ cx)  # [B, N, M//2+1]: real transforms of the centred kernels
    full = sfft.irfft2(sfft.rfft2(buf)[None] * kspec, s=shape)
    for b, rad in enumerate(radii):
        a0, a1 = max(0, r0 - rad), min(s, r1 + rad)
        b0, b1 = max(0, c0 - rad), min(s, c1 + rad)
        part = full[b, a0 - r0 + pad : a1 - r0 + pad, b0 - c0 + pad : b1 - c0 + pad]
        if scale is None:
            out[b, a0:a1, b0:b1] = part
        else:
            np.multiply(part, float(scale[b]), out=out[b, a0:a1, b0:b1], casting="same_kind")
    return out
