"""Report figures as PNG bytes (matplotlib's object API with the Agg canvas: no global pyplot
state, no display). Colour composites use astropy's Lupton et al. (2004) asinh stretch with
z -> red, r -> green, g -> blue and ONE stretch for every stamp, so a brightness difference
between controls and injections is visible rather than normalised away.
"""

from __future__ import annotations

import io

import numpy as np
from astropy.visualization import make_lupton_rgb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SPLIT_COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    return buf.getvalue()


def _colour(split: str, i: int) -> str:
    return SPLIT_COLOURS.get(split, f"C{i + 3}")


def histograms(title: str, per_split: dict, log_x: bool = False, unit: str = "") -> bytes:
    """Step histograms of one quantity, one line per split (fraction of the split per bin, shared bins)."""
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    vals = {s: np.asarray(v, float)[np.isfinite(v)] for s, v in per_split.items()}
    if log_x:
        vals = {s: v[v > 0] for s, v in vals.items()}
    allv = np.concatenate([v for v in vals.values() if v.size]) if any(v.size for v in vals.values()) else np.empty(0)
    if allv.size:
        lo, hi = np.percentile(allv, [0, 100])
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.geomspace(lo, hi, 41) if log_x else np.linspace(lo, hi, 41)
        for i, (s, v) in enumerate(vals.items()):
            if v.size:
                # fraction per bin (not density: with log bins a density shifts the apparent peak)
                ax.hist(v, bins=bins, histtype="step", weights=np.full(v.size, 1.0 / v.size), color=_colour(s, i), label=f"{s} (n={v.size})")
        if log_x:
            ax.set_xscale("log")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"{title} [{unit}]" if unit else title)
    ax.set_ylabel("fraction per bin")
    fig.tight_layout()
    return _png(fig)


def composite(image: np.ndarray, stretch: float, q: float) -> np.ndarray:
    """uint8 [S,S,3] Lupton asinh composite of a g,r,z stamp [3,S,S] in nanomaggies
    (red = z, green = r, blue = g; minimum 0; ``stretch`` in nanomaggies, softening ``q``)."""
    img = np.nan_to_num(np.asarray(image, dtype=np.float64))
    if img.shape[0] == 1:
        img = np.repeat(img, 3, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides 0/0 on empty pixels
        return make_lupton_rgb(img[-1], img[1 if img.shape[0] > 2 else 0], img[0], minimum=0.0, stretch=stretch, Q=q)


def gallery(controls: list, injections: list, stretch: float, q: float, title: str, key: str = "image") -> bytes:
    """Two rows of composites: controls (top) and injections sorted by arc_snr (bottom)."""
    ncol = max(len(controls), len(injections), 1)
    fig = Figure(figsize=(1.25 * ncol, 3.0))
    for row, (label, items) in enumerate((("control", controls), ("injection", injections))):
        for j in range(ncol):
            ax = fig.add_subplot(2, ncol, row * ncol + j + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(items) and items[j].get(key) is not None:
                ax.imshow(composite(items[j][key], stretch, q), origin="lower")
                snr = items[j].get("arc_snr")
                ax.set_title(f"{label[:3]} {items[j]['split']}" + (f" snr {snr:.1f}" if snr is not None else ""), fontsize=6)
            else:
                ax.axis("off")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return _png(fig)


def arcs_gallery(injections: list, stretch: float, q: float) -> bytes:
    """The injected arcs alone (``arc_npz``), same order as the gallery."""
    n = max(len(injections), 1)
    fig = Figure(figsize=(1.25 * n, 1.7))
    for j in range(n):
        ax = fig.add_subplot(1, n, j + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        if j < len(injections) and injections[j].get("arc") is not None:
            ax.imshow(composite(injections[j]["arc"], stretch, q), origin="lower")
            ax.set_title(f"snr {injections[j]['arc_snr']:.1f}" if injections[j].get("arc_snr") is not None else "", fontsize=6)
        else:
            ax.axis("off")
    fig.suptitle(f"arcs alone (Lupton asinh, stretch {stretch:g} nMgy)", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def scatter_snr_theta(per_split: dict) -> bytes:
    """arc_snr (log) against theta_E, one colour per split."""
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for i, (s, (theta, snr)) in enumerate(per_split.items()):
        ok = np.isfinite(theta) & np.isfinite(snr) & (snr > 0)
        ax.scatter(theta[ok], snr[ok], s=3, alpha=0.5, color=_colour(s, i), label=f"{s} (n={int(ok.sum())})")
    ax.set_yscale("log")
    ax.axhline(1.0, color="k", lw=0.5, ls="--")
    ax.set_xlabel("theta_E [arcsec]")
    ax.set_ylabel("arc_snr (peak per-pixel)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def acceptance(summary: dict) -> bytes:
    """Acceptance rate (bars) and mean n_tries (line) in tertiles of theta_E, PSF FWHM and depth."""
    fig = Figure(figsize=(10.0, 3.2))
    for k, (key, label) in enumerate((("by_theta_e", "theta_E [arcsec]"), ("by_psf_fwhm_r", "PSF FWHM r [arcsec]"), ("by_psfdepth_r", "psfdepth r [1/nMgy^2]"))):
        ax = fig.add_subplot(1, 3, k + 1)
        bins = summary.get(key) or []
        names = [f"{b['range'][0]:.3g}-{b['range'][1]:.3g}" for b in bins]
        ax.bar(names, [b["acceptance_rate"] or 0.0 for b in bins], color="tab:blue", alpha=0.7)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.set_ylabel("accepted fraction")
        tw = ax.twinx()
        tw.plot(names, [b["mean_n_tries"] or 0.0 for b in bins], "o-", color="tab:red")
        tw.set_ylim(0, None)
        tw.tick_params(labelsize=7)
        if k == 2:
            tw.set_ylabel("mean n_tries", color="tab:red")
    rate = summary.get("acceptance_rate")
    fig.suptitle(f"acceptance at generation: {100 * rate:.1f} % accepted" if rate is not None else "acceptance: no data", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def snr_check(checks: list) -> bytes:
    """Stored against recomputed arc_snr, arc_snr_sum and arc_snr_region."""
    fig = Figure(figsize=(10.0, 3.4))
    for k, label in enumerate(("arc_snr", "arc_snr_sum", "arc_snr_region")):
        ax = fig.add_subplot(1, 3, k + 1)
        si, ri = 1 + 2 * k, 2 + 2 * k
        pairs = np.array([[c[si], c[ri]] for c in checks if c[si] is not None and c[ri] is not None], dtype=float).reshape(-1, 2)
        if pairs.size:
            ax.scatter(pairs[:, 1], pairs[:, 0], s=4)
            lim = [np.nanmin(pairs), np.nanmax(pairs)]
            ax.plot(lim, lim, "k-", lw=0.5)
        ax.set_xlabel(f"{label} recomputed", fontsize=7)
        ax.set_ylabel(f"{label} stored", fontsize=7)
    fig.tight_layout()
    return _png(fig)


def rerender(per_row: list, tol: float) -> bytes:
    """max |re-rendered - stored| / peak per re-rendered injection, with the tolerance."""
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    d = np.array([r[1] for r in per_row], dtype=float)
    if d.size:
        ax.plot(np.arange(d.size), np.where(np.isfinite(d), d, np.nan), "o", ms=3)
        ax.axhline(tol, color="r", lw=0.8, label=f"tolerance {tol:g}")
        ax.set_yscale("symlog", linthresh=1e-6)
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "skipped (no bank or no renderer)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("re-rendered injection")
    ax.set_ylabel("max |diff| / peak")
    fig.tight_layout()
    return _png(fig)


def leakage(galaxy_pairs: dict, cosmos_pairs: dict) -> bytes:
    """Bars of ids shared between each pair of splits (0 everywhere is the pass)."""
    fig = Figure(figsize=(6.0, 3.0))
    for k, (label, pairs) in enumerate((("galaxy_id", galaxy_pairs), ("cosmos_index", cosmos_pairs))):
        ax = fig.add_subplot(1, 2, k + 1)
        names = list(pairs) or ["(one split)"]
        vals = [pairs.get(n, 0) for n in names]
        ax.bar(range(len(names)), vals, color=["tab:red" if v else "tab:green" for v in vals])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n.replace("|", "&") for n in names], fontsize=7)
        ax.set_title(f"{label} shared between splits", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def shortcut(fig_data: dict, threshold: float) -> bytes:
    """ROC of the out-of-fold nuisance classifier and the single-feature separations."""
    fig = Figure(figsize=(9.0, 3.8))
    ax = fig.add_subplot(1, 2, 1)
    if fig_data:
        ax.plot(fig_data["fpr"], fig_data["tpr"], label=f"AUC {fig_data['auc']:.3f} [{fig_data['ci'][0]:.3f}, {fig_data['ci'][1]:.3f}]")
        ax.plot([0, 1], [0, 1], "k--", lw=0.5)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title(f"nuisance-only classifier (gate: AUC <= {threshold:g})", fontsize=8)
        ax2 = fig.add_subplot(1, 2, 2)
        items = sorted(fig_data["per_feature"].items(), key=lambda kv: kv[1])[-15:]
        ax2.barh(range(len(items)), [v for _, v in items], color=["tab:red" if v > threshold else "tab:gray" for _, v in items])
        ax2.set_yticks(range(len(items)))
        ax2.set_yticklabels([k for k, _ in items], fontsize=6)
        ax2.axvline(threshold, color="r", lw=0.6)
        ax2.set_xlim(0.5, 1.0)
        ax2.set_xlabel("single-feature AUC (max(a, 1-a))", fontsize=7)
    else:
        ax.text(0.5, 0.5, "skipped", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    fig.tight_layout()
    return _png(fig)


def central(fig_data: dict, bands: str = "grz") -> bytes:
    """Cumulative distributions of arc-subtracted host central brightness, controls vs injections."""
    fig = Figure(figsize=(9.0, 3.0))
    if not fig_data:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "skipped", ha="center", va="center", transform=ax.transAxes)
        return _png(fig)
    nb = fig_data["inj"].shape[1]
    for b in range(nb):
        ax = fig.add_subplot(1, nb, b + 1)
        band = bands[b] if b < len(bands) else str(b)
        for label, arr, col in (("controls", fig_data["ctl"][:, b], "tab:gray"), ("injections (arc subtracted)", fig_data["inj"][:, b], "tab:red")):
            v = np.sort(arr[np.isfinite(arr)])
            if v.size:
                ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", color=col, label=label)
        pb = fig_data["per_band"][band]
        ax.set_title(f"{band}: KS p={pb['ks_p']:.3g}, median ratio {pb['median_ratio']:.3f}", fontsize=7)
        ax.set_xscale("symlog", linthresh=0.01)  # hosts span decades; symlog keeps noise-level negatives
        ax.set_xlabel("central mean [nMgy/pixel]", fontsize=7)
        if b == 0:
            ax.legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)
