"""Train 2 epochs on the CPU on 160 toy stamps (80 val); reload, score, resume, evaluate."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from darkhaloscope import cli
from darkhaloscope.config import Config, config_to_dict, replace
from darkhaloscope.dataset.stamp import decode_stamp
from darkhaloscope.ml.metrics import roc_auc
from darkhaloscope.ml.predict import load_run, score_logits, score_stamps
from darkhaloscope.ml.toydata import write_toy_dataset
from darkhaloscope.ml.train import fit


@pytest.mark.slow
def test_train_reload_resume_evaluate(tmp_path):
    torch.set_num_threads(2)
    ds = str(write_toy_dataset(tmp_path / "ds", {"train": 160, "val": 80, "test": 64}, seed=5, arc_snr_range=(6.0, 30.0)))
    cfg = replace(Config(), **{"train.epochs": 2, "train.batch_size": 32, "train.num_workers": 0, "train.stem": "patch4",
                               "train.lr": 1e-3, "train.warmup_epochs": 0.5, "train.eval_bootstrap": 20,
                               "train.select_metric": "auc"})
    run_dir = tmp_path / "run"
    summary = fit(cfg, ds, run_dir, device="cpu", progress=False)

    # two epochs ran, the loss fell, metrics were logged
    hist = summary["history"]
    assert [r["epoch"] for r in hist] == [1, 2]
    assert hist[1]["train_loss"] < hist[0]["train_loss"]
    for name in ("config.yaml", "run.json", "norm_stats.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run_dir / name).is_file(), name
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2]
    assert all(0.0 <= r["val_auc"] <= 1.0 and "val_tpr_at_fpr_1e-3" in r for r in logged)
    assert json.loads((run_dir / "run.json").read_text())["code_version"]

    # a reloaded checkpoint reproduces the trained model's validation predictions exactly
    from darkhaloscope.ml.evaluate import score_split

    run = load_run(run_dir, device="cpu", checkpoint="last")
    res = score_split(run, ds, "val")
    assert roc_auc(res["label"], res["logit"]) == hist[-1]["val_auc"]

    # score_stamps on raw nanomaggy stamps gives the loader path's logits
    rows = pq.read_table(f"{ds}/split=val").to_pandas()
    rows = rows[rows.cutout_ok].head(12)
    images = np.stack([decode_stamp(b)["image"] for b in rows.stamp_npz])
    meta = {k: rows[k].to_numpy() for k in ("psf_fwhm_r", "psfdepth_r")}
    z = score_logits(run, images, meta)
    by_id = dict(zip(res["task_id"].tolist(), res["logit"].tolist(), strict=True))
    np.testing.assert_allclose(z, [by_id[t] for t in rows.task_id], rtol=1e-5, atol=1e-5)
    p = score_stamps(run, images, meta)
    assert p.dtype == np.float64 and np.all((p >= 0) & (p <= 1))

    # resume from the CLI continues the epoch count
    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(yaml.safe_dump(config_to_dict(cfg)))
    argv = ["train", "--config", str(cfg_path), "--dataset", ds, "--out", str(run_dir), "--device", "cpu", "--no-progress"]
    assert cli.main(argv) == 1  # refuses to overwrite a run without --resume
    assert cli.main([*argv, "--resume", "--epochs", "3"]) == 0
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2, 3]
    assert torch.load(run_dir / "checkpoints/last.pt", weights_only=False)["epoch"] == 3

    # evaluate a split from the CLI: JSON + PNG + per-row scores
    assert cli.main(["evaluate", "--run", str(run_dir), "--split", "test", "--device", "cpu", "--bootstrap", "20", "--no-progress"]) == 0
    out = json.loads((run_dir / "eval" / "eval_test.json").read_text())
    m = out["metrics"]
    assert m["n_pos"] == 32 and m["n_neg"] == 32
    assert m["auc"]["ci95"][0] <= m["auc"]["value"] <= m["auc"]["ci95"][1]
    assert m["tpr_at_fpr_1e-2"]["n_neg"] == 32 and m["tpr_at_fpr_1e-2"]["n_neg_above"] == 0
    assert sum(r["n"] for r in m["completeness"]["arc_snr"]["p_0.5"]) == 32
    assert (run_dir / "eval" / "eval_test.png").stat().st_size > 10_000
    assert pq.read_table(run_dir / "eval" / "scores_test.parquet").num_rows == 64
