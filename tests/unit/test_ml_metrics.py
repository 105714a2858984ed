"""Metric functions against scikit-learn and closed forms on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from darkhaloscope.ml.metrics import (
    bootstrap_interval,
    fpr_key,
    full_metrics,
    recall_by_bin,
    roc_auc,
    summary_metrics,
    tpr_at_fpr,
    wilson_interval,
)


def _scores(seed: int, n_pos: int = 3000, n_neg: int = 5000, ties: bool = False):
    rng = np.random.default_rng(seed)
    s = np.concatenate([rng.normal(1.0, 1.0, n_pos), rng.normal(0.0, 1.0, n_neg)])
    if ties:
        s = np.round(s, 1)  # many ties, including positive-negative ties
    y = np.concatenate([np.ones(n_pos, int), np.zeros(n_neg, int)])
    perm = rng.permutation(len(y))
    return y[perm], s[perm]


@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(ties):
    y, s = _scores(1, ties=ties)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("fpr", [1e-1, 1e-2, 1e-3, 1e-4])
def test_tpr_at_fpr_matches_sklearn_roc(ties, fpr):
    y, s = _scores(2, ties=ties)
    f, t, _ = roc_curve(y, s, drop_intermediate=False)
    expected = t[f <= fpr + 1e-12].max()
    op = tpr_at_fpr(y, s, fpr)
    assert op["tpr"] == pytest.approx(expected, abs=1e-12)
    assert op["fpr_achieved"] <= fpr
    assert op["n_neg"] == 5000 and op["n_pos"] == 3000
    assert op["n_neg_above"] == int(np.floor(fpr * 5000 + 1e-9))
    assert op["resolved"] == (fpr * 5000 >= 1)


def test_tpr_at_fpr_small_known_case():
    # negatives 0.1..0.9 (9 values) and 0.95; positives: 0.5, 0.92, 0.97, 0.99
    neg = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    pos = np.array([0.5, 0.92, 0.97, 0.99])
    y = np.r_[np.zeros(10), np.ones(4)]
    s = np.r_[neg, pos]
    op = tpr_at_fpr(y, s, 0.1)  # one negative may score above: threshold = 0.9
    assert op["threshold"] == 0.9 and op["tpr"] == 0.75 and op["n_neg_above"] == 1
    op = tpr_at_fpr(y, s, 0.01)  # none may: threshold = the top control 0.95
    assert op["threshold"] == 0.95 and op["tpr"] == 0.5 and not op["resolved"]


def test_bootstrap_interval_covers_and_is_reproducible():
    y, s = _scores(3, 400, 400)
    lo, hi = bootstrap_interval(y, s, roc_auc, n_boot=200, seed=7)
    assert lo < roc_auc(y, s) < hi
    assert 0.01 < hi - lo < 0.1  # sigma(AUC) ~ 0.015 for 400 + 400 at AUC 0.76
    assert (lo, hi) == bootstrap_interval(y, s, roc_auc, n_boot=200, seed=7)


def test_wilson_and_recall_by_bin():
    lo, hi = wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12)
    assert hi == pytest.approx(1.959964**2 / (10 + 1.959964**2), rel=1e-9)  # closed form for k = 0
    scores = np.array([0.1, 0.9, 0.8, 0.2, 0.95, 0.7])
    snr = np.array([1.0, 1.5, 4.0, 6.0, 7.0, 50.0])
    rows = recall_by_bin(scores, snr, [0, 2, 5, 10], threshold=0.5)
    assert [r["n"] for r in rows] == [2, 1, 2]
    assert [r["recall"] for r in rows] == [0.5, 1.0, 0.5]


def test_full_and_summary_metrics_on_logits():
    y, s = _scores(4, 500, 2000)
    m = full_metrics(y, s, {"arc_snr": np.linspace(0, 30, len(y))}, {"arc_snr": [0, 10, 20, 30.1]}, n_boot=20, logits=True)
    assert m["auc"]["value"] == pytest.approx(roc_auc_score(y, s))
    assert m[fpr_key(1e-3)]["n_neg_above"] == 2 and m[fpr_key(1e-4)]["n_neg_above"] == 0
    assert sum(r["n"] for r in m["completeness"]["arc_snr"]["p_0.5"]) == 500
    assert sum(m["score_histograms"]["control"]) == 2000
    sm = summary_metrics(y, s)
    assert set(sm) >= {"auc", "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3", "tpr_at_fpr_1e-4"}
