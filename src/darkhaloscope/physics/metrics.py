"""Per-injection arc metrics, computed on the noiseless arc over good pixels.

Good pixels: ``invvar > 0`` and none of the bad DR10 maskbits set (``survey.bad_maskbits``,
:func:`darkhaloscope.survey.maskbits.good_pixel_mask`; the seeds used ``maskbits == 0``). sigma = 1/sqrt(invvar +
1e-12) (nanomaggies) as in the seeds' ``compute_arc_snr``:

- ``arc_snr``: max over good pixels of arc / sigma (peak detectability);
- ``arc_snr_sum``: sum(arc) / sqrt(sum(1/invvar)) over good pixels (integrated);
- ``arc_snr_region``: Holloway et al. (2023) / slsim: 8-connected regions of good pixels with
  per-pixel SNR > 1; each region's sum(arc) / sqrt(sum(1/invvar)); the best region's value
  (0.0 when no pixel exceeds 1). The variance is the coadd's (sky), so the value is recomputable
  from the stored arrays alone.

Every function takes one band's 2-D arrays and returns None when there is no good pixel.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..survey.maskbits import DEFAULT_BAD_MASK, good_pixel_mask

_EIGHT = np.ones((3, 3), dtype=bool)


def good_pixels(invvar: np.ndarray, maskbits: np.ndarray, bad_mask: int = DEFAULT_BAD_MASK) -> np.ndarray:
    """Boolean mask of good pixels: invvar > 0 and no bit of ``bad_mask`` set in maskbits."""
    return good_pixel_mask(invvar, maskbits, bad_mask)


def arc_snr(arc: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, bad_mask: int = DEFAULT_BAD_MASK) -> float | None:
    """Max per-pixel SNR of the noiseless arc over good pixels (None without good pixels)."""
    good = good_pixels(invvar, maskbits, bad_mask)
    if not good.any():
        return None
    sigma = 1.0 / np.sqrt(np.asarray(invvar, np.float64)[good] + 1e-12)
    return float(np.max(np.asarray(arc, np.float64)[good] / sigma))


def arc_snr_sum(arc: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, bad_mask: int = DEFAULT_BAD_MASK) -> float | None:
    """Integrated SNR sum(arc) / sqrt(sum(1/invvar)) over good pixels (None without good pixels)."""
    good = good_pixels(invvar, maskbits, bad_mask)
    if not good.any():
        return None
    var_sum = float(np.sum(1.0 / np.asarray(invvar, np.float64)[good]))
    if not var_sum > 0:
        return None
    return float(np.sum(np.asarray(arc, np.float64)[good]) / np.sqrt(var_sum))


def arc_snr_region(arc: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, threshold: float = 1.0, bad_mask: int = DEFAULT_BAD_MASK) -> float | None:
    """SNR of the best 8-connected region of good pixels with per-pixel SNR > ``threshold``."""
    good = good_pixels(invvar, maskbits, bad_mask)
    if not good.any():
        return None
    arc = np.asarray(arc, np.float64)
    iv = np.asarray(invvar, np.float64)
    snr = np.zeros(arc.shape)
    snr[good] = arc[good] * np.sqrt(iv[good] + 1e-12)
    labels, n = ndimage.label(snr > threshold, structure=_EIGHT)
    if n == 0:
        return 0.0
    var = np.zeros(arc.shape)
    var[good] = 1.0 / iv[good]
    flat = labels.ravel()
    sig = np.bincount(flat, weights=arc.ravel(), minlength=n + 1)[1:]
    vs = np.bincount(flat, weights=var.ravel(), minlength=n + 1)[1:]
    return float(np.max(sig / np.sqrt(vs)))


def snr_metrics(arc: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, bad_mask: int = DEFAULT_BAD_MASK) -> tuple[float | None, float | None, float | None, str | None]:
    """(arc_snr, arc_snr_sum, arc_snr_region, reason): reason says why the SNRs are None."""
    if not good_pixels(invvar, maskbits, bad_mask).any():
        return None, None, None, "no good pixels (invvar > 0 and no bad maskbit) in the SNR band"
    return (arc_snr(arc, invvar, maskbits, bad_mask), arc_snr_sum(arc, invvar, maskbits, bad_mask),
            arc_snr_region(arc, invvar, maskbits, bad_mask=bad_mask), None)


def half_light_radius(image: np.ndarray, pixel_scale: float) -> float | None:
    """Half-light radius (arcsec) of an image around its own flux-weighted centroid.

    Uses the positive part of the image; the radius where the cumulative flux of pixels
    sorted by distance reaches half the total, interpolated linearly. None for zero flux.
    """
    img = np.clip(np.asarray(image, np.float64), 0.0, None)
    total = img.sum()
    if not total > 0:
        return None
    yy, xx = np.indices(img.shape)
    cy = (img * yy).sum() / total
    cx = (img * xx).sum() / total
    r = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(r, kind="stable")
    cum = np.cumsum(img.ravel()[order])
    k = int(np.searchsorted(cum, 0.5 * total))
    if k == 0:
        return float(r[order[0]] * pixel_scale)
    r0, r1 = r[order[k - 1]], r[order[k]]
    c0, c1 = cum[k - 1], cum[k]
    frac = (0.5 * total - c0) / (c1 - c0) if c1 > c0 else 0.0
    return float((r0 + frac * (r1 - r0)) * pixel_scale)
