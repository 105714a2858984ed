"""Fault 5: odd pixels and odd catalog values. NaN / inf pixels, negative or all-zero invvar, a
fully masked stamp, NaN PSF or flux in the task: the row is flagged with a reason, the SNRs are
null with a reason, and no column that claims a number ever holds NaN or inf."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import assert_no_nan_numbers, assert_row_numbers_finite

from darkhaloscope.dataset.rows import encode_row
from darkhaloscope.dataset.schema import rows_to_table
from darkhaloscope.dataset.stamp import decode_stamp
from darkhaloscope.inject import inject as inject_arrays
from darkhaloscope.sources.bank import SourceBank
from darkhaloscope.survey.brick_reader import BrickReader

SNR_COLUMNS = ("arc_snr", "arc_snr_sum", "arc_snr_region")


def inject(task, cutout, bank, cfg):
    """inject() + the dataset layer's encoding: the row a dataset holds."""
    return encode_row(inject_arrays(task, cutout, bank, cfg), cfg.render.write_arc)


@pytest.fixture(scope="module")
def base(world):
    """(bank, {role: (task, good cutout)}) from the real tiny survey."""
    cfg = world.cfg
    bank = SourceBank.open(str(world.bank))
    reader = BrickReader(str(world.survey))
    picked = {}
    for t in world.tasks:
        if t["role"] in picked:
            continue
        cut = reader.cutout(t["ra"], t["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=t["brickname"])
        if cut.ok:
            picked[t["role"]] = (t, cut)
    reader.close()
    assert set(picked) == {"control", "injection"}
    return bank, picked


def _set(arr_name, index, value):
    def f(cut):
        arr = getattr(cut, arr_name).copy()
        arr[index] = value
        return dataclasses.replace(cut, **{arr_name: arr})
    return f


R = 1  # band index of r in "grz"
# name -> (cutout change, task change, expected cutout_ok, words in the reason (cutout_reason or snr_reason))
PIXEL_CASES = {
    "nan-image-pixel": (_set("image", (R, 30, 31), np.nan), {}, False, "non-finite pixels"),
    "inf-image-pixel": (_set("image", (0, 5, 7), np.inf), {}, False, "non-finite pixels"),
    "minus-inf-image": (_set("image", (2, 60, 2), -np.inf), {}, False, "non-finite pixels"),
    "nan-invvar-pixel": (_set("invvar", (2, 40, 40), np.nan), {}, False, "invvar has non-finite"),
    "inf-invvar-pixel": (_set("invvar", (R, 0, 0), np.inf), {}, False, "invvar has non-finite"),
    "negative-invvar": (_set("invvar", (R, 32, 32), -1.0), {}, False, "negative"),
    "invvar-all-zero": (_set("invvar", slice(None), 0.0), {}, False, "invvar is zero everywhere"),
    "fully-masked": (_set("maskbits", slice(None), 1 << 1), {}, True, "no good pixels"),
    "snr-band-no-data": (_set("invvar", R, 0.0), {}, True, "no good pixels"),
    "nan-psfsize": (None, {"psfsize_r": float("nan")}, False, "psfsize_r"),
    "zero-psfsize": (None, {"psfsize_g": 0.0}, False, "psfsize_g"),
}


@pytest.mark.parametrize("role", ["injection", "control"])
@pytest.mark.parametrize("case", sorted(PIXEL_CASES))
def test_bad_pixels_flag_the_row_and_never_store_nan(case, role, world, base, tmp_path):
    bank, picked = base
    task, cut = picked[role]
    change_cut, change_task, ok, words = PIXEL_CASES[case]
    cut = change_cut(cut) if change_cut else cut
    task = {**task, **change_task}

    row = inject(task, cut, bank, world.cfg)

    assert_row_numbers_finite(row)
    assert row["task_id"] == task["task_id"] and row["role"] == role
    if role == "control" and ok:  # a control has no arc: only the stamp matters
        assert row["cutout_ok"] is True and row["arc_snr"] is None
    else:
        assert row["cutout_ok"] is ok
        reason = row["cutout_reason"] if not ok else row["snr_reason"]
        assert reason and words in reason, reason
    if not ok:
        assert row["stamp_npz"] is None
        if role == "injection":
            assert row["snr_reason"].startswith("no stamp: ")
    if role == "injection":
        assert all(row[c] is None for c in SNR_COLUMNS) and row["snr_reason"]  # SNRs null, with a reason
    if ok:  # the stamp is kept as it came: its pixels are still finite
        arrays = decode_stamp(row["stamp_npz"])
        assert np.isfinite(arrays["image"]).all() and np.isfinite(arrays["invvar"]).all()
    # through Arrow and Parquet: nulls stay nulls, no NaN appears
    path = tmp_path / "rows.parquet"
    pq.write_table(rows_to_table([row]), path)
    assert_no_nan_numbers(pq.read_table(path))


def test_nan_catalog_numbers_become_nulls(world, base):
    """NaN / inf in the task's flux and depth columns: the row stores null, and the injection
    (catalog brightness mode) still happens because those values are not needed for it."""
    bank, picked = base
    task, cut = picked["injection"]
    task = {**task, "flux_g": float("nan"), "flux_z": float("inf"), "psfdepth_r": float("nan")}
    row = inject(task, cut, bank, world.cfg)
    assert_row_numbers_finite(row)
    assert row["flux_g"] is None and row["flux_z"] is None and row["psfdepth_r"] is None
    assert row["cutout_ok"] is True and row["arc_snr"] is not None and row["arc_snr"] > 0


def test_every_row_of_a_real_run_has_numbers_or_reasons(world, base):
    """Over every task of the tiny survey: injections without an SNR say why; failed stamps say why;
    the table has no NaN in any float column."""
    bank, _ = base
    cfg = world.cfg
    reader = BrickReader(str(world.survey))
    rows = [inject(t, reader.cutout(t["ra"], t["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=t["brickname"]), bank, cfg)
            for t in world.tasks]
    reader.close()
    assert_no_nan_numbers(rows_to_table(rows))
    for r in rows:
        assert r["cutout_ok"] or r["cutout_reason"]
        if r["role"] == "injection" and r["arc_snr"] is None:
            assert r["snr_reason"]
    assert any(not r["cutout_ok"] for r in rows) and any(r["arc_snr"] for r in rows)
    assert isinstance(rows_to_table(rows), pa.Table)
