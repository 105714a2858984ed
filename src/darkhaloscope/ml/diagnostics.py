"""Shortcut diagnostics of a lens finder: the seeds' hand investigation (failure analysis
section 3) as functions, each returning numbers and (with ``out_dir``) writing a figure.

Every function that needs a model takes a *scorer*::

    scorer(images: float32 [N, B, S, S] nanomaggies, metadata: dict[str, float array [N]]) -> p [N]

so it runs with a trained model (``ml.predict.score_stamps``) or a hand-made function in tests.
Metadata must come from the stamps' own rows / catalogs (PSF FWHM, depth); the seeds ran their
ring test and anchor recall with metadata set to zero. :func:`check_metadata` refuses zeros.

Geometry follows the seeds: stamp centre at pixel (S/2, S/2) (32, 32 for 64x64), radii in
pixels; "central r_max" is the maximum of the r band in the central 8x8 box [28:36, 28:36];
regions: centre r < 8, inner ring 8 <= r < 16, outer ring 16 <= r < 24 pixels; the outer
annulus of the normalisation is ``ml.normalize.outer_mask`` (r > S/4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from ..errors import ConfigError
from .normalize import MAD_TO_SIGMA, normalize, outer_mask, outer_median_mad

Scorer = Callable[[np.ndarray, dict], np.ndarray]
PIXSCALE = 0.262  # arcsec / pixel
REGIONS = {"centre": (0.0, 8.0), "inner_ring": (8.0, 16.0), "outer_ring": (16.0, 24.0)}


@dataclass
class Diagnostic:
    """One diagnostic's outcome: ``name``, flat-ish ``numbers`` (JSON-able), ``figure`` path."""

    name: str
    numbers: dict
    figure: Path | None = None
    table: list[dict] = field(default_factory=list)


# ------------------------------------------------------------------ helpers
def _as_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
        raise ConfigError(f"images must be [N, B, S, S], got shape {x.shape}", field="images")
    return x


def radius_map(size: int, centre: float | None = None) -> np.ndarray:
    """Distance (pixels) of every pixel from the stamp centre (default S/2, the seeds')."""
    c = size / 2.0 if centre is None else centre
    y, x = np.mgrid[:size, :size]
    return np.hypot(y - c, x - c)


def band_index(bands: str, band: str = "r") -> int:
    """Channel of ``band`` in ``bands`` (falls back to the middle channel)."""
    return bands.index(band) if band in bands else len(bands) // 2


def central_max(images: np.ndarray, band: int = 1, box: int = 8) -> np.ndarray:
    """Max of one band in the central ``box`` x ``box`` pixels, per stamp (nanomaggies)."""
    x = _as_images(images)
    s = x.shape[-1]
    lo = s // 2 - box // 2
    return x[:, band, lo:lo + box, lo:lo + box].reshape(len(x), -1).max(axis=1)


def check_metadata(metadata: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Metadata as float arrays of length n; raises ConfigError on zeros, NaN or wrong length
    (an all-zero PSF column is the seeds' bug, not a value)."""
    out = {}
    for k, v in metadata.items():
        a = np.asarray(v, dtype=np.float32).reshape(-1)
        if len(a) != n:
            raise ConfigError(f"metadata {k!r} has {len(a)} values for {n} stamps", field=k)
        if not np.isfinite(a).all():
            raise ConfigError(f"metadata {k!r} holds NaN/inf; fill it from the catalogs first", field=k)
        if (k.startswith(("psf_fwhm", "psfdepth", "psfsize")) and (a <= 0).any()):
            raise ConfigError(f"metadata {k!r} holds zeros/negatives: PSF size and depth are never 0", field=k)
        out[k] = a
    return out


def _score(scorer: Scorer, images: np.ndarray, metadata: Mapping[str, np.ndarray], batch: int = 256) -> np.ndarray:
    x = _as_images(images)
    meta = check_metadata(metadata, len(x))
    out = []
    for i in range(0, len(x), batch):
        p = np.asarray(scorer(x[i:i + batch], {k: v[i:i + batch] for k, v in meta.items()}), dtype=np.float64).reshape(-1)
        if len(p) != len(x[i:i + batch]):
            raise ConfigError(f"scorer returned {len(p)} scores for {len(x[i:i + batch])} stamps", field="scorer")
        out.append(p)
    return np.concatenate(out) if out else np.zeros(0)


def _fig(out_dir: str | Path | None, name: str):
    if out_dir is None:
        return None, None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return plt, path


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _pearson(x: np.ndarray, y: np.ndarray) -> dict:
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return {"r": None, "p_value": None, "n": n}
    r, pv = stats.pearsonr(x[ok], y[ok])
    return {"r": float(r), "p_value": float(pv), "n": n}


# ------------------------------------------------------------------ 3.1 correlations
def score_correlations(p: np.ndarray, images: np.ndarray, theta_e: np.ndarray | None = None, bands: str = "grz",
                       out_dir: str | Path | None = None, name: str = "correlations") -> Diagnostic:
    """Pearson r of p_lens with theta_E (arcsec; where finite) and with central r_max
    (nanomaggies). A finder of lensing should correlate with theta_E; the seeds' had r = 0.02."""
    p = np.asarray(p, float)
    rmax = central_max(images, band_index(bands)).astype(float)
    te = np.full(len(p), np.nan) if theta_e is None else np.asarray(theta_e, float)
    nums = {"theta_e": _pearson(p, te), "central_r_max": _pearson(p, rmax)}
    plt, path = _fig(out_dir, name)
    if plt is None:
        return Diagnostic(name, nums)
    fig, ax = plt.subplots(1, 2, figsize=(8, 3.4))
    ax[0].scatter(te, p, s=8)
    ax[0].set(xlabel="theta_E [arcsec]", ylabel="p_lens", title=f"r = {nums['theta_e']['r']} (n={nums['theta_e']['n']})")
    ax[1].scatter(rmax, p, s=8)
    ax[1].set(xscale="symlog", xlabel="central r_max [nMgy]", ylabel="p_lens", title=f"r = {nums['central_r_max']['r']}")
    return Diagnostic(name, nums, _save(plt, fig, path))


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


# ------------------------------------------------------------------ 3.3-3.6 pixel statistics
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


# ------------------------------------------------------------------ 3.7 score vs arc_snr
def score_vs_arc_snr(p: np.ndarray, arc_snr: np.ndarray, is_injection: np.ndarray,
                     edges: Sequence[float] = (0, 1, 2, 3, 5, 8, 12, 20, 50, np.inf), threshold: float = 0.5,
                     out_dir: str | Path | None = None, name: str = "score_vs_arc_snr") -> Diagnostic:
    """Mean / median p and recall (p > threshold) of injections per arc_snr bin, with the
    controls' mean p and false-positive rate. A finder that sees arcs must struggle at
    arc_snr ~ 1; the seeds' model gave p = 1.0000 there (a shortcut)."""
    p = np.asarray(p, float)
    inj = np.asarray(is_injection, bool)
    snr = np.asarray(arc_snr, float)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = inj & np.isfinite(snr) & (snr >= lo) & (snr < hi)
        n = int(m.sum())
        rows.append({"arc_snr_lo": float(lo), "arc_snr_hi": float(hi), "n": n,
                     "mean_p": float(p[m].mean()) if n else None, "median_p": float(np.median(p[m])) if n else None,
                     "recall": float((p[m] > threshold).mean()) if n else None})
    ctrl = ~inj
    nums = {"controls_mean_p": float(p[ctrl].mean()) if ctrl.any() else None,
            "controls_fpr": float((p[ctrl] > threshold).mean()) if ctrl.any() else None,
            "n_controls": int(ctrl.sum()), "n_injections": int(inj.sum()), "threshold": threshold}
    low = [r for r in rows if r["n"] and r["arc_snr_hi"] <= 2]
    nums["recall_arc_snr_below_2"] = (float(sum(r["recall"] * r["n"] for r in low) / sum(r["n"] for r in low)) if low else None)
    d = Diagnostic(name, nums, table=rows)
    plt, path = _fig(out_dir, name)
    if plt is None:
        return d
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    xs = [f"{r['arc_snr_lo']:g}-{r['arc_snr_hi']:g}" for r in rows]
    ax.plot(xs, [np.nan if r["recall"] is None else r["recall"] for r in rows], "o-", label=f"recall (p>{threshold})")
    ax.plot(xs, [np.nan if r["mean_p"] is None else r["mean_p"] for r in rows], "s--", label="mean p")
    if nums["controls_fpr"] is not None:
        ax.axhline(nums["controls_fpr"], color="r", lw=0.8, label="controls FPR")
    ax.set(xlabel="arc_snr bin", ylabel="fraction / p", ylim=(-0.02, 1.02))
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize=7)
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
