"""Roles in training and evaluation: labels and loss weights by role in the loader, the weighted
loss against a hand computation."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import torch

from darkhaloscope.config import ROLE_LABELS, ROLES, Config, replace
from darkhaloscope.dataset.schema import rows_to_table
from darkhaloscope.ml.data import StampStream, scan_split
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
