"""Real-stamp roles end to end, real parts only: a catalogue of known lenses and impostors ->
``positions`` (split by sky region, anchors kept out of training) -> ``stage`` (Spark local[2],
synthetic DR10-format bricks) -> ``generate --hosts`` -> rows of role known_lens (label 1) and
impostor (label 0) whose stamps are the host cutouts, unpainted, in the split written down."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from darkhaloscope.dataset.hosts import cutout_from_host_row, read_host_rows
from darkhaloscope.dataset.reader import read_split
from darkhaloscope.dataset.stamp import decode_stamp
from darkhaloscope.regions import PASS_THROUGH, position_table
from darkhaloscope.spark import stage
from darkhaloscope.spark.job import run as generate

sys.path.insert(0, str(Path(__file__).parent))
from test_stage_job import world  # noqa: E402, F401 (module fixture: synthetic survey, tasks, bank)

pytestmark = pytest.mark.integration


def _extra(rows: list[dict]) -> dict:
    """The hosts' DR10 PSF size, depth and flux, as a sweep match would give them."""
    return {c: [r[c] for r in rows] for c in PASS_THROUGH}


def test_known_lenses_and_impostors_through_stage_and_generate(spark, world, tmp_path):  # noqa: F811
    cfg = world["cfg"]
    lrg = [r for r in world["table"].sort_by("task_id").to_pylist() if 40 < r["bx"] < 260 and 40 < r["by"] < 260]  # stamps inside a 300-px brick
    kl, imp = lrg[:6], lrg[6:10]  # real positions on the synthetic sky stand in for catalogue entries
    anchors = kl[:2]  # two of the known lenses are also evaluation anchors
    tables = [position_table([r["ra"] for r in kl], [r["dec"] for r in kl], [f"KL{i}" for i in range(len(kl))], "known_lens", cfg,
                             [a["ra"] + 0.5 / 3600 for a in anchors], [a["dec"] for a in anchors], ["A0", "A1"],
                             bricknames=[r["brickname"] for r in kl], extra=_extra(kl)),
              position_table([r["ra"] for r in imp], [r["dec"] for r in imp], [f"IM{i}" for i in range(len(imp))], "impostor", cfg,
                             bricknames=[r["brickname"] for r in imp], extra=_extra(imp))]
    pos_dir = tmp_path / "positions"
    pos_dir.mkdir()
    for k, t in enumerate(tables):
        pq.write_table(t, pos_dir / f"part-{k}.parquet")
    written = {r["task_id"]: r for t in tables for r in t.to_pylist()}
    assert all(written[t]["split"] == "test" for t in written if written[t]["name"] in ("KL0", "KL1"))

    hosts = stage.run(spark, cfg, str(pos_dir), world["survey"], str(tmp_path / "hosts"))
    summary = generate(spark, cfg, "", "", world["bank"], str(tmp_path / "ds"), hosts=hosts["dataset"])
    host_rows = {r["task_id"]: r for r in read_host_rows(hosts["dataset"]).to_pylist()}
    rows = [r for s in ("train", "val", "test") for r in read_split(summary["dataset"], s).to_pylist()]
    assert sorted(r["task_id"] for r in rows) == sorted(written)
    for r in rows:
        w = written[r["task_id"]]
        assert r["role"] == w["role"] and r["split"] == w["split"]
        assert r["label"] == (1 if r["role"] == "known_lens" else 0)
        assert r["cutout_ok"], r["cutout_reason"]
        assert r["arc_npz"] is None and r["theta_e"] is None and r["lookalike_kind"] is None  # nothing painted
        host = cutout_from_host_row(host_rows[r["task_id"]], cfg)
        assert np.array_equal(decode_stamp(r["stamp_npz"])["image"], host.image)
