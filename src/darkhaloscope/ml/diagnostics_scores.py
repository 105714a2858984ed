"""Diagnostics of given scores (failure analysis sections 3.1 and 3.7): p_lens against theta_E
and the central brightness, and p_lens / recall per arc_snr bin. No model needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .diagnostics_base import Diagnostic, _fig, _pearson, _save, band_index, central_max


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
