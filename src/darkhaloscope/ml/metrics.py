"""Classifier metrics on scores (p_lens or logits) and labels (1 = injection, 0 = control).

Pure numpy, independent of scikit-learn (the tests compare against it):

- :func:`roc_auc`: the Mann-Whitney statistic with mid-ranks for ties.
- :func:`tpr_at_fpr`: the best TPR whose FPR does not exceed the target. The threshold sits
  just above the (k+1)-th highest control score, k = floor(fpr * n_neg), so at most k controls
  score above it. ``n_neg_above`` = k is how many negatives the operating point rests on: with
  1,000 controls, FPR 1e-3 rests on ONE control and FPR 1e-4 on none (then ``resolved`` is
  false and the TPR is that of the highest-scoring control's threshold).
- :func:`bootstrap_interval`: stratified (controls and injections resampled separately)
  percentile intervals.
- :func:`recall_by_bin`: completeness of injections above a threshold per bin of a column
  (arc_snr, theta_e), with Wilson 95 % intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.special import expit
from scipy.stats import rankdata

DEFAULT_FPRS = (1e-2, 1e-3, 1e-4)


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in length")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    return y, s


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count 1/2); NaN when one class is absent."""
    y, s = _check(labels, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # mid-ranks
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> dict:
    """Best TPR with FPR <= ``fpr``: ``{tpr, threshold, fpr_achieved, n_pos, n_neg, n_neg_above, resolved}``.

    A row is called positive when its score is strictly greater than ``threshold``.
    """
    y, s = _check(labels, scores)
    pos, neg = s[y], np.sort(s[~y])[::-1]
    n_pos, n_neg = len(pos), len(neg)
    if n_pos == 0 or n_neg == 0:
        return {"tpr": float("nan"), "threshold": float("nan"), "fpr_achieved": float("nan"),
                "n_pos": n_pos, "n_neg": n_neg, "n_neg_above": 0, "resolved": False}
    k = int(np.floor(fpr * n_neg + 1e-9))
    threshold = float(neg[k]) if k < n_neg else -np.inf
    n_fp = int((neg > threshold).sum())
    return {
        "tpr": float((pos > threshold).mean()),
        "threshold": threshold,
        "fpr_achieved": n_fp / n_neg,
        "n_pos": n_pos,
        "n_neg": n_neg,
        "n_neg_above": k,
        "resolved": k >= 1,
    }


def bootstrap_interval(labels: np.ndarray, scores: np.ndarray, stat: Callable[[np.ndarray, np.ndarray], float],
                       n_boot: int = 200, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``stat(labels, scores)`` over stratified bootstrap resamples."""
    y, s = _check(labels, scores)
    if n_boot <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    ipos, ineg = np.flatnonzero(y), np.flatnonzero(~y)
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(ipos, len(ipos)), rng.choice(ineg, len(ineg))])
        values[b] = stat(y[idx], s[idx])
    lo, hi = np.nanpercentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n (95 % by default)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(centre - half), float(centre + half)


def recall_by_bin(scores: np.ndarray, values: np.ndarray, edges: Sequence[float], threshold: float) -> list[dict]:
    """Fraction of (injection) ``scores`` > ``threshold`` per bin [lo, hi) of ``values``."""
    s = np.asarray(scores, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (v >= lo) & (v < hi)
        n = int(sel.sum())
        k = int((s[sel] > threshold).sum())
        ci = wilson_interval(k, n)
        out.append({"lo": float(lo), "hi": float(hi), "median": float(np.median(v[sel])) if n else float("nan"), "n": n, "n_detected": k,
                    "recall": k / n if n else float("nan"), "ci_low": ci[0], "ci_high": ci[1]})
    return out


def score_histograms(labels: np.ndarray, scores: np.ndarray, bins: int = 50, range_: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Histogram counts of control and injection scores on common bin edges."""
    y, s = _check(labels, scores)
    edges = np.linspace(*range_, bins + 1)
    return {"edges": edges.tolist(),
            "control": np.histogram(np.clip(s[~y], *range_), edges)[0].tolist(),
            "injection": np.histogram(np.clip(s[y], *range_), edges)[0].tolist()}


def fpr_key(fpr: float) -> str:
    """'tpr_at_fpr_1e-3' style key of an FPR."""
    return f"tpr_at_fpr_{fpr:.0e}".replace("e-0", "e-")


def summary_metrics(labels: np.ndarray, scores: np.ndarray, fprs: Sequence[float] = DEFAULT_FPRS) -> dict:
    """AUC and TPR at each FPR (flat dict, for per-epoch logs and checkpoint selection)."""
    out = {"auc": roc_auc(labels, scores), "n_pos": int(np.sum(labels)), "n_neg": int(len(labels) - np.sum(labels))}
    for f in fprs:
        out[fpr_key(f)] = tpr_at_fpr(labels, scores, f)["tpr"]
    return out


def full_metrics(labels: np.ndarray, scores: np.ndarray, columns: dict[str, np.ndarray] | None = None,
                 bins: dict[str, Sequence[float]] | None = None, fprs: Sequence[float] = DEFAULT_FPRS,
                 n_boot: int = 200, seed: int = 0, logits: bool = False) -> dict:
    """Evaluation metrics: AUC and TPRs with bootstrap intervals, completeness per bin, histograms.

    ``columns`` maps names (``arc_snr``, ``theta_e``) to per-row values; ``bins`` their edges.
    Completeness is given at the threshold of each FPR target and at p = 0.5. With
    ``logits=True`` the scores are logits (ranking on logits avoids the ties of p saturating at
    1.0 in float32); thresholds are also reported as p (``threshold_p``) and the histograms are
    of p = sigmoid(logit).
    """
    y, s = _check(labels, scores)
    to_p = (lambda t: float(expit(t))) if logits else float
    out: dict = {"n_pos": int(y.sum()), "n_neg": int((~y).sum()), "n_bootstrap": n_boot}
    auc_ci = bootstrap_interval(y, s, roc_auc, n_boot, seed)
    out["auc"] = {"value": roc_auc(y, s), "ci95": list(auc_ci)}
    thresholds = {"p_0.5": 0.0 if logits else 0.5}
    for f in fprs:
        op = tpr_at_fpr(y, s, f)
        op["ci95"] = list(bootstrap_interval(y, s, lambda a, b, f=f: tpr_at_fpr(a, b, f)["tpr"], n_boot, seed))
        op["fpr_target"] = f
        op["threshold_p"] = to_p(op["threshold"])
        out[fpr_key(f)] = op
        thresholds[f"fpr_{f:.0e}".replace("e-0", "e-")] = op["threshold"]
    out["completeness"] = {}
    for name, values in (columns or {}).items():
        edges = (bins or {}).get(name)
        if edges is None:
            continue
        v = np.asarray(values, dtype=np.float64)[y]
        out["completeness"][name] = {t_name: recall_by_bin(s[y], v, edges, t) for t_name, t in thresholds.items()}
    p = expit(s) if logits else s
    out["score_histograms"] = score_histograms(y, p)
    return out
