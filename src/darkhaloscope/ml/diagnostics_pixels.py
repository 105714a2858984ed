"""Pixel-statistics diagnostics of image groups (failure analysis sections 3.3-3.6): central
brightness, outer background, normalisation parameters and region flux, r band, nanomaggies
(raw) or normalised units. No model needed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .diagnostics_base import (
    Diagnostic,
    _as_images,
    _fig,
    _save,
    band_index,
    central_max,
    radius_map,
)
from .normalize import MAD_TO_SIGMA, normalize, outer_mask, outer_median_mad

REGIONS = {"centre": (0.0, 8.0), "inner_ring": (8.0, 16.0), "outer_ring": (16.0, 24.0)}


def _groups(groups: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: _as_images(v) for k, v in groups.items() if v is not None and len(v)}
    if not out:
        raise ConfigError("no non-empty image group given", field="groups")
    return out


def central_brightness(groups: Mapping[str, np.ndarray], bands: str = "grz",
                       out_dir: str | Path | None = None, name: str = "central_brightness") -> Diagnostic:
    """Central r_max (nanomaggies) per group (e.g. training positives / negatives / anchors):
    mean, std, median, n. The seeds' training LRGs were 9x brighter than their anchors."""
    b = band_index(bands)
    vals = {k: central_max(v, b).astype(float) for k, v in _groups(groups).items()}
    nums = {k: {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)), "n": len(v)} for k, v in vals.items()}
    d = Diagnostic(name, nums)
    plt, path = _fig(out_dir, name)
    if plt is None:
        return d
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    allv = np.concatenate(list(vals.values()))
    lo, hi = np.percentile(allv, [0.5, 99.5])
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 40)
    for k, v in vals.items():
        ax.hist(v, bins=bins, histtype="step", density=True, label=f"{k} (median {np.median(v):.3g})")
    ax.set(xlabel="central 8x8 r-band max [nMgy]", ylabel="density")
    ax.legend(fontsize=7)
    d.figure = _save(plt, fig, path)
    return d


def outer_background(groups: Mapping[str, np.ndarray], bands: str = "grz", inner_frac: float = 0.5,
                     out_dir: str | Path | None = None, name: str = "outer_background") -> Diagnostic:
    """Outer-annulus (r > inner_frac * S/2) r-band statistics per group, nanomaggies: mean of the
    per-stamp means, mean of the per-stamp standard deviations, and their spreads."""
    b = band_index(bands)
    nums, per = {}, {}
    for k, v in _groups(groups).items():
        outer = v[:, b][:, outer_mask(v.shape[-1], inner_frac)]
        m, s = outer.mean(axis=1), outer.std(axis=1)
        per[k] = (m, s)
        nums[k] = {"outer_mean": float(m.mean()), "outer_mean_std": float(m.std()), "outer_std": float(s.mean()),
                   "outer_std_std": float(s.std()), "n": int(len(v))}
    d = Diagnostic(name, nums)
    plt, path = _fig(out_dir, name)
    if plt is None:
        return d
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for k, (m, s) in per.items():
        ax.scatter(m, s, s=6, label=k, alpha=0.6)
    ax.set(xlabel="outer-annulus mean [nMgy]", ylabel="outer-annulus std [nMgy]")
    ax.legend(fontsize=7)
    d.figure = _save(plt, fig, path)
    return d


def normalisation_parameters(groups: Mapping[str, np.ndarray], bands: str = "grz", normalization: str = "outer_mad",
                             clip: float = 10.0, out_dir: str | Path | None = None,
                             name: str = "normalisation_parameters") -> Diagnostic:
    """Per group, r band: outer median, outer MAD, scale = 1.4826 MAD + 1e-6 (nanomaggies), the
    normalised central max and the fraction of stamps whose centre hits the clip (the seeds'
    training positives sat at the clip value 10.00)."""
    b = band_index(bands)
    nums, per = {}, {}
    for k, v in _groups(groups).items():
        med, mad = outer_median_mad(v)
        z = normalize(v, normalization, clip)
        cmax = central_max(z, b)
        scale = MAD_TO_SIGMA * mad[:, b, 0, 0] + 1e-6
        per[k] = cmax
        nums[k] = {"outer_median": float(np.median(med[:, b])), "outer_mad": float(np.median(mad[:, b])),
                   "scale": float(np.median(scale)), "centre_max_normalised_mean": float(cmax.mean()),
                   "frac_centre_clipped": float((cmax >= clip - 1e-6).mean()), "n": int(len(v))}
    d = Diagnostic(name, {"normalization": normalization, "clip": clip, "groups": nums})
    plt, path = _fig(out_dir, name)
    if plt is None:
        return d
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for k, c in per.items():
        ax.hist(c, bins=np.linspace(min(c.min(), 0), clip + 0.5, 30), histtype="step", density=True, label=k)
    ax.set(xlabel=f"normalised central max ({normalization}, clip {clip:g})", ylabel="density")
    ax.legend(fontsize=7)
    d.figure = _save(plt, fig, path)
    return d


def region_flux(groups: Mapping[str, np.ndarray], bands: str = "grz", normalization: str = "outer_mad", clip: float = 10.0,
                out_dir: str | Path | None = None, name: str = "region_flux") -> Diagnostic:
    """Mean normalised r-band flux in the centre / inner ring / outer ring (REGIONS, pixels) per
    group, plus the mean radial profile in the figure. The seeds' training stamps: 3.57 / 1.05 /
    0.03; their anchors did not look like that."""
    b = band_index(bands)
    nums, prof = {}, {}
    for k, v in _groups(groups).items():
        z = normalize(v, normalization, clip)[:, b]
        r = radius_map(v.shape[-1])
        nums[k] = {reg: float(z[:, (r >= lo) & (r < hi)].mean()) for reg, (lo, hi) in REGIONS.items()}
        nums[k]["n"] = int(len(v))
        edges = np.arange(0, v.shape[-1] / 2 + 1, 2.0)
        prof[k] = (edges[:-1] + 1, [float(z[:, (r >= a) & (r < c)].mean()) for a, c in zip(edges[:-1], edges[1:], strict=True)])
    d = Diagnostic(name, {"normalization": normalization, "groups": nums})
    plt, path = _fig(out_dir, name)
    if plt is None:
        return d
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for k, (x, y) in prof.items():
        ax.plot(x, y, label=k)
    for _lo, hi in REGIONS.values():
        ax.axvline(hi, color="0.7", lw=0.8)
    ax.set(xlabel="radius [pix]", ylabel="mean normalised r flux")
    ax.legend(fontsize=7)
    d.figure = _save(plt, fig, path)
    return d
