"""Sweep/Tractor reading, DESI LRG cuts vs an independent application in this test, task table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest
from astropy.io import fits

from darkhaloscope.config import config_from_dict, replace
from darkhaloscope.errors import CatalogError, SecurityError
from darkhaloscope.ids import make_task_id
from darkhaloscope.survey.bricks import Brick, write_bricks_table
from darkhaloscope.survey.catalogs import read_catalog
from darkhaloscope.survey.lrg import lrg_mask
from darkhaloscope.survey.tasks import build_tasks, check_relpath, list_catalogs

SAMPLES = "desitarget_sweep_tractor_samples"


def independent_lrg(path: Path, mask_bits=(1, 12, 13)) -> np.ndarray:
    """Zhou et al. 2023 south LRG cuts written out from the paper, straight on the FITS columns."""
    t = fits.getdata(path, 1)
    up = {c.upper(): c for c in t.columns.names}

    def col(name):
        return np.asarray(t[up[name]], float)

    def mag(flux):
        return 22.5 - 2.5 * np.log10(np.clip(flux, 1e-7, None))

    g, r, z, w1 = (col(f"FLUX_{b}") / col(f"MW_TRANSMISSION_{b}") for b in ("G", "R", "Z", "W1"))
    zfib = col("FIBERFLUX_Z") / col("MW_TRANSMISSION_Z")
    zfibtot = col("FIBERTOTFLUX_Z") / col("MW_TRANSMISSION_Z")
    gaia = col("GAIA_PHOT_G_MEAN_MAG")
    mb = np.asarray(t[up["MASKBITS"]]).astype(int)
    sel = (col("FLUX_IVAR_R") > 0) & (r > 0) & (col("FLUX_IVAR_Z") > 0) & (z > 0) & (zfib > 0)
    sel &= (col("FLUX_IVAR_W1") > 0) & (w1 > 0)
    sel &= (gaia == 0) | (gaia > 18)
    sel &= zfibtot < 10 ** (-0.4 * (17.5 - 22.5))
    sel &= (col("NOBS_G") > 0) & (col("NOBS_R") > 0) & (col("NOBS_Z") > 0)
    for bit in mask_bits:
        sel &= (mb & 2**bit) == 0
    gm, rm, zm, wm, zf = mag(g), mag(r), mag(z), mag(w1), mag(zfib)
    sel &= zm - wm > 0.8 * (rm - zm) - 0.6
    sel &= zf < 21.6
    sel &= (gm - wm > 2.9) | (rm - wm > 1.8)
    sel &= ((rm - wm > (wm - 17.14) * 1.8) & (rm - wm > wm - 16.33)) | (rm - wm > 3.3)
    return sel


def sample_files(shared_data):
    return sorted((shared_data / SAMPLES).glob("*-*.fits"))


def test_columns_map_from_dr8_sweeps_and_tractor(shared_data):
    for p in sample_files(shared_data):
        c = read_catalog(p)
        t = fits.getdata(p, 1)
        assert c["n"] == len(t) == 6
        assert np.array_equal(c["flux_r"], t["FLUX_R"]) and np.array_equal(c["objid"], t["OBJID"])
        assert set(c["type"]) <= {"PSF", "REX", "DEV", "EXP", "COMP", "SER"}
        assert c["psfsize_r"] is None  # the DR8 excerpts have no PSFSIZE_*
        assert c["psfdepth_r"] is not None and c["brickname"] is not None
        # DR8 shapes map to shape_r by type
        typ = c["type"]
        exp = np.where(typ == "DEV", t["SHAPEDEV_R"], t["SHAPEEXP_R"])
        assert np.allclose(c["shape_r"], exp)


def test_lrg_selection_equals_independent_cuts(shared_data):
    cfg = config_from_dict({})
    total = 0
    for p in sample_files(shared_data):
        mine = lrg_mask(read_catalog(p), cfg.tasks.lrg)
        assert np.array_equal(mine, independent_lrg(p)), p.name
        total += int(mine.sum())
        # without mask bits more pass, identically
        loose = replace(cfg, **{"tasks.lrg.reject_maskbits": []})
        assert np.array_equal(lrg_mask(read_catalog(p), loose.tasks.lrg), independent_lrg(p, mask_bits=()))
    assert total == 3  # counted with the independent cuts above; guards against both being empty


def test_lower_case_columns_read_the_same(shared_data, tmp_path):
    src = sample_files(shared_data)[0]
    with fits.open(src) as h:
        t = h[1]
        cols = [fits.Column(c.name.lower(), c.format, array=t.data[c.name]) for c in t.columns]
    out = tmp_path / "tractor-3301m002.fits"
    fits.BinTableHDU.from_columns(cols).writeto(out)
    a, b = read_catalog(src), read_catalog(out)
    assert np.array_equal(a["flux_w1"], b["flux_w1"]) and list(a["type"]) == list(b["type"])


def test_missing_required_column_names_file_and_column(tmp_path):
    out = tmp_path / "tractor-1500p100.fits"
    fits.BinTableHDU.from_columns([fits.Column("ra", "D", array=np.zeros(2))]).writeto(out)
    with pytest.raises(CatalogError) as ei:
        read_catalog(out)
    assert ei.value.path == str(out) and ei.value.field == "release"


def test_task_table_from_dr8_samples_keeps_rows_without_psfsize(shared_data, tmp_path):
    cfg = config_from_dict({})
    out = tmp_path / "tasks"
    summary = build_tasks(cfg, str(shared_data / SAMPLES), str(out))
    t = pads.dataset(str(out)).to_table()
    assert summary["tasks"] == t.num_rows == 3
    assert (out / "part-00000.parquet").is_file()
    assert t.column("psfsize_source").to_pylist() == ["missing"] * 3
    assert t.column("psfsize_r").null_count == 3 and t.column("z_phot").null_count == 3
    for row in t.to_pylist():
        assert row["task_id"] == make_task_id(row["release"], row["brickid"], row["objid"])
        assert row["galaxy_id"] == f"{row['release']}_{row['brickid']}_{row['objid']}"
        assert row["split"] in ("train", "val", "test") and row["role"] in ("control", "injection")
        assert row["psfdepth_r"] > 0
    assert t.column("task_id").to_pylist() == sorted(t.column("task_id").to_pylist())


def test_psfsize_falls_back_to_survey_bricks_table(shared_data, tmp_path):
    cfg = config_from_dict({})
    bricks = tmp_path / "survey-bricks.fits.gz"
    # the brick of the two tractor-3303p000 LRGs, with made-up per-brick sizes for this test
    write_bricks_table(bricks, [Brick("3303p000", 330250, 330.375, 0.0, 330.25, 330.5, -0.125, 0.125)],
                       {"psfsize_g": np.array([1.5]), "psfsize_r": np.array([1.3]), "psfsize_z": np.array([1.1])})
    out = tmp_path / "tasks"
    build_tasks(cfg, str(shared_data / SAMPLES), str(out), bricks_table=str(bricks))
    rows = pads.dataset(str(out)).to_table().to_pylist()
    by_brick = {r["brickname"]: r for r in rows}
    assert by_brick["3303p000"]["psfsize_source"] == "survey-bricks"
    assert by_brick["3303p000"]["psfsize_r"] == pytest.approx(1.3)
    assert by_brick["3303p000"]["bx"] is not None and 0 <= by_brick["3303p000"]["bx"] < 3600
    other = [r for r in rows if r["brickname"] != "3303p000"]
    assert all(r["psfsize_source"] == "missing" and r["psfsize_r"] is None for r in other)


def test_catalog_paths_cannot_escape_the_root(tmp_path, shared_data):
    root = tmp_path / "cat"
    root.mkdir()
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "tractor-1500p100.fits").write_bytes((shared_data / SAMPLES / "tractor-3301m002.fits").read_bytes())
    os.symlink(outside / "tractor-1500p100.fits", root / "tractor-1500p100.fits")
    with pytest.raises(SecurityError):
        list_catalogs(str(root))
    for bad in ("../tractor-1500p100.fits", "/etc/tractor-1500p100.fits", "tractor-../../x.fits", "tractor-15x0p100.fits"):
        with pytest.raises(SecurityError):
            check_relpath(str(root), bad)
