"""Evaluate a trained run on one split of a stamp dataset: JSON + PNG.

    result = evaluate_split("runs/demo", "out/dataset/demo", "test")

Writes into ``<run>/eval/`` (or ``out_dir``):

- ``eval_<split>.json``: ROC AUC and TPR at FPR 1e-2 / 1e-3 / 1e-4 with stratified bootstrap 95 %
  intervals and the number of controls each FPR rests on; completeness (recall of injections)
  per ``arc_snr`` bin and per ``theta_e`` bin at each FPR threshold and at p = 0.5; score
  histograms of controls and injections.
- the headline metrics above compare ``injection`` with ``control`` rows; ``roles`` holds every
  role's rate at the control thresholds and the ring test (ml/role_metrics.py).
- ``eval_<split>.png``: ROC (log FPR), completeness vs arc_snr and vs theta_E, score histograms.
- ``scores_<split>.parquet``: task_id, role, label, logit, p_lens, arc_snr, theta_e per row (every role).

By default every ``cutout_ok`` row of the split is scored, whatever injection filters the run
was trained with (the completeness curves then show what the filters hid); pass
``train_filters=True`` to apply the training filters instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import expit

from .._version import code_version
from ..config import replace
from ..dataset.reader import read_split
from ..dataset.storage import StorageOptions
from .data import StampStream, scan_split
from .metrics import DEFAULT_FPRS, fpr_key, full_metrics
from .predict import LoadedRun, load_run
from .role_metrics import role_metrics
from .train import make_loader, predict_batches

ARC_SNR_EDGES = [0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 50.0, 1e6]
THETA_E_EDGES = [0.0, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 10.0]  # arcsec


def score_split(run: LoadedRun, dataset: str, split: str, options: StorageOptions | None = None,
                train_filters: bool = False, max_rows: int = 0, batch_size: int = 256, progress: bool = False) -> dict[str, np.ndarray]:
    """Logits, labels, task ids, arc_snr and theta_e of every kept row of a split."""
    tcfg = run.cfg.train
    changes = {"max_rows_per_split": max_rows, "num_workers": min(tcfg.num_workers, 2)}
    if not train_filters:
        changes.update(arc_snr_min=0.0, arc_snr_max=0.0, theta_e_over_psf_min=0.0)
    tcfg = replace(tcfg, **changes)
    info = scan_split(dataset, split, tcfg, run.cfg.seed, options)
    ds = StampStream(dataset, split, tcfg, run.stats["meta"], run.cfg.seed, shuffle=False, hash_max=info.hash_max,
                     extra_columns=["arc_snr", "theta_e"], batch_size=batch_size, options=options)
    return predict_batches(run.model, make_loader(ds, tcfg, run.device), run.device, tcfg, progress, desc=f"score {split}")


def role_column(dataset: str, split: str, task_ids: np.ndarray, options: StorageOptions | None = None) -> np.ndarray:
    """The ``role`` of each scored ``task_id`` (read from the split's light columns)."""
    t = read_split(dataset, split, columns=["task_id", "role"], options=options)
    lookup = dict(zip(t["task_id"].to_pylist(), t["role"].to_pylist(), strict=True))
    return np.array([lookup[int(i)] for i in task_ids], dtype=object)


def evaluate_split(run_dir: str | Path, dataset: str | None = None, split: str = "test", out_dir: str | Path | None = None,
                   device: str = "auto", checkpoint: str = "best", options: StorageOptions | None = None,
                   n_boot: int | None = None, train_filters: bool = False, max_rows: int = 0, progress: bool = True) -> dict:
    """Score a split with a run and write JSON, PNG and per-row scores; returns the JSON dict."""
    run_dir = Path(run_dir)
    run = load_run(run_dir, device, checkpoint)
    dataset = dataset or json.loads((run_dir / "run.json").read_text())["dataset"]
    out_dir = Path(out_dir) if out_dir else run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    res = score_split(run, dataset, split, options, train_filters, max_rows, progress=progress)
    roles = role_column(dataset, split, res["task_id"], options)
    per_role = role_metrics(roles, res["logit"].astype(np.float64))
    classic = np.isin(roles, ("control", "injection"))  # the headline: injections vs controls
    every = res
    res = {k: np.asarray(v)[classic] for k, v in res.items()}
    y, z = res["label"].astype(bool), res["logit"].astype(np.float64)
    n_boot = run.cfg.train.eval_bootstrap if n_boot is None else n_boot
    metrics = full_metrics(y, z, {"arc_snr": res["arc_snr"], "theta_e": res["theta_e"]},
                           {"arc_snr": ARC_SNR_EDGES, "theta_e": THETA_E_EDGES}, n_boot=n_boot, seed=run.cfg.seed, logits=True)
    result = {"run": str(run_dir), "checkpoint": checkpoint, "dataset": str(dataset), "split": split,
              "train_filters": train_filters, "code_version": code_version(), "metrics": metrics, "roles": per_role}
    (out_dir / f"eval_{split}.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    z_all = every["logit"].astype(np.float64)
    pq.write_table(pa.table({"task_id": every["task_id"], "role": pa.array(roles.tolist(), pa.string()), "label": every["label"].astype(np.int8),
                             "logit": z_all, "p_lens": expit(z_all), "arc_snr": every["arc_snr"], "theta_e": every["theta_e"]}),
                   out_dir / f"scores_{split}.parquet")
    plot_evaluation(y, z, metrics, out_dir / f"eval_{split}.png", title=f"{run_dir.name}: {split}")
    return result


def plot_evaluation(labels: np.ndarray, logits: np.ndarray, metrics: dict, path: Path, title: str = "") -> None:
    """Four panels: ROC with the FPR operating points, completeness vs arc_snr and theta_E, score histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(2, 2, figsize=(11, 8.5))
    a = ax[0, 0]
    if labels.any() and (~labels).any():
        fpr, tpr, _ = roc_curve(labels, logits)
        a.plot(np.maximum(fpr, 1e-5), tpr, lw=1.5)
        for f in DEFAULT_FPRS:
            op = metrics[fpr_key(f)]
            # a percentile bootstrap interval need not contain the point estimate: clip the bars
            err = [[max(0.0, op["tpr"] - op["ci95"][0])], [max(0.0, op["ci95"][1] - op["tpr"])]]
            # hollow marker: the operating point rests on no control at all (FPR below 1 / n_neg)
            a.errorbar([f], [op["tpr"]], yerr=err, fmt="o", capsize=3, mfc=None if op["resolved"] else "none",
                       label=f"FPR {f:.0e}: TPR {op['tpr']:.3f} ({op['n_neg_above']} of {op['n_neg']} controls)")
    a.set_xscale("log")
    a.set_xlim(1e-5, 1)
    a.set_xlabel("false-positive rate (controls)")
    a.set_ylabel("true-positive rate (injections)")
    a.set_title(f"ROC, AUC {metrics['auc']['value']:.4f}")
    a.legend(fontsize=7, loc="lower right")
    for a, name, xlabel in ((ax[0, 1], "arc_snr", "arc_snr (peak per-pixel S/N)"), (ax[1, 0], "theta_e", "theta_E (arcsec)")):
        for t_name, rows in metrics["completeness"].get(name, {}).items():
            rows = [r for r in rows if r["n"] > 0]
            if not rows:
                continue
            x = [r["median"] for r in rows]  # plotted at the bin's median value
            a.errorbar(x, [r["recall"] for r in rows], yerr=[[max(0.0, r["recall"] - r["ci_low"]) for r in rows], [max(0.0, r["ci_high"] - r["recall"]) for r in rows]],
                       marker="o", capsize=2, label=t_name)
        a.set_xlabel(xlabel)
        a.set_ylabel("completeness (injections detected)")
        a.set_ylim(-0.02, 1.02)
        a.legend(fontsize=7)
    if metrics["completeness"].get("arc_snr"):
        ax[0, 1].set_xscale("symlog", linthresh=1.0)
    a = ax[1, 1]
    h = metrics["score_histograms"]
    edges = np.asarray(h["edges"])
    a.stairs(h["control"], edges, label="controls")
    a.stairs(h["injection"], edges, label="injections")
    a.set_yscale("log")
    a.set_xlabel("p_lens")
    a.set_ylabel("count")
    a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
