"""evaluate_anchors end to end on a toy dataset with a hand-made scorer: metrics equal an
independent numpy computation, every report file and figure is written."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from darkhaloscope.dataset.host_schema import HOST_COLUMN_NAMES, host_schema, rows_to_host_table
from darkhaloscope.dataset.stamp import encode_stamp
from darkhaloscope.ml.anchor_stamps import NO_MASKBITS
from darkhaloscope.ml.evaluate_anchors import evaluate_anchors, load_anchor_stamps
from darkhaloscope.ml.toydata import make_stamp, write_toy_dataset

sys.path.insert(0, str(Path(__file__).parent))
from test_diagnostics import _toy, make_ring_scorer  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalanchors")
    root = write_toy_dataset(tmp / "ds", {"train": 96, "test": 240}, seed=3, shards=2, n_failed=2, arc_snr_range=(0.5, 20.0))
    ref_images = _toy(48, False, 1)[0]
    scorer = make_ring_scorer(ref_images)
    rows = []
    for i in range(30):
        s = make_stamp(np.random.default_rng([7, i]), 64, inject=i % 3 != 0)
        rows.append({
            # a host row of the anchors' host table (anchors cutouts = stage over the anchor table)
            "task_id": i, "galaxy_id": f"A{i:03d}", "brickname": "", "ra": 150.0 + i, "dec": 2.0, "split": "test", "role": "known_lens",
            "stamp_source": "cutout_service", "stamp_quantised": False, "stamp_size": 64, "bands": "grz", "host_hash": "h", "code_version": "v",
            "anchor_id": f"A{i:03d}", "name": f"lens{i}", "anchor_set": "ground" if i < 20 else "slacs_bells",
            "set_ground": i < 20, "set_slacs_bells": i >= 20, "set_ground_other": False, "set_other": False,
            "grade": "A" if i % 2 else "B", "references": "huang2021" if i < 10 else ("storfer2022" if i < 20 else "slacs"),
            "theta_e": s.get("theta_e", 1.0), "stamp_npz": encode_stamp(s["image"], s["invvar"], np.zeros((64, 64), np.int32)),
            "cutout_ok": True, "cutout_note": NO_MASKBITS,
            "psfsize_r": np.nan if i == 4 else s["psf_fwhm_r"], "psfdepth_r": s["psfdepth_r"], "metadata_source": "service-tractor",
        })
    rows.append({**rows[0], "task_id": 99, "anchor_id": "Afail", "name": "failed", "cutout_ok": False, "stamp_npz": None})
    path = tmp / "anchors" / "anchor_stamps"
    extra = pa.Table.from_pylist([{k: v for k, v in r.items() if k not in HOST_COLUMN_NAMES} for r in rows]).schema
    (path / "split=test").mkdir(parents=True)
    pq.write_table(rows_to_host_table(rows, host_schema([extra])), path / "split=test" / "part-00000.parquet")
    out = tmp / "eval"
    result = evaluate_anchors(scorer, path, out, ["psf_fwhm_r", "psfdepth_r"], negatives=str(root), diag_dataset=str(root),
                              diag_split="train", diag_rows=96, run_name="toy")
    return root, path, out, result, scorer


def test_metrics_match_independent_computation(setup):
    root, path, out, result, scorer = setup
    df, images, info = load_anchor_stamps(path)
    assert info["n_cutout_failed"] == 1 and len(df) == 30
    fw = df["psf_fwhm_r"].to_numpy(float)
    fw[np.isnan(fw)] = np.nanmedian(fw)  # imputation: the other anchors' median, never 0
    p = scorer(images, {"psf_fwhm_r": fw, "psfdepth_r": df["psfdepth_r"].to_numpy(float)})
    g = df["set_ground"].to_numpy(bool)
    m = result["anchors"]["sets"]["ground"]
    assert m["n"] == 20 and result["anchors"]["sets"]["slacs_bells"]["n"] == 10
    assert m["recall_p_gt_0.5"] == pytest.approx(float((p[g] > 0.5).mean()))
    assert m["recall_p_gt_0.3"] == pytest.approx(float((p[g] > 0.3).mean()))
    assert m["median_p"] == pytest.approx(float(np.median(p[g])))
    assert result["metadata"]["imputed"] == {"psf_fwhm_r": 1, "psfdepth_r": 0}
    # recall at FPR on real negatives: independent threshold = the (k+1)-th highest negative score
    import pandas as pd

    from darkhaloscope.dataset.reader import read_split
    from darkhaloscope.dataset.stamp import decode_stamp

    t = read_split(str(root), "test").to_pandas()
    t = t[t["cutout_ok"] & (t["role"] == "control")]
    neg = scorer(np.stack([decode_stamp(b)["image"] for b in t["stamp_npz"]]),
                 {"psf_fwhm_r": t["psf_fwhm_r"].to_numpy(float), "psfdepth_r": t["psfdepth_r"].to_numpy(float)})
    assert result["n_negatives"] == len(neg) == 120
    r = m["recall_at_fpr_0.01"]
    k = math.floor(0.01 * len(neg))
    thr = np.sort(neg)[::-1][k]
    assert r["n_negatives"] == len(neg) and r["n_negatives_above"] == k
    assert r["recall"] == pytest.approx(float((p[g] > thr).mean()))
    assert not m["recall_at_fpr_0.0001"]["resolved"]  # 120 negatives cannot resolve FPR 1e-4
    # per reference / grade / top-bottom
    assert result["anchors"]["per_reference"]["huang2021"]["n"] == 10
    assert result["anchors"]["per_grade"]["A"]["n"] == 15
    assert result["anchors"]["top"][0]["p_lens"] == pytest.approx(float(p.max()))
    assert result["anchors"]["bottom"][0]["p_lens"] == pytest.approx(float(p.min()))
    assert pd.read_csv(out / "anchor_scores.csv")["p_lens"].to_numpy() == pytest.approx(p)


def test_report_files_and_diagnostics(setup):
    _, _, out, result, _ = setup
    for f in ("evaluation.json", "evaluation.md", "anchor_scores.png"):
        assert (out / f).is_file()
    back = json.loads((out / "evaluation.json").read_text())
    assert back["anchors"]["sets"]["ground"]["n"] == 20
    names = {"anchor_correlations", "training_correlations", "score_vs_arc_snr", "arc_suppression", "ring_test",
             "central_brightness", "outer_background", "normalisation_parameters", "region_flux"}
    assert names <= set(result["diagnostics"])
    for n in names:
        assert Path(result["diagnostics"][n]["figure"]).is_file(), n
    assert result["diagnostics"]["arc_suppression"]["numbers"]["score_falls"] is True
    md = (out / "evaluation.md").read_text()
    assert "| ground | 20 |" in md and "Bottom scorers" in md and "ring_test.png" in md
