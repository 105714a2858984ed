"""The host-table notebook's code (report/host_gallery.py) on a host table written from real
synthetic-brick cutouts; the notebook itself is valid nbformat and calls that function."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import survey_helpers

from darkhaloscope.dataset.host_schema import host_schema, rows_to_host_table
from darkhaloscope.dataset.hosts import host_row
from darkhaloscope.report.host_gallery import host_gallery
from darkhaloscope.survey.brick_reader import BrickReader

small_survey = survey_helpers.small_survey  # session fixture
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore_hosts.ipynb"


def test_host_gallery_shows_real_stamps_and_metadata(small_survey, tmp_path):
    import pyarrow as pa
    from astropy.io import fits

    cfg, root = small_survey
    t = fits.getdata(root / "tractor" / "150" / "tractor-1500p100.fits", 1)
    reader = BrickReader(str(root))
    rows = []
    for i in range(5):
        task = {"task_id": 100 - i, "galaxy_id": f"g{i}", "brickname": "1500p100", "ra": float(t["ra"][i]), "dec": float(t["dec"][i]),
                "split": "train", "role": "control", "flux_r": float(t["flux_r"][i]), "z_spec": 0.1 * i}
        cut = reader.cutout(task["ra"], task["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname="1500p100")
        rows.append({**host_row(task, cut, cfg), "host_hash": "h", "code_version": "v"})
    schema = host_schema([pa.schema([("flux_r", pa.float64()), ("z_spec", pa.float64())])])
    (tmp_path / "hosts" / "split=train").mkdir(parents=True)
    pq.write_table(rows_to_host_table(rows, schema), tmp_path / "hosts" / "split=train" / "part-00000.parquet")
    fig, table = host_gallery(str(tmp_path / "hosts"), "train", n=3)
    ok = sorted(r["task_id"] for r in rows if r["cutout_ok"])[:3]
    assert table["task_id"].tolist() == ok and {"flux_r", "z_spec", "brickname"} <= set(table.columns)
    assert len(fig.axes) == 2 * len(ok)
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (cfg.survey.stamp_size, cfg.survey.stamp_size, 3) and np.asarray(shown).max() > 0


def test_notebook_is_valid_and_uses_the_tested_function():
    """nbformat 4 structure (the keys nbformat.validate requires of v4.5 cells), every code cell
    parses as Python, and the gallery cell calls the function tested above."""
    import ast

    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 5 and "kernelspec" in nb["metadata"]
    code = []
    for cell in nb["cells"]:
        assert {"cell_type", "metadata", "source", "id"} <= set(cell)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and "execution_count" in cell
            code.append("".join(cell["source"]))
            ast.parse(code[-1])
    text = "\n".join(code)
    assert "host_gallery(" in text and "read_host_rows" in text and "decode_stamp" in text
