"""The dataset gates (DESIGN 5): physics, leakage and shortcuts. Each returns a :class:`Gate`
with its status (pass / fail / skipped), the measured value, the threshold from config section
``report`` and the figure that shows it. A skipped gate is never counted as passed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..config import Config

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"


@dataclass
class Gate:
    """One gate's outcome; ``details`` holds the JSON-able numbers behind ``message``."""

    name: str
    status: str
    message: str
    threshold: object = None
    value: object = None
    figure: str | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"status": self.status, "message": self.message, "threshold": self.threshold,
                "value": self.value, "figure": self.figure, "details": self.details}


def _rel_diff(stored, recomputed) -> float:
    """Relative difference of two SNRs; 0 when both are null, inf when one is."""
    if stored is None and recomputed is None:
        return 0.0
    if stored is None or recomputed is None or not np.isfinite(stored):
        return float("inf")
    return abs(float(stored) - float(recomputed)) / max(abs(float(recomputed)), 1e-6)


# -- physics ---------------------------------------------------------------------------------

SNR_NAMES = ("arc_snr", "arc_snr_sum", "arc_snr_region")


def gate_snr(checks: list, n_without_arc: int, cfg: Config, figure: str) -> Gate:
    """Stored ``arc_snr``, ``arc_snr_sum`` and ``arc_snr_region`` equal those recomputed from the
    stored arc, invvar and maskbits (relative tolerance ``report.snr_rel_tol``). ``checks`` rows
    are (task_id, stored, recomputed) for each SNR in :data:`SNR_NAMES` order."""
    tol = cfg.report.snr_rel_tol
    name = "physics.snr_recomputed"
    if not checks:
        why = f"{n_without_arc} sampled injections have no arc_npz" if n_without_arc else "no injections in the sample"
        return Gate(name, SKIPPED, f"skipped: {why}; nothing to recompute (render.write_arc stores the arc)", tol, None, figure)
    diffs = np.array([[_rel_diff(c[1 + 2 * j], c[2 + 2 * j]) for j in range(len(SNR_NAMES))] for c in checks])
    worst = diffs.max(axis=1)
    bad = np.flatnonzero(worst > tol)
    details = {"n_checked": len(checks), "n_mismatch": int(bad.size), "n_injections_without_arc": n_without_arc,
               **{f"max_rel_diff_{n}": float(diffs[:, j].max()) for j, n in enumerate(SNR_NAMES)},
               "examples": [{"task_id": checks[i][0], **{f"{n}_{kind}": checks[i][1 + 2 * j + o] for j, n in enumerate(SNR_NAMES) for o, kind in enumerate(("stored", "recomputed"))}} for i in bad[:5]]}
    value = float(worst.max())
    if bad.size:
        ex = checks[bad[0]]
        j = int(np.argmax(diffs[bad[0]]))
        return Gate(name, FAIL, f"{bad.size} of {len(checks)} painted rows store SNRs that differ from the recomputed ones by more than {tol:g} (max rel. diff {value:.3g}; e.g. task_id={ex[0]}: {SNR_NAMES[j]} stored {ex[1 + 2 * j]} vs recomputed {ex[2 + 2 * j]})", tol, value, figure, details)
    return Gate(name, PASS, f"{len(checks)} painted rows (injection, unlensed, ring): stored arc_snr, arc_snr_sum, arc_snr_region equal the recomputed ones (max rel. diff {value:.2g} <= {tol:g})", tol, value, figure, details)


def gate_rerender(items: list, bank, cfg: Config, figure: str) -> tuple[Gate, list]:
    """A sample of injections re-rendered from their row and the bank matches the stored arc:
    max |re-rendered - stored| / max(stored) <= ``report.rerender_rel_tol`` per row.
    Returns the gate and the per-row (task_id, rel diff) list for the figure."""
    tol = cfg.report.rerender_rel_tol
    name = "physics.rerender"
    if bank is None:
        return Gate(name, SKIPPED, "skipped: no --bank given, arcs cannot be re-rendered", tol, None, figure), []
    if not items:
        return Gate(name, SKIPPED, "skipped: no injection with a stored arc_npz in the sample", tol, None, figure), []
    try:
        from ..roles import render_painted_from_row  # injections, unlensed and ring rows alike
    except ImportError as exc:
        return Gate(name, SKIPPED, f"skipped: darkhaloscope.roles.render_painted_from_row is not available ({exc})", tol, None, figure), []
    per_row = []
    for row, stored in items:
        try:
            again = np.asarray(render_painted_from_row(row, bank, cfg), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - any failure to re-render is a gate failure, reported per row
            per_row.append((int(row["task_id"]), float("inf"), f"{type(exc).__name__}: {exc}"))
            continue
        peak = float(np.max(np.abs(stored)))
        if again.shape != stored.shape:
            per_row.append((int(row["task_id"]), float("inf"), f"shape {again.shape} != stored {stored.shape}"))
            continue
        per_row.append((int(row["task_id"]), float(np.max(np.abs(again - stored))) / max(peak, 1e-12), ""))
    diffs = np.array([d for _, d, _ in per_row])
    bad = [r for r in per_row if not r[1] <= tol]
    value = float(diffs.max())
    details = {"n_rendered": len(per_row), "n_mismatch": len(bad), "median_rel_diff": float(np.median(diffs)),
               "examples": [{"task_id": t, "rel_diff": d, "error": e} for t, d, e in bad[:5]]}
    if bad:
        t, d, e = bad[0]
        return Gate(name, FAIL, f"{len(bad)} of {len(per_row)} re-rendered arcs differ from the stored arc by more than {tol:g} of the peak (e.g. task_id={t}: {d:.3g}{'; ' + e if e else ''})", tol, value, figure, details), per_row
    return Gate(name, PASS, f"{len(per_row)} arcs re-rendered from their rows match the stored arcs (max |diff| / peak = {value:.2g} <= {tol:g})", tol, value, figure, details), per_row


# -- leakage ---------------------------------------------------------------------------------

def overlaps(sets: dict) -> dict:
    """Pairwise overlaps ``"a|b" -> n`` of per-split id collections (sets or uint64 arrays)."""
    out = {}
    for a, b in itertools.combinations(sets, 2):
        sa, sb = sets[a], sets[b]
        if isinstance(sa, np.ndarray):
            n = int(np.intersect1d(sa, sb, assume_unique=False).size)
        else:
            n = len(sa & sb)
        out[f"{a}|{b}"] = n
    return out


def gate_leak_galaxy(pairs: dict, mismatches: dict, examples: list, figure: str) -> Gate:
    """No ``galaxy_id`` in two splits, and every row's ``split`` equals its folder."""
    name = "leakage.galaxy_id"
    n_pairs = sum(pairs.values())
    n_mis = sum(mismatches.values())
    details = {"overlaps": pairs, "split_column_mismatches": mismatches, "examples": examples}
    if n_pairs or n_mis:
        parts = [f"{p.replace('|', ' & ')}: {n} galaxy_id" for p, n in pairs.items() if n]
        parts += [f"split={s}: {n} rows whose split column differs" for s, n in mismatches.items() if n]
        return Gate(name, FAIL, "galaxies leak across splits: " + "; ".join(parts) + (f" (e.g. {examples[0]})" if examples else ""), 0, n_pairs + n_mis, figure, details)
    return Gate(name, PASS, "no galaxy_id in two splits; every row's split matches its folder", 0, 0, figure, details)


def gate_leak_cosmos(pairs: dict, sets: dict, figure: str) -> Gate:
    """No COSMOS source (``cosmos_index``) in two splits."""
    name = "leakage.cosmos_index"
    examples = {}
    for p, n in pairs.items():
        if n:
            a, b = p.split("|")
            examples[p] = sorted(sets[a] & sets[b])[:10]
    details = {"overlaps": pairs, "examples": examples}
    total = sum(pairs.values())
    if total:
        parts = [f"{p.replace('|', ' & ')}: {n} sources (e.g. cosmos_index {examples[p][0]})" for p, n in pairs.items() if n]
        return Gate(name, FAIL, "COSMOS sources reused across splits: " + "; ".join(parts), 0, total, figure, details)
    return Gate(name, PASS, "no cosmos_index in two splits", 0, 0, figure, details)


# -- shortcuts -------------------------------------------------------------------------------

def _bootstrap_auc(y: np.ndarray, p: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    vals = []
    n = len(y)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if y[idx].min() == y[idx].max():
            continue
        vals.append(roc_auc_score(y[idx], p[idx]))
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def gate_shortcut_classifier(feature_rows: list, labels: list, cfg: Config, figure: str, name: str = "shortcuts.nuisance_classifier",
                             negative: str = "controls") -> tuple[Gate, dict]:
    """A gradient-boosted classifier on nuisance features only, cross-validated: out-of-fold AUC
    must stay <= ``report.shortcut_auc_max``. Returns the gate and the figure data
    (roc curve, per-feature AUCs). ``negative`` names the label-0 rows in messages (a role)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    rc = cfg.report
    y = np.asarray(labels, dtype=int)
    n_inj, n_ctl = int(y.sum()), int(len(y) - y.sum())
    if min(n_inj, n_ctl) < rc.min_rows_per_role:
        return Gate(name, SKIPPED, f"skipped: {n_ctl} {negative} and {n_inj} injections sampled, need >= {rc.min_rows_per_role} of each", rc.shortcut_auc_max, None, figure), {}
    names = sorted({k for r in feature_rows for k in r})
    X = np.array([[r.get(k, np.nan) for k in names] for r in feature_rows], dtype=np.float64)
    X[~np.isfinite(X)] = np.nan
    # A feature that is null (or one value) everywhere carries nothing and breaks HGB's binning.
    informative = [j for j in range(X.shape[1]) if np.unique(X[np.isfinite(X[:, j]), j]).size > 1]
    dropped = [names[j] for j in range(len(names)) if j not in informative]
    if not informative:
        return Gate(name, SKIPPED, "skipped: every nuisance feature is null or constant", rc.shortcut_auc_max, None, figure, {"dropped_features": dropped}), {}
    X_fit = X[:, informative]
    folds = min(rc.cv_folds, n_inj, n_ctl)
    clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0, random_state=cfg.seed % (2**32))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.seed % (2**32))
    # One OpenMP thread: on a shared machine HGB's thread team spin-waits (measured 10x slower
    # with 2 cores under load); a single thread fits 200k rows x 40 features in seconds.
    with threadpool_limits(limits=1):
        proba = cross_val_predict(clf, X_fit, y, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, proba))
    lo, hi = _bootstrap_auc(y, proba, rc.bootstrap, cfg.seed)
    per_feature = {}
    for j, k in enumerate(names):
        col = X[:, j]
        fin = np.isfinite(col)
        if fin.sum() < 2 or y[fin].min() == y[fin].max() or np.nanmin(col) == np.nanmax(col):
            per_feature[k] = 0.5
            continue
        a = float(roc_auc_score(y[fin], col[fin]))
        per_feature[k] = max(a, 1.0 - a)  # separation regardless of direction
    top = sorted(per_feature.items(), key=lambda kv: -kv[1])[:5]
    fpr, tpr, _ = roc_curve(y, proba)
    details = {"auc": auc, "auc_ci95": [lo, hi], "n_controls": n_ctl, "n_injections": n_inj, "cv_folds": folds,
               "features": [names[j] for j in informative], "dropped_features": dropped, "per_feature_auc": per_feature, "top_features": [list(t) for t in top]}
    fig = {"fpr": fpr, "tpr": tpr, "auc": auc, "ci": (lo, hi), "per_feature": per_feature}
    top_txt = ", ".join(f"{k} ({v:.2f})" for k, v in top[:3])
    if auc > rc.shortcut_auc_max:
        return Gate(name, FAIL, f"injections are separable from {negative} by nuisance features alone: AUC {auc:.3f} [95% {lo:.3f}, {hi:.3f}] > {rc.shortcut_auc_max:g}; most separating: {top_txt}", rc.shortcut_auc_max, auc, figure, details), fig
    return Gate(name, PASS, f"nuisance-feature classifier AUC {auc:.3f} [95% {lo:.3f}, {hi:.3f}] <= {rc.shortcut_auc_max:g} ({n_ctl} {negative}, {n_inj} injections; top single feature {top[0][0]} {top[0][1]:.2f})", rc.shortcut_auc_max, auc, figure, details), fig


def _median_ratio_ci(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    ratio = float(np.median(a) / np.median(b))
    boots = [np.median(rng.choice(a, a.size)) / np.median(rng.choice(b, b.size)) for _ in range(n_boot)]
    return ratio, float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def gate_central_brightness(central: list, labels: list, subtracted: list, cfg: Config, figure: str, bands: str = "grz",
                            name: str = "shortcuts.central_brightness", negative: str = "controls") -> tuple[Gate, dict]:
    """Host central brightness, arc subtracted, must be indistinguishable between injections and
    controls: two-sample KS p > ``report.central_ks_p_min`` / n_bands in every band (Bonferroni,
    so the family-wise false-alarm rate on an honest dataset is ``central_ks_p_min``); the
    median ratio injections / controls is reported with its bootstrap 95 % interval."""
    from scipy.stats import ks_2samp

    rc = cfg.report
    y = np.asarray(labels, dtype=int)
    use = np.asarray(subtracted, dtype=bool)
    C = np.array(central, dtype=np.float64).reshape(len(central), -1) if central else np.empty((0, len(bands)))
    inj, ctl = C[(y == 1) & use], C[(y == 0) & use]
    if min(len(inj), len(ctl)) < rc.min_rows_per_role:
        return Gate(name, SKIPPED, f"skipped: {len(ctl)} {negative} and {len(inj)} injections with the arc subtracted, need >= {rc.min_rows_per_role} of each", rc.central_ks_p_min, None, figure), {}
    per_band = {}
    threshold = rc.central_ks_p_min / C.shape[1]
    failing = []
    for b in range(C.shape[1]):
        a, c = inj[:, b], ctl[:, b]
        a, c = a[np.isfinite(a)], c[np.isfinite(c)]
        p = float(ks_2samp(a, c).pvalue)
        ratio, lo, hi = _median_ratio_ci(a, c, rc.bootstrap, cfg.seed + b)
        band = bands[b] if b < len(bands) else str(b)
        per_band[band] = {"ks_p": p, "median_injection": float(np.median(a)), "median_control": float(np.median(c)),
                          "median_ratio": ratio, "median_ratio_ci95": [lo, hi], "n_injection": int(a.size), "n_control": int(c.size)}
        if not p > threshold:
            failing.append(band)
    value = min(v["ks_p"] for v in per_band.values())
    details = {"per_band": per_band, "per_band_threshold": threshold, "n_injections_without_arc": int(((y == 1) & ~use).sum())}
    fig = {"inj": inj, "ctl": ctl, "per_band": per_band}
    r = per_band.get("r", next(iter(per_band.values())))
    summary = f"r band: median ratio inj/ctl {r['median_ratio']:.3f} [95% {r['median_ratio_ci95'][0]:.3f}, {r['median_ratio_ci95'][1]:.3f}], KS p {r['ks_p']:.3g}"
    if failing:
        worst = per_band[failing[0]]
        return Gate(name, FAIL, f"host central brightness (arc subtracted) differs between injections and {negative} in band(s) {''.join(failing)}: KS p {worst['ks_p']:.3g} <= {threshold:.3g}, median ratio {worst['median_ratio']:.3f} [95% {worst['median_ratio_ci95'][0]:.3f}, {worst['median_ratio_ci95'][1]:.3f}]", rc.central_ks_p_min, value, figure, details), fig
    return Gate(name, PASS, f"host central brightness indistinguishable ({summary}; every band p > {threshold:.3g})", rc.central_ks_p_min, value, figure, details), fig
