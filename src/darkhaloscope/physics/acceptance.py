"""Detectability of one injection at generation time: region SNR, the criteria, cheap bounds.

Region SNR (Holloway et al. 2023, MNRAS 525, 2341, sect. 2; as slsim ``Lens.snr``,
slsim/Lenses/lens.py, commit 47f9dd7, borrowed from mejiro): per-pixel SNR_i = a_i / sqrt(v_i);
pixels with SNR_i > 1 (strictly) form regions, connected through their 4 edge neighbours
(slsim's cross structure: a diagonal pair is two regions); each region scores
sum(a) / sqrt(sum(v)); the best region's score is the SNR (0.0 when no pixel exceeds 1). The
variance is that of the data the arc sits on (slsim: source + deflector + sky counts):

    v_i = 1 / invvar_i + (max(host_i, 0) + max(a_i, 0)) / g_i,   g_i = invvar_i * B   [nanomaggy^2]

with the coadd's invvar for the sky, and the host's light (the cutout image's positive part) and
the arc's own light as Poisson noise through the effective gain g of physics/noise.py (B: the
band's nominal sky level, nanomaggies per pixel). Only good pixels count: the caller passes a
boolean good-pixel mask (invvar > 0 and no bad maskbit), so the DR10 bad-bit policy lives in
one place.

The criteria (config section ``accept``, each 0 = off): total magnification of the unconvolved
lensed source (LensPop, Collett 2015, ApJ 811, 20, sect. 2.3: mu >= 3); region SNR in g and r,
their max >= 10; resolvability theta_E / sqrt(r_s^2 + (FWHM/2)^2) >= 1 (LensPop's theta_E^2 >
r_s^2 + (s/2)^2); arc-to-host contrast over the best g region.

Cheap rejections, exact: the region SNR of a band is at most sqrt(sum_i a_i^2 / v_i) (Cauchy-
Schwarz) <= F mu sqrt(min(sum(k^2), sum(u^2) / mu^2) * max(invvar)) where F mu is the band's lensed
flux, u the unconvolved lensed unit image (sum mu) and k the PSF (Young's inequality);
:func:`snr_upper_bound` decides from the unconvolved image, before the PSF convolution, whether
the SNR cut can pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from ..config import AcceptConfig


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _region_pass(arc, variance, good, threshold, stack, labels):
    """(best region SNR, its label) over 4-connected regions of good pixels with SNR > threshold."""
    s0, s1 = arc.shape
    for i in range(s0):
        for j in range(s1):
            labels[i, j] = 0
            v = variance[i, j]
            if good[i, j] and v > 0.0 and arc[i, j] / math.sqrt(v) > threshold:
                labels[i, j] = -1
    n = 0
    for i in range(s0):
        for j in range(s1):
            if labels[i, j] != -1:
                continue
            n += 1
            labels[i, j] = n
            stack[0, 0] = i
            stack[0, 1] = j
            top = 1
            while top > 0:
                top -= 1
                y = stack[top, 0]
                x = stack[top, 1]
                for k in range(4):
                    yy = y + (k == 0) - (k == 1)
                    xx = x + (k == 2) - (k == 3)
                    if 0 <= yy < s0 and 0 <= xx < s1 and labels[yy, xx] == -1:
                        labels[yy, xx] = n
                        stack[top, 0] = yy
                        stack[top, 1] = xx
                        top += 1
    if n == 0:
        return 0.0, 0
    sig = np.zeros(n + 1)
    var = np.zeros(n + 1)
    for i in range(s0):
        for j in range(s1):
            lab = labels[i, j]
            if lab > 0:
                sig[lab] += arc[i, j]
                var[lab] += variance[i, j]
    best, best_lab = -np.inf, 0
    for lab in range(1, n + 1):
        v = sig[lab] / math.sqrt(var[lab])
        if v > best:
            best, best_lab = v, lab
    return best, best_lab


def region_snr(arc: np.ndarray, variance: np.ndarray, good: np.ndarray, threshold: float = 1.0) -> tuple[float, np.ndarray]:
    """(best region SNR, boolean mask of that region) of one band.

    arc: noiseless arc [S, S] (nanomaggies); variance: per-pixel variance [S, S] (nanomaggy^2);
    good: boolean [S, S] good-pixel mask. 0.0 and an empty mask when no pixel exceeds ``threshold``.
    """
    a = np.ascontiguousarray(arc, np.float64)
    v = np.ascontiguousarray(variance, np.float64)
    g = np.ascontiguousarray(good, np.bool_)
    labels = np.empty(a.shape, np.int32)
    best, lab = _region_pass(a, v, g, float(threshold), np.empty((a.size, 2), np.int64), labels)
    return float(best), (labels == lab) if lab > 0 else np.zeros(a.shape, bool)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _variance_into(arc, host, invvar, sky, out):
    """out = :func:`pixel_variance` (same operations in the same order, float64; np.clip's
    NaN and signed-zero behaviour), without its temporaries."""
    s0, s1 = arc.shape
    for i in range(s0):
        for j in range(s1):
            iv = np.float64(invvar[i, j])
            if not iv > 0.0:
                out[i, j] = np.inf
                continue
            h = np.float64(host[i, j])
            a = np.float64(arc[i, j])
            h = h if (h > 0.0 or h != h) else 0.0
            a = a if (a > 0.0 or a != a) else 0.0
            out[i, j] = 1.0 / iv + (h + a) / (iv * sky)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _band_region(arc, host, invvar, sky, good, threshold, variance, stack, labels):
    """:func:`_variance_into` then :func:`_region_pass` in one call (arc read as float64 per
    pixel, exactly as a float64 copy would be)."""
    _variance_into(arc, host, invvar, sky, variance)
    return _region_pass(arc, variance, good, threshold, stack, labels)


def band_region_snr(arc: np.ndarray, host: np.ndarray, invvar: np.ndarray, sky_nmgy: float, good: np.ndarray,
                    threshold: float = 1.0) -> tuple[float, np.ndarray]:
    """``region_snr(arc, pixel_variance(arc, host, invvar, sky_nmgy), good)`` with the variance made
    in the same compiled call (identical bits, tested): the acceptance's per-band call (physics/trials.py).

    arc, host: [S, S] nanomaggies; invvar: [S, S] 1/nanomaggy^2; sky_nmgy: the band's sky level
    (nanomaggies per pixel); good: boolean [S, S]."""
    a = np.ascontiguousarray(arc)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    labels = np.empty(a.shape, np.int32)
    best, lab = _band_region(a, np.ascontiguousarray(host), np.ascontiguousarray(invvar), float(sky_nmgy),
                             np.ascontiguousarray(good, np.bool_), float(threshold), np.empty(a.shape),
                             np.empty((a.size, 2), np.int64), labels)
    return float(best), (labels == lab) if lab > 0 else np.zeros(a.shape, bool)


def pixel_variance(arc: np.ndarray, host: np.ndarray, invvar: np.ndarray, sky_nmgy: float) -> np.ndarray:
    """v = 1/invvar + (max(host, 0) + max(arc, 0)) / (invvar * sky) per pixel (nanomaggy^2); inf without data."""
    iv = np.asarray(invvar, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        light = np.clip(np.asarray(host, np.float64), 0.0, None) + np.clip(np.asarray(arc, np.float64), 0.0, None)
        v = np.where(iv > 0, 1.0 / iv + light / (iv * float(sky_nmgy)), np.inf)
    return v


def snr_upper_bound(lensed_flux: float, unit_l2_fraction: float, psf_l2: float, invvar_max: float) -> float:
    """Upper bound (see module doc) on any region SNR of a band whose lensed flux in the stamp is
    ``lensed_flux`` (nanomaggies). ``unit_l2_fraction`` = sum(u^2) / sum(u)^2 of the unconvolved
    lensed image u, ``psf_l2`` = sum(k^2) of the unit-sum PSF kernel k (1 / its effective area),
    ``invvar_max`` (1/nanomaggy^2). By Young's inequality sum((k*u)^2) <= min(sum(k^2) sum(u)^2,
    sum(u^2)), and v >= 1/invvar_max, so SNR^2 <= F^2 min(psf_l2, unit_l2_fraction) invvar_max."""
    if not lensed_flux > 0 or not invvar_max > 0 or not unit_l2_fraction > 0:
        return 0.0
    return float(lensed_flux * math.sqrt(min(unit_l2_fraction, psf_l2) * invvar_max))


def resolvability(theta_e: float, source_hlr: float, fwhm: float) -> float:
    """theta_E / sqrt(r_s^2 + (FWHM/2)^2) (all arcsec): >= 1 when LensPop's resolved-arc test passes."""
    return float(theta_e / math.sqrt(source_hlr**2 + (0.5 * fwhm) ** 2))


@dataclass(frozen=True)
class Criteria:
    """Every criterion's value for one try (None: not measured because a cheaper one failed)."""

    magnification: float | None = None
    snr_region_g: float | None = None
    snr_region_r: float | None = None
    resolvability: float | None = None
    contrast: float | None = None


def failure(c: Criteria, cfg: AcceptConfig, partial: bool = False) -> str | None:
    """Why a try fails the enabled criteria of ``cfg`` (None: it passes every one). ``partial``:
    judge only the criteria measured so far (a None value is not yet a failure)."""
    def missing(v) -> bool:
        return v is None and not partial

    if cfg.min_resolvability > 0 and (missing(c.resolvability) or (c.resolvability is not None and c.resolvability < cfg.min_resolvability)):
        return f"resolvability {c.resolvability} < {cfg.min_resolvability}"
    if cfg.min_magnification > 0 and (missing(c.magnification) or (c.magnification is not None and c.magnification < cfg.min_magnification)):
        return f"magnification {c.magnification} < {cfg.min_magnification}"
    values = [v for v in (c.snr_region_g, c.snr_region_r) if v is not None]
    if cfg.min_snr_region > 0 and (values or not partial) and max(values, default=-1.0) < cfg.min_snr_region:
        return f"region SNR max(g, r) {max(values, default=None)} < {cfg.min_snr_region}"
    if cfg.min_contrast > 0 and (missing(c.contrast) or (c.contrast is not None and c.contrast < cfg.min_contrast)):
        return f"arc/host contrast {c.contrast} < {cfg.min_contrast}"
    return None


def contrast(arc: np.ndarray, host: np.ndarray, region: np.ndarray) -> float | None:
    """sum(arc) / sum(max(host, 0)) over ``region`` (None for an empty region; inf over a dark host)."""
    if not region.any():
        return None
    # the region's pixels only, then float64 (exact), then max(., 0): np.clip's values and sum
    h = float(np.maximum(np.asarray(host)[region].astype(np.float64), 0.0).sum())
    a = float(np.asarray(arc)[region].astype(np.float64).sum())
    return a / h if h > 0 else math.inf
