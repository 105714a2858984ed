"""Roles in training and evaluation: labels and loss weights by role in the loader, the weighted
loss against a hand computation, per-role FPR at control thresholds by hand, and the ring test
failing a scorer that answers to any ring (the seeds' failure)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from darkhaloscope.config import ROLE_LABELS, ROLES, Config, replace
from darkhaloscope.dataset.schema import rows_to_table
from darkhaloscope.ml.data import StampStream, scan_split
from darkhaloscope.ml.role_metrics import format_role_metrics, role_metrics
from darkhaloscope.ml.toydata import make_rows
from darkhaloscope.ml.train import loss_fn

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def role_toy(tmp_path_factory):
    rows = make_rows("train", 36, seed=4)
    for i, row in enumerate(rows):
        row["role"] = ROLES[i % len(ROLES)]  # every role, same stamps
    folder = tmp_path_factory.mktemp("roles") / "split=train"
    folder.mkdir()
    pq.write_table(rows_to_table(rows), folder / "part-00000.parquet", row_group_size=12)
    return folder.parent, {r["task_id"]: r["role"] for r in rows}


def test_labels_and_weights_by_role_in_the_loader(role_toy):
    root, role_of = role_toy
    weights = {"ring": 3.0, "unlensed": 0.5, "known_lens": 2.0}
    tcfg = replace(Config(), **{"train.batch_size": 8, "train.num_workers": 0, "train.role_weights": weights}).train
    info = scan_split(str(root), "train", tcfg)
    assert info.n_rows == 36 and info.n_injections == sum(ROLE_LABELS[role_of[t]] for t in role_of)
    ds = StampStream(str(root), "train", tcfg, info.meta_stats, shuffle=False)
    batches = list(ds)
    tids = torch.cat([b["task_id"] for b in batches]).numpy()
    labels = torch.cat([b["label"] for b in batches]).numpy()
    w = torch.cat([b["weight"] for b in batches]).numpy()
    assert sorted(tids) == sorted(role_of)
    assert labels.tolist() == [float(ROLE_LABELS[role_of[t]]) for t in tids]
    assert w.tolist() == [weights.get(role_of[t], 1.0) for t in tids]


@pytest.mark.parametrize("loss", ["bce", "focal"])
def test_weighted_loss_is_the_mean_of_weight_times_loss(loss):
    tcfg = replace(Config(), **{"train.loss": loss}).train
    z = torch.tensor([2.0, -1.0, 0.5, -3.0])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    w = torch.tensor([1.0, 3.0, 0.0, 0.5])
    crit = loss_fn(tcfg)
    p = torch.sigmoid(z)
    bce = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    if loss == "focal":
        pt = p * y + (1 - p) * (1 - y)
        bce = bce * (1 - pt) ** tcfg.focal_gamma
    assert float(crit(z, y)) == pytest.approx(float(bce.mean()), rel=1e-6)
    assert float(crit(z, y, w)) == pytest.approx(float((bce * w).mean()), rel=1e-6)


def test_per_role_fpr_matches_a_hand_computation():
    """A toy scorer on 1000 controls with scores 0..999: the FPR 1e-2 threshold is the 11th
    highest control (989: 10 controls strictly above); counts of each role above it by hand."""
    ctl = np.arange(1000.0)
    ring = np.array([995.0, 989.0, 500.0, 999.5])     # 2 strictly above 989; above 998 (1e-3): 1
    unl = np.array([10.0, 20.0])
    kl = np.array([990.0, 1000.0, 5.0])               # recall 2/3 at 1e-2, 1/3 at 1e-3
    roles = ["control"] * 1000 + ["ring"] * 4 + ["unlensed"] * 2 + ["known_lens"] * 3
    rm = role_metrics(roles, np.concatenate([ctl, ring, unl, kl]))
    assert rm["thresholds"] == {"1e-2": 989.0, "1e-3": 998.0, "1e-4": 999.0}
    assert rm["roles"]["control"]["1e-2"]["n_above"] == 10 and rm["roles"]["control"]["1e-3"]["n_above"] == 1
    assert rm["roles"]["ring"]["1e-2"]["rate"] == 2 / 4 and rm["roles"]["ring"]["1e-3"]["rate"] == 1 / 4
    assert rm["ring_test"] == 1 / 4
    assert rm["roles"]["unlensed"]["1e-2"]["rate"] == 0.0
    assert rm["roles"]["known_lens"]["kind"] == "recall"
    assert rm["roles"]["known_lens"]["1e-2"]["rate"] == pytest.approx(2 / 3) and rm["roles"]["known_lens"]["1e-3"]["rate"] == pytest.approx(1 / 3)
    assert rm["resolved"] == {"1e-2": True, "1e-3": True, "1e-4": False}
    assert "ring test" in format_role_metrics(rm)


def _ring(size: int = 64, radius_pix: float = 15.0, amp: float = 0.01) -> np.ndarray:
    """The seeds' shortcut probe (gen5_failure_analysis.md sec. 3.2): a Gaussian ring at r = 15 px."""
    y, x = np.ogrid[:size, :size]
    r = np.sqrt((y - 32) ** 2 + (x - 32) ** 2)
    return np.exp(-((r - radius_pix) ** 2) / 20) * amp


def _ring_scorer(image: np.ndarray) -> float:
    """The seeds' failure as a scorer: the mean flux in an annulus of 8-20 px minus the sky
    level beyond, so any added ring raises it."""
    y, x = np.ogrid[:64, :64]
    r = np.hypot(y - 32, x - 32)
    return float(image[:, (r > 8) & (r < 20)].mean() - image[:, r > 26].mean())


def test_a_scorer_that_answers_to_any_ring_fails_the_ring_test():
    rng = np.random.default_rng(0)
    hosts = [rng.normal(0, 0.003, (3, 64, 64)) for _ in range(1200)]
    ctl = np.array([_ring_scorer(h) for h in hosts[:1000]])
    rings = np.array([_ring_scorer(h + _ring()) for h in hosts[1000:]])
    rm = role_metrics(["control"] * 1000 + ["ring"] * 200, np.concatenate([ctl, rings]))
    assert rm["ring_test"] > 0.9  # the seeds' finder: p = 1 on any ring
    # an honest scorer (one blind to rings: here the sky level alone) keeps the ring test near its FPR
    honest = lambda im: float(im[:, 60:, 60:].mean())  # noqa: E731
    rm2 = role_metrics(["control"] * 1000 + ["ring"] * 200, np.array([honest(h) for h in hosts] ))
    assert rm2["ring_test"] < 0.02
