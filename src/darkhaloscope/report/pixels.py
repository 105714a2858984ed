"""Per-stamp measurements for the report: pure numpy functions on one stamp's arrays.

Units: ``image`` and ``arc`` in nanomaggies per pixel, ``invvar`` in 1/nanomaggy^2, radii in
arcsec from the stamp centre. A pixel is *good* when ``invvar > 0`` and none of the configured
bad DR10 maskbits is set (``survey.bad_maskbits``; ``survey.maskbits.good_pixel_mask``, DESIGN 3.3). Stored SNRs are measured in one band (r), as ``inject`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..survey.maskbits import DEFAULT_BAD_MASK, good_pixel_mask

BANDS = ("g", "r", "z")
_MAD_TO_SIGMA = 1.4826


def good_mask(invvar: np.ndarray, maskbits: np.ndarray, bad_mask: int = DEFAULT_BAD_MASK) -> np.ndarray:
    """Boolean [B,S,S]: ``invvar > 0`` and no bit of ``bad_mask`` set (maskbits [S,S] broadcast over bands)."""
    return good_pixel_mask(invvar, np.asarray(maskbits)[None, :, :], bad_mask)


def snr_band_index(bands: str) -> int:
    """Band the stored SNRs are measured in: r when present, else the first (as ``inject``)."""
    return bands.index("r") if "r" in bands else 0


def recompute_snr(arc: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, bad_mask: int = DEFAULT_BAD_MASK) -> tuple[float | None, float | None, float | None]:
    """(``arc_snr``, ``arc_snr_sum``, ``arc_snr_region``) of one band's noiseless arc [S,S]
    over its good pixels, in float64; all None when the band has no good pixel.

    ``arc_snr`` = max(arc * sqrt(invvar)); ``arc_snr_sum`` = sum(arc) / sqrt(sum(1 / invvar));
    ``arc_snr_region`` = the best 8-connected region of good pixels with per-pixel SNR > 1,
    scored as its own sum(arc) / sqrt(sum(1 / invvar)) (0 when no pixel exceeds 1).
    """
    good = good_pixel_mask(invvar, maskbits, bad_mask)
    if not good.any():
        return None, None, None
    a = arc.astype(np.float64)
    iv = invvar.astype(np.float64)
    snr_px = np.where(good, a * np.sqrt(np.where(good, iv, 0.0)), 0.0)
    var = np.where(good, 1.0 / np.where(good, iv, 1.0), 0.0)
    peak = float(snr_px[good].max())
    total = float(a[good].sum() / np.sqrt(var[good].sum()))
    labels, n = ndimage.label(good & (snr_px > 1.0), structure=np.ones((3, 3), bool))
    if n == 0:
        return peak, total, 0.0
    sig = ndimage.sum_labels(a, labels, index=np.arange(1, n + 1))
    vs = ndimage.sum_labels(var, labels, index=np.arange(1, n + 1))
    return peak, total, float(np.max(sig / np.sqrt(vs)))


def unmasked_peak_snr(arc: np.ndarray, invvar: np.ndarray) -> float:
    """Peak per-pixel SNR one band's arc [S,S] would have with no mask: pixels lacking invvar
    get the band's median positive invvar. Tells a masked arc (this >= 1) from a faint one."""
    iv = invvar.astype(np.float64)
    pos = iv[iv > 0]
    if pos.size == 0:
        return 0.0
    filled = np.where(iv > 0, iv, np.median(pos))
    return float(np.max(arc * np.sqrt(filled)))


@dataclass(frozen=True)
class StampGeometry:
    """Radial masks of an S x S stamp: ``outer`` (nuisance pixels, r >= r_outer arcsec) and
    ``central`` (r <= r_central arcsec), both [S,S] bool; ``radius`` [S,S] arcsec."""

    size: int
    pixel_scale: float
    r_outer: float
    r_central: float
    radius: np.ndarray
    outer: np.ndarray
    central: np.ndarray
    bad_mask: int = DEFAULT_BAD_MASK  # DR10 maskbits that make a pixel bad (survey.bad_maskbits)

    @classmethod
    def make(cls, size: int, pixel_scale: float, r_outer: float, r_central: float, bad_mask: int = DEFAULT_BAD_MASK) -> StampGeometry:
        c = (size - 1) / 2.0
        yy, xx = np.mgrid[0:size, 0:size]
        radius = np.hypot(xx - c, yy - c) * pixel_scale
        return cls(size, pixel_scale, r_outer, r_central, radius, radius >= r_outer, radius <= r_central, int(bad_mask))


def nuisance_features(image: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, geom: StampGeometry) -> dict[str, float]:
    """Features that must carry no information about the arc, from the outer annulus only.

    Per band: ``outer_median`` and ``outer_sigma`` (1.4826 MAD) of the image [nanomaggy],
    ``noise_invvar`` = 1/sqrt(median invvar) [nanomaggy], ``noise_ratio`` = outer_sigma /
    noise_invvar (1 when the pixels scatter as invvar says), ``outer_p99`` - ``outer_median``
    [nanomaggy]; and the stamp's masked-pixel fraction and non-finite pixel count. NaN where
    the annulus has no good pixel.
    """
    good = good_mask(invvar, maskbits, geom.bad_mask)
    out: dict[str, float] = {}
    nb = image.shape[0]
    for b in range(nb):
        name = BANDS[b] if nb == 3 else str(b)
        sel = geom.outer & good[b]
        if sel.sum() < 10:
            for key in ("outer_median", "outer_sigma", "noise_invvar", "noise_ratio", "outer_p99"):
                out[f"{key}_{name}"] = np.nan
            continue
        vals = image[b][sel].astype(np.float64)
        med = float(np.median(vals))
        sigma = _MAD_TO_SIGMA * float(np.median(np.abs(vals - med)))
        noise = 1.0 / np.sqrt(float(np.median(invvar[b][sel])))
        out[f"outer_median_{name}"] = med
        out[f"outer_sigma_{name}"] = sigma
        out[f"noise_invvar_{name}"] = noise
        out[f"noise_ratio_{name}"] = sigma / noise
        out[f"outer_p99_{name}"] = float(np.percentile(vals, 99)) - med
    out["masked_fraction"] = float(np.mean((np.asarray(maskbits).astype(np.int64) & geom.bad_mask) != 0))
    out["zero_invvar_fraction"] = float(np.mean(invvar <= 0))
    out["nonfinite_pixels"] = float(np.count_nonzero(~np.isfinite(image)))
    return out


def central_brightness(image: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, arc: np.ndarray | None, geom: StampGeometry) -> np.ndarray:
    """Host central brightness per band: mean of (image - arc) over good pixels within
    ``geom.r_central`` [nanomaggy/pixel]; NaN for a band without a good central pixel."""
    host = image.astype(np.float64)
    if arc is not None:
        host = host - arc
    good = good_mask(invvar, maskbits, geom.bad_mask) & geom.central[None]
    out = np.full(image.shape[0], np.nan)
    for b in range(image.shape[0]):
        if good[b].any():
            out[b] = float(host[b][good[b]].mean())
    return out


def arc_flux_fraction_beyond(arc: np.ndarray, geom: StampGeometry) -> float:
    """Fraction of the arc's total (all-band) flux at r >= r_outer: how clean the annulus is."""
    total = float(np.sum(arc, dtype=np.float64))
    if total <= 0:
        return 0.0
    return float(np.sum(arc[:, geom.outer], dtype=np.float64)) / total
