"""Synthetic spectroscopy (survey/synth_spec.py) and the task table's population columns."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from survey_helpers import small_survey  # noqa: E402, F401  (session fixture)

from darkhaloscope.config import Config  # noqa: E402
from darkhaloscope.survey.synth_spec import SPEC_FRACTION, add_spectroscopy  # noqa: E402


def _catalog(n: int) -> dict:
    rng = np.random.default_rng(3)
    zp = np.where(np.arange(n) % 4 == 3, np.nan, rng.uniform(0.3, 0.8, n)).astype(np.float32)  # every 4th: not an LRG
    return {"brickid": np.full(n, 77, np.int32), "objid": np.arange(n, dtype=np.int32), "z_phot_median": zp,
            "flux_r": rng.uniform(3.0, 30.0, n).astype(np.float32), "mw_transmission_r": np.full(n, 0.95, np.float32)}


def test_part_of_the_lrgs_get_a_spectrum_close_to_their_photo_z():
    cat = add_spectroscopy(Config(), _catalog(4000))
    zp, zs, sv = cat["z_phot_median"], cat["z_spec"], cat["sigma_v"]
    lrg = np.isfinite(zp)
    has = np.isfinite(zs)
    assert not has[~lrg].any()  # no photo-z, no spectrum
    assert abs(has[lrg].mean() - SPEC_FRACTION) < 0.03
    dz = (zs[has] - zp[has]) / (1 + zp[has])
    assert 0.015 < np.std(dz) < 0.025 and abs(np.mean(dz)) < 0.003  # the 0.02 (1+z) photo-z scatter
    assert np.all(np.isfinite(sv[has])) and 100 < np.median(sv[has]) < 500
    again = add_spectroscopy(Config(), _catalog(4000))
    np.testing.assert_array_equal(again["z_spec"], zs)  # deterministic


def test_task_table_carries_the_population_columns(small_survey, tmp_path):  # noqa: F811
    from darkhaloscope.survey.tasks import build_tasks

    cfg, root = small_survey
    build_tasks(cfg, str(root / "tractor"), str(tmp_path / "tasks"))
    t = pq.read_table(tmp_path / "tasks" / "part-00000.parquet")
    for c in ("mw_transmission_g", "mw_transmission_r", "mw_transmission_z", "shape_e1", "shape_e2", "z_spec", "sigma_v"):
        assert c in t.column_names, c
    trans = t["mw_transmission_r"].to_numpy(zero_copy_only=False)
    assert np.all((trans > 0.5) & (trans <= 1.0))
    assert t["shape_e1"].null_count == 0
    assert 0 < t["z_spec"].null_count < t.num_rows  # part of the LRGs have spectroscopy
