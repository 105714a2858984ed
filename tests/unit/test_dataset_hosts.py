"""Host rows: a cutout -> host row -> Cutout round trip is exact (pixels bit for bit, same
grids, so re-encoding gives the same stamp bytes); failed cutouts keep their reason; a host row
of another geometry is refused; the schema passes task columns through."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import survey_helpers

from darkhaloscope.config import replace
from darkhaloscope.dataset.host_schema import HOST_COLUMN_NAMES, host_schema, rows_to_host_table
from darkhaloscope.dataset.hosts import cutout_from_host_row, host_hash, host_row
from darkhaloscope.dataset.stamp import decode_stamp_grids, encode_stamp
from darkhaloscope.errors import CatalogError
from darkhaloscope.survey.brick_reader import BrickReader
from darkhaloscope.survey.cutout import Cutout

small_survey = survey_helpers.small_survey  # session fixture


def _cutouts(cfg, root):
    from astropy.io import fits

    t = fits.getdata(root / "tractor" / "150" / "tractor-1500p100.fits", 1)
    reader = BrickReader(str(root))
    pos = [(float(t["ra"][i]), float(t["dec"][i])) for i in range(3)]
    cuts = [reader.cutout(ra, dec, cfg.survey.stamp_size, cfg.survey.bands, brickname="1500p100") for ra, dec in pos]
    return pos, cuts


def test_round_trip_is_exact_and_reencodes_identically(small_survey):
    cfg, root = small_survey
    pos, cuts = _cutouts(cfg, root)
    for i, ((ra, dec), cut) in enumerate(zip(pos, cuts, strict=True)):
        assert cut.ok, cut.reason
        task = {"task_id": i, "galaxy_id": f"g{i}", "brickname": "1500p100", "ra": ra, "dec": dec, "split": "train",
                "role": "control", "z_spec": 0.4}
        row = host_row(task, cut, cfg)
        assert row["z_spec"] == 0.4 and row["stamp_quantised"] is True
        back = cutout_from_host_row(row, cfg)
        for name in ("image", "invvar", "maskbits"):
            a, b = getattr(cut, name), getattr(back, name)
            assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8)), name
        # an injection-like addend on top: the host's integers + addends are the same bytes
        arc = np.zeros_like(cut.image)
        arc[:, 30:34, 30:34] = 0.1
        img = (cut.image + arc).astype(np.float32)
        assert encode_stamp(img, cut.invvar, cut.maskbits, grids=cut.grids, host_image=cut.image) == \
            encode_stamp(img, back.invvar, back.maskbits, grids=back.grids, host_image=back.image)
        assert row["stamp_npz"] == encode_stamp(back.image, back.invvar, back.maskbits, grids=back.grids)


def test_grids_recovered_equal_the_readers():
    from darkhaloscope.dataset.fits_quant import QuantGrid

    g = QuantGrid(1, 7, (100, 100), (3600, 3600), (10, 90), (0, 0), np.array([[0.5, 0.25]]), np.array([[0.0, 1.5]]))
    blob = encode_stamp(np.zeros((2, 8, 8), np.float32), np.ones((2, 8, 8), np.float32), np.zeros((8, 8), np.int32),
                        grids={"image": [g, None], "invvar": [None, None]})
    got = decode_stamp_grids(blob)
    assert got["invvar"] == [None, None] and got["image"][1] is None
    h = got["image"][0]
    assert (h.method, h.dither0, h.tile, h.shape, h.origin, h.tile0) == (g.method, g.dither0, g.tile, g.shape, g.origin, g.tile0)
    assert np.array_equal(h.scale, g.scale) and np.array_equal(h.zero, g.zero)


def test_failed_cutout_keeps_reason_and_geometry_is_checked(small_survey):
    cfg, _ = small_survey
    task = {"task_id": 5, "galaxy_id": "g", "brickname": "0001p000", "ra": 0.1, "dec": 0.0, "split": "val", "role": "injection"}
    row = host_row(task, Cutout.failed("missing file coadd/000/0001p000/x.fits.fz", 64, 3, "0001p000"), cfg)
    assert row["cutout_ok"] is False and row["stamp_npz"] is None and "missing file" in row["cutout_reason"]
    back = cutout_from_host_row(row, cfg)
    assert not back.ok and back.reason == row["cutout_reason"]
    with pytest.raises(CatalogError, match="stamp_size"):
        cutout_from_host_row(row, replace(cfg, **{"survey.stamp_size": 48}))
    assert host_hash(cfg) != host_hash(replace(cfg, **{"survey.stamp_size": 48}))
    assert host_hash(cfg) == host_hash(replace(cfg, **{"lens.theta_e_max": 2.0}))  # recipes share hosts


def test_schema_passes_task_columns_through():
    a = pa.schema([("task_id", pa.int64()), ("ra", pa.float64()), ("z_phot", pa.float32()), ("mw_transmission_g", pa.float32())])
    b = pa.schema([("task_id", pa.int64()), ("z_phot", pa.float32()), ("sigma_v", pa.float64())])
    s = host_schema([a, b])
    assert s.names[: len(HOST_COLUMN_NAMES)] == list(HOST_COLUMN_NAMES)
    assert s.names[len(HOST_COLUMN_NAMES):] == ["z_phot", "mw_transmission_g", "sigma_v"]
    assert s.field("z_phot").type == pa.float32()
    with pytest.raises(CatalogError, match="disagree"):
        host_schema([a, pa.schema([("z_phot", pa.string())])])
    t = rows_to_host_table([{"task_id": 1, "galaxy_id": "g", "brickname": "b", "ra": 1.0, "dec": 2.0, "split": "train", "role": "control",
                             "cutout_ok": False, "stamp_source": "bricks", "stamp_quantised": False, "stamp_size": 64, "bands": "grz",
                             "host_hash": "h", "code_version": "v", "z_phot": 0.5}], s)
    assert t.num_rows == 1 and t["sigma_v"][0].as_py() is None
