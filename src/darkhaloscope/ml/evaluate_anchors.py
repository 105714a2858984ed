"""Real-lens anchor evaluation: recall on known lenses against real negatives, plus the
shortcut diagnostics, written as ``evaluation.json``, ``evaluation.md`` and PNG plots.

    result = evaluate_anchors(scorer, "out/anchors/anchor_stamps", negatives="out/dataset/demo",
                              out_dir="runs/demo/eval_anchors", meta_columns=["psf_fwhm_r", "psfdepth_r"],
                              diag_dataset="out/dataset/demo")

Anchor metrics per set (``ground`` = primary, ``slacs_bells``, ``ground_other``, ``all``):
recall at p > 0.5 and p > 0.3, median and max p, and recall at the thresholds that give FPR
1e-2 / 1e-3 / 1e-4 on the real negatives (controls of the test split: real LRG stamps without
injection), each with the number of negatives scoring above it (with 1,000 negatives FPR 1e-3
rests on one stamp; ``resolved`` false when fewer than one); per reference and per grade
breakdowns; top / bottom tables like the seeds'. Metadata of anchors comes from their stamps'
rows (catalog PSF FWHM, invvar-derived depth); NaNs are imputed from the other anchors'
median and counted in the report, never set to 0.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._version import code_version
from ..dataset.stamp import decode_arc, decode_stamp
from ..dataset.storage import StorageOptions
from ..errors import DataFileError, DatasetError
from . import diagnostics as D
from .anchor_report import EVAL_SETS, FPRS, P_THRESHOLDS, render_markdown
from .anchor_stamps import fill_metadata, load_anchor_stamps
from .metrics import tpr_at_fpr

log = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray, dict], np.ndarray]


# ------------------------------------------------------------------ inputs
def _is_dataset_root(path: str) -> bool:
    return not str(path).endswith(".parquet")


def _light_table(source: str, split: str, options: StorageOptions | None):
    import pyarrow as pa

    from ..dataset.reader import read_split

    if _is_dataset_root(source):
        return read_split(source, split, columns=["task_id", "role", "cutout_ok"], options=options)
    p = Path(source)
    if not p.is_file():
        raise DataFileError("stamps file not found", path=str(p))
    t = pq.read_table(p)
    n = t.num_rows
    return pa.table({"task_id": t["task_id"] if "task_id" in t.column_names else pa.array(np.arange(n)),
                     "role": t["role"] if "role" in t.column_names else pa.array(["control"] * n),
                     "cutout_ok": t["cutout_ok"]})


def choose_rows(source: str, split: str, role: str | None, max_rows: int, options: StorageOptions | None = None) -> np.ndarray | None:
    """task_ids of a deterministic sample spread over the whole split (shards are often sorted
    by role or brick, so "the first N rows" is biased): at most ``max_rows``, balanced between
    controls and injections when ``role`` is None. None = every row."""
    if not max_rows:
        return None
    t = _light_table(source, split, options).to_pandas()
    t = t[t["cutout_ok"].astype(bool)]
    if role:
        t = t[t["role"] == role]
    rng = np.random.default_rng(12345)
    t = t.iloc[rng.permutation(len(t))]
    if role is None:
        per = max(1, max_rows // 2)
        t = pd.concat([g.head(per) for _, g in t.groupby("role", sort=True)])
    return np.sort(t["task_id"].to_numpy()[:max_rows])


def iter_stamp_rows(source: str, split: str = "test", role: str | None = None, max_rows: int = 0, batch_size: int = 512,
                    with_arcs: bool = False, columns: Sequence[str] = (), options: StorageOptions | None = None):
    """Yield (images [n, B, S, S], columns dict, arcs or None) batches of ``cutout_ok`` rows of a
    dataset split (or a stamps Parquet file), optionally only one ``role``, at most max_rows
    (a deterministic sample over the whole split, :func:`choose_rows`)."""
    from ..dataset.reader import iter_batches

    cols = sorted({"stamp_npz", "cutout_ok", "role", *columns, *(["arc_npz"] if with_arcs else [])})
    filt = pc.field("cutout_ok")
    chosen = choose_rows(source, split, role, max_rows, options)
    if chosen is not None:
        filt = filt & pc.field("task_id").isin(chosen)
    elif role:
        filt = filt & (pc.field("role") == role)
    if _is_dataset_root(source):
        batches = iter_batches(source, split, columns=cols, batch_size=batch_size, filter=filt, options=options)
    else:
        t = pq.read_table(source)
        if "task_id" not in t.column_names:
            import pyarrow as pa

            t = t.append_column("task_id", pa.array(np.arange(t.num_rows)))
        if "role" not in t.column_names:
            filt = pc.field("cutout_ok") if chosen is None else pc.field("cutout_ok") & pc.field("task_id").isin(chosen)
        batches = t.filter(filt).select([c for c in cols if c in t.column_names]).to_batches(max_chunksize=batch_size)
    for b in batches:
        if b.num_rows == 0:
            continue
        blobs = b.column("stamp_npz").to_pylist()
        images = np.stack([decode_stamp(x)["image"] for x in blobs]).astype(np.float32)
        out = {c: b.column(c).to_numpy(zero_copy_only=False) for c in columns if c in b.schema.names}
        arcs = None
        if with_arcs and "arc_npz" in b.schema.names:
            arcs = [None if a is None else decode_arc(a) for a in b.column("arc_npz").to_pylist()]
        yield images, out, arcs


def score_negatives(scorer: Scorer, source: str, meta_columns: Sequence[str], split: str = "test", max_rows: int = 0,
                    options: StorageOptions | None = None) -> np.ndarray:
    """p of the real negatives: controls (``role == control``) of a dataset split, streamed."""
    ps = []
    for images, cols, _ in iter_stamp_rows(source, split, "control", max_rows, columns=meta_columns, options=options):
        meta = {c: np.asarray(cols[c], np.float64) for c in meta_columns}
        ps.append(np.asarray(scorer(images, meta), np.float64))
    if not ps:
        raise DatasetError(f"no control stamps found in {source} split {split!r}", path=str(source))
    return np.concatenate(ps)


def load_sample(source: str, split: str, max_rows: int, meta_columns: Sequence[str], options: StorageOptions | None = None) -> dict:
    """A sample of a split for the diagnostics: images, role, arc_snr, theta_e, metadata, arcs."""
    imgs, cols, arcs = [], {}, []
    want = [*meta_columns, "arc_snr", "theta_e"]
    for images, c, a in iter_stamp_rows(source, split, None, max_rows, with_arcs=True, columns=[*want, "role"], options=options):
        imgs.append(images)
        for k, v in c.items():
            cols.setdefault(k, []).append(v)
        arcs += a if a is not None else [None] * len(images)
    if not imgs:
        raise DatasetError(f"no rows in {source} split {split!r}", path=str(source))
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out["images"] = np.concatenate(imgs)
    out["arcs"] = arcs
    return out


# ------------------------------------------------------------------ metrics
def _clean(v):
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def set_metrics(p: np.ndarray, neg_p: np.ndarray | None, fprs: Sequence[float] = FPRS) -> dict:
    """Recall at p thresholds and at FPR thresholds on negatives, median/max p, n."""
    p = np.asarray(p, float)
    out = {"n": int(len(p))}
    if len(p) == 0:
        return out
    for t in P_THRESHOLDS:
        out[f"recall_p_gt_{t:g}"] = float((p > t).mean())
    out["median_p"], out["max_p"] = float(np.median(p)), float(p.max())
    if neg_p is not None and len(neg_p):
        y = np.r_[np.ones(len(p), bool), np.zeros(len(neg_p), bool)]
        s = np.r_[p, np.asarray(neg_p, float)]
        for f in fprs:
            r = tpr_at_fpr(y, s, f)
            out[f"recall_at_fpr_{f:g}"] = {"recall": r["tpr"], "threshold": r["threshold"], "fpr_achieved": r["fpr_achieved"],
                                           "n_negatives": r["n_neg"], "n_negatives_above": r["n_neg_above"], "resolved": r["resolved"]}
    return out


def anchor_metrics(df: pd.DataFrame, p: np.ndarray, neg_p: np.ndarray | None = None, top: int = 5) -> dict:
    """Metrics per set, per reference, per grade, and top/bottom tables (see module doc)."""
    df = df.reset_index(drop=True).copy()
    df["p_lens"] = np.asarray(p, float)
    res = {"sets": {}, "per_reference": {}, "per_grade": {}}
    for s in EVAL_SETS:
        col = f"set_{s}"
        m = df[col].astype(bool).to_numpy() if col in df else np.zeros(len(df), bool)
        res["sets"][s] = set_metrics(df["p_lens"].to_numpy()[m], neg_p)
    res["sets"]["all"] = set_metrics(df["p_lens"].to_numpy(), neg_p)
    refs = df["references"].fillna("").str.split(";") if "references" in df else pd.Series([[]] * len(df))
    for key in sorted({k for r in refs for k in r if k}):
        m = refs.map(lambda r, k=key: k in r).to_numpy()
        res["per_reference"][key] = set_metrics(df["p_lens"].to_numpy()[m], None)
    if "grade" in df:
        for g, sub in df.groupby(df["grade"].fillna("").replace("", "ungraded")):
            res["per_grade"][str(g)] = set_metrics(sub["p_lens"].to_numpy(), None)
    cols = [c for c in ("anchor_id", "name", "p_lens", "theta_e", "grade", "anchor_set", "references") if c in df]
    order = df.sort_values("p_lens", ascending=False, kind="mergesort")
    res["top"] = order.head(top)[cols].to_dict("records")
    res["bottom"] = order.tail(top)[cols].iloc[::-1].to_dict("records")
    return res


# ------------------------------------------------------------------ report
def plot_anchor_scores(df: pd.DataFrame, p: np.ndarray, neg_p: np.ndarray | None, path: Path) -> Path:
    """Histogram of p per anchor set and for the negatives; recall vs threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    bins = np.linspace(0, 1, 26)
    thr = np.linspace(0, 1, 101)
    for s in (*EVAL_SETS, "all"):
        m = np.ones(len(df), bool) if s == "all" else (df[f"set_{s}"].astype(bool).to_numpy() if f"set_{s}" in df else np.zeros(len(df), bool))
        if m.any():
            ax[0].hist(p[m], bins=bins, histtype="step", density=True, label=f"{s} ({m.sum()})")
            ax[1].plot(thr, [(p[m] > t).mean() for t in thr], label=s)
    if neg_p is not None and len(neg_p):
        ax[0].hist(neg_p, bins=bins, histtype="stepfilled", alpha=0.3, density=True, color="k", label=f"negatives ({len(neg_p)})")
        ax[1].plot(thr, [(neg_p > t).mean() for t in thr], "k--", label="negatives FPR")
    ax[0].set(xlabel="p_lens", ylabel="density", yscale="log")
    ax[1].set(xlabel="threshold", ylabel="fraction above", yscale="log", ylim=(1e-4, 1.05))
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ orchestration
def run_diagnostics(scorer: Scorer, anchor_images: np.ndarray, anchor_meta: dict, anchor_p: np.ndarray,
                    anchor_theta_e: np.ndarray | None, sample: dict | None, meta_columns: Sequence[str], out_dir: Path,
                    bands: str = "grz", normalization: str = "outer_mad", clip: float = 10.0,
                    theta_e_range: tuple[float, float] = (0.5, 2.5), n_ring: int = 64) -> dict:
    """Every diagnostic of section 3 that the inputs allow; returns {name: Diagnostic}."""
    out: dict[str, D.Diagnostic] = {}
    if len(anchor_images):
        out["anchor_correlations"] = D.score_correlations(anchor_p, anchor_images, anchor_theta_e, bands, out_dir, "anchor_correlations")
    groups = {"anchors": anchor_images if len(anchor_images) else None}
    ring_imgs, ring_meta = [], []
    if sample is not None:
        role = np.asarray(sample["role"]).astype(str)
        inj, ctl = role == "injection", role == "control"
        groups = {"training_positives": sample["images"][inj], "training_negatives": sample["images"][ctl], **groups}
        smeta = {c: np.asarray(sample[c], np.float64) for c in meta_columns}
        sp = np.asarray(scorer(sample["images"], smeta), float)
        out["score_vs_arc_snr"] = D.score_vs_arc_snr(sp, np.asarray(sample.get("arc_snr", np.full(len(sp), np.nan)), float), inj,
                                                     out_dir=out_dir)
        if inj.any():
            out["training_correlations"] = D.score_correlations(sp[inj], sample["images"][inj], np.asarray(sample["theta_e"], float)[inj],
                                                                bands, out_dir, "training_correlations")
        have_arc = np.array([a is not None for a in sample["arcs"]]) & inj
        if have_arc.any():
            idx = np.flatnonzero(have_arc)
            out["arc_suppression"] = D.arc_suppression_test(
                scorer, sample["images"][idx], {c: v[idx] for c, v in smeta.items()},
                np.stack([sample["arcs"][i] for i in idx]), out_dir=out_dir)
        c_idx = np.flatnonzero(ctl)[:n_ring]
        ring_imgs.append(sample["images"][c_idx])
        ring_meta.append({c: v[c_idx] for c, v in smeta.items()})
    if len(anchor_images):
        low = np.argsort(anchor_p, kind="mergesort")[:n_ring]  # the anchors the finder misses
        ring_imgs.append(anchor_images[low])
        ring_meta.append({c: np.asarray(anchor_meta[c])[low] for c in meta_columns})
    if ring_imgs:
        imgs = np.concatenate(ring_imgs)
        meta = {c: np.concatenate([m[c] for m in ring_meta]) for c in meta_columns}
        out["ring_test"] = D.ring_test(scorer, imgs, meta, theta_e_range=theta_e_range, out_dir=out_dir)
    groups = {k: v for k, v in groups.items() if v is not None and len(v)}
    if groups:
        out["central_brightness"] = D.central_brightness(groups, bands, out_dir)
        out["outer_background"] = D.outer_background(groups, bands, out_dir=out_dir)
        out["normalisation_parameters"] = D.normalisation_parameters(groups, bands, normalization, clip, out_dir)
        out["region_flux"] = D.region_flux(groups, bands, normalization, clip, out_dir)
    return out


def evaluate_anchors(scorer: Scorer, anchor_stamps: str | Path, out_dir: str | Path, meta_columns: Sequence[str],
                     negatives: str | None = None, negatives_split: str = "test", max_negatives: int = 0,
                     diag_dataset: str | None = None, diag_split: str = "train", diag_rows: int = 512,
                     normalization: str = "outer_mad", clip: float = 10.0, theta_e_range: tuple[float, float] = (0.5, 2.5),
                     run_name: str = "", options: StorageOptions | None = None) -> dict:
    """Score anchors (and negatives), compute metrics and diagnostics, write the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df, images, info = load_anchor_stamps(anchor_stamps)
    if len(df) == 0:
        raise DataFileError("no anchor stamp has cutout_ok = true", path=str(anchor_stamps))
    meta, imputed = fill_metadata(df, meta_columns)
    p = np.asarray(D._score(scorer, images, meta), float) if meta_columns else np.asarray(scorer(images, {}), float)
    neg_p = score_negatives(scorer, negatives, meta_columns, negatives_split, max_negatives, options) if negatives else None
    info["n_scored"] = int(len(df))
    result = {"run": run_name, "code_version": code_version(), "anchor_stamps": str(anchor_stamps), "anchor_info": info,
              "negatives_source": f"{negatives} ({negatives_split} controls)" if negatives else None,
              "n_negatives": 0 if neg_p is None else int(len(neg_p)),
              "metadata": {"columns": list(meta_columns), "imputed": imputed,
                           "sources": {str(k): int(v) for k, v in df.get("metadata_source", pd.Series(dtype=str)).value_counts().items()}},
              "anchors": anchor_metrics(df, p, neg_p)}
    sample = load_sample(diag_dataset, diag_split, diag_rows, meta_columns, options) if diag_dataset else None
    theta = df["theta_e"].to_numpy(float) if "theta_e" in df else None
    diags = run_diagnostics(scorer, images, meta, p, theta, sample, meta_columns, out_dir, normalization=normalization, clip=clip,
                            theta_e_range=theta_e_range)
    result["diagnostics"] = {k: {"numbers": d.numbers, "table": d.table, "figure": str(d.figure) if d.figure else None}
                             for k, d in diags.items()}
    result["figures"] = {"anchor_scores": str(plot_anchor_scores(df, p, neg_p, out_dir / "anchor_scores.png"))}
    result = _clean(result)
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    (out_dir / "evaluation.md").write_text(render_markdown(result))
    scores = df[[c for c in ("anchor_id", "name", "anchor_set", "grade", "references") if c in df]].copy()
    scores["p_lens"] = p
    scores.to_csv(out_dir / "anchor_scores.csv", index=False)
    return result


def evaluate_run_on_anchors(run_dir: str | Path, anchor_stamps: str | Path, negatives: str | None = None,
                            out_dir: str | Path | None = None, device: str = "auto", checkpoint: str = "best",
                            negatives_split: str = "test", max_negatives: int = 0, diag_dataset: str | None = None,
                            diag_rows: int = 512, options: StorageOptions | None = None) -> dict:
    """:func:`evaluate_anchors` with a trained run (``ml.predict``): its metadata features,
    normalisation and training theta_E range; diagnostics on the run's own dataset (train split)."""
    from .predict import load_run, score_stamps

    run_dir = Path(run_dir)
    run = load_run(run_dir, device, checkpoint)
    if diag_dataset is None and (run_dir / "run.json").is_file():
        diag_dataset = json.loads((run_dir / "run.json").read_text()).get("dataset")
    lens = run.cfg.lens
    return evaluate_anchors(lambda x, m: score_stamps(run, x, m), anchor_stamps, Path(out_dir) if out_dir else run_dir / "eval_anchors",
                            list(run.stats["meta"]["features"]), negatives=negatives, negatives_split=negatives_split,
                            max_negatives=max_negatives, diag_dataset=diag_dataset, diag_rows=diag_rows,
                            normalization=run.stats["normalization"], clip=float(run.stats["norm_clip"]),
                            theta_e_range=(lens.theta_e_min, lens.theta_e_max), run_name=str(run_dir), options=options)
