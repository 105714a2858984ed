"""Diagnostics that score altered stamps with a model: synthetic rings (failure analysis
section 3.2) and arc suppression (injections scored with their arc subtracted or replaced).
Images in nanomaggies, radii in pixels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .diagnostics_base import (
    PIXSCALE,
    Diagnostic,
    Scorer,
    _as_images,
    _fig,
    _save,
    _score,
    radius_map,
)


# ------------------------------------------------------------------ 3.2 synthetic rings
def add_ring(images: np.ndarray, radius: float, amplitude: float, width: float = 20.0) -> np.ndarray:
    """Images + amplitude * exp(-(r - radius)^2 / width) in every band (the seeds' ring:
    radius in pixels, ``width`` in pixel^2 as they wrote it, amplitude in nanomaggies/pixel)."""
    x = _as_images(images)
    ring = amplitude * np.exp(-((radius_map(x.shape[-1]) - radius) ** 2) / width)
    return (x + ring.astype(np.float32)).astype(np.float32)


def ring_test(scorer: Scorer, images: np.ndarray, metadata: Mapping[str, np.ndarray],
              radii_pix: Sequence[float] = (2, 4, 6, 8, 10, 15, 20, 25),
              amplitudes: Sequence[float] = (0.0025, 0.005, 0.01, 0.02),
              theta_e_range: tuple[float, float] = (0.5, 2.5), width: float = 20.0,
              pixscale: float = PIXSCALE, threshold: float = 0.5,
              out_dir: str | Path | None = None, name: str = "ring_test") -> Diagnostic:
    """Score the stamps with a synthetic ring swept over radius and amplitude.

    Table rows: radius (pixels, arcsec), amplitude (nMgy/pixel and in units of the stamps'
    median r-band pixel sigma), mean p, fraction p > threshold, mean change from the ring-free
    score, and ``in_training_range`` (radius within the training theta_E range). The summary
    says whether the finder fires (mean fraction > 0.5) at radii OUTSIDE that range, where no
    training lens has its arcs: a lens finder should not; a ring detector does.
    """
    x = _as_images(images)
    base = _score(scorer, x, metadata)
    iv_sigma = float(np.median(1.4826 * np.median(np.abs(x[:, 1] - np.median(x[:, 1], axis=(1, 2), keepdims=True)), axis=(1, 2))))
    rows = []
    for r in radii_pix:
        for a in amplitudes:
            p = _score(scorer, add_ring(x, r, a, width), metadata)
            r_as = r * pixscale
            rows.append({
                "radius_pix": float(r), "radius_arcsec": float(r_as), "amplitude_nmgy": float(a),
                "amplitude_sigma": float(a / iv_sigma) if iv_sigma > 0 else None,
                "mean_p": float(p.mean()), "frac_above": float((p > threshold).mean()),
                "mean_delta_p": float((p - base).mean()),
                "in_training_range": bool(theta_e_range[0] <= r_as <= theta_e_range[1]),
            })
    inside = [r for r in rows if r["in_training_range"]]
    outside = [r for r in rows if not r["in_training_range"]]
    nums = {
        "base_mean_p": float(base.mean()), "base_frac_above": float((base > threshold).mean()), "n": int(len(x)),
        "threshold": threshold, "theta_e_range_arcsec": list(theta_e_range),
        "max_frac_above_inside": max((r["frac_above"] for r in inside), default=None),
        "max_frac_above_outside": max((r["frac_above"] for r in outside), default=None),
        "fires_outside_training_range": any(r["frac_above"] > 0.5 for r in outside),
    }
    d = Diagnostic(name, nums, table=rows)
    plt, path = _fig(out_dir, name)
    if plt is None:
        return d
    grid = np.array([[r["frac_above"] for r in rows if r["radius_pix"] == rad] for rad in radii_pix])
    fig, ax = plt.subplots(figsize=(6, 4))
    im = ax.imshow(grid.T, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(radii_pix)), [f"{r:g}\n{r * pixscale:.1f}\"" for r in radii_pix])
    ax.set_yticks(range(len(amplitudes)), [f"{a:g}" for a in amplitudes])
    lo, hi = (t / pixscale for t in theta_e_range)
    inside_idx = [i for i, r in enumerate(radii_pix) if lo <= r <= hi]
    if inside_idx:
        ax.axvspan(min(inside_idx) - 0.5, max(inside_idx) + 0.5, fill=False, edgecolor="w", lw=2, ls="--")
    ax.set(xlabel="ring radius [pix / arcsec] (dashed: training theta_E range)", ylabel="amplitude [nMgy/pix]",
           title=f"fraction p > {threshold} with a synthetic ring (base {nums['base_frac_above']:.2f})")
    fig.colorbar(im, ax=ax)
    d.figure = _save(plt, fig, path)
    return d


# ------------------------------------------------------------------ arc suppression
def subtract_arcs(images: np.ndarray, arcs: np.ndarray) -> np.ndarray:
    """Injections with their noiseless arc (``arc_npz``) subtracted: host + sky + the arc's
    own Poisson noise remain (nanomaggies)."""
    x, a = _as_images(images), _as_images(arcs)
    if x.shape != a.shape:
        raise ConfigError(f"arcs shape {a.shape} differs from images {x.shape}", field="arcs")
    return (x - a).astype(np.float32)


def replace_arc_pixels(images: np.ndarray, arcs: np.ndarray, donors: np.ndarray, invvar: np.ndarray | None = None,
                       nsigma: float = 1.0) -> np.ndarray:
    """Injections whose arc pixels (arc > nsigma per-pixel sigma in any band, or > 1 % of the
    arc peak without invvar) are replaced by the matched control's (``donors``) pixels."""
    x, a, dn = _as_images(images), _as_images(arcs), _as_images(donors)
    if not (x.shape == a.shape == dn.shape):
        raise ConfigError("images, arcs and donors must share one shape", field="donors")
    if invvar is not None:
        sig = np.where(invvar > 0, 1.0 / np.sqrt(np.maximum(invvar, 1e-30)), np.inf)
        mask = (a > nsigma * sig).any(axis=1)
    else:
        peak = a.reshape(len(a), -1).max(axis=1)[:, None, None]
        mask = (a > 0.01 * peak[:, None]).any(axis=1)
    out = x.copy()
    m = np.broadcast_to(mask[:, None], x.shape)
    out[m] = dn[m]
    return out


def arc_suppression_test(scorer: Scorer, images: np.ndarray, metadata: Mapping[str, np.ndarray], arcs: np.ndarray,
                         donors: np.ndarray | None = None, invvar: np.ndarray | None = None, threshold: float = 0.5,
                         out_dir: str | Path | None = None, name: str = "arc_suppression") -> Diagnostic:
    """Score injections with and without their arc. The score of a finder that sees the arc
    must fall; if it does not, it scores the host. Mode ``subtract`` (arc_npz subtracted) or,
    with ``donors`` (matched controls' pixels), ``replace``."""
    x = _as_images(images)
    suppressed = subtract_arcs(x, arcs) if donors is None else replace_arc_pixels(x, arcs, donors, invvar)
    p0 = _score(scorer, x, metadata)
    p1 = _score(scorer, suppressed, metadata)
    nums = {"mode": "subtract" if donors is None else "replace", "n": int(len(x)),
            "mean_p_with_arc": float(p0.mean()), "mean_p_without_arc": float(p1.mean()),
            "median_drop": float(np.median(p0 - p1)), "frac_score_fell": float((p1 < p0).mean()),
            "recall_with_arc": float((p0 > threshold).mean()), "recall_without_arc": float((p1 > threshold).mean()),
            "score_falls": bool(p1.mean() < p0.mean())}
    d = Diagnostic(name, nums)
    plt, path = _fig(out_dir, name)
    if plt is None:
        return d
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.scatter(p0, p1, s=8)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="p with arc", ylabel=f"p arc {'subtracted' if donors is None else 'replaced'}",
           title=f"mean {p0.mean():.3f} -> {p1.mean():.3f}")
    d.figure = _save(plt, fig, path)
    return d
