"""jobs/build_tasks.py's run() on Spark local[2] writes the same task rows as the in-process path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
import survey_helpers  # noqa: E402

from darkhaloscope.survey import tasks  # noqa: E402

pytestmark = pytest.mark.integration
small_survey = survey_helpers.small_survey  # session fixture
REPO = Path(__file__).resolve().parents[2]


def _rows(path):
    t = pads.dataset(str(path)).to_table()
    return t.sort_by("task_id").to_pylist()


def test_spark_run_equals_in_process(small_survey, spark, tmp_path):
    cfg, root = small_survey
    local = tasks.build_tasks(cfg, str(root / "tractor"), str(tmp_path / "local"))
    dist = tasks.run(spark, cfg, str(root / "tractor"), str(tmp_path / "spark"), files_per_partition=1)
    assert local["tasks"] == dist["tasks"] > 10
    assert sorted(p.name for p in (tmp_path / "spark").glob("part-*.parquet")) == ["part-00000.parquet", "part-00001.parquet"]
    assert _rows(tmp_path / "local") == _rows(tmp_path / "spark")


def test_job_entry_point_and_max_tasks(small_survey, spark, tmp_path):
    cfg, root = small_survey
    spec = importlib.util.spec_from_file_location("build_tasks_job", REPO / "jobs" / "build_tasks.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("seed: 7\ntasks:\n  max_tasks: 10\n")
    assert job.main(["--config", str(cfg_file), "--catalogs", str(root / "tractor"), "--out", str(tmp_path / "t")]) == 0
    rows = _rows(tmp_path / "t")
    assert len(rows) == 10
    # the same 10 in-process (deterministic hash subsample)
    from darkhaloscope.config import load_config

    tasks.build_tasks(load_config(cfg_file), str(root / "tractor"), str(tmp_path / "u"))
    assert [r["task_id"] for r in rows] == [r["task_id"] for r in _rows(tmp_path / "u")]
