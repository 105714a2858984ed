"""COSMOS bank builder on the real HST galaxies in ../shared/data.

References: the catalog's own values read with astropy (parametric-fit HLR, q, angle; SExtractor
MAG), GalSim's exclusion formulas re-derived in numpy, and an independent numpy curve of growth.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table, vstack

from darkhaloscope.cli import main as cli_main
from darkhaloscope.config import load_config, replace
from darkhaloscope.errors import BankError
from darkhaloscope.sources.bank import SourceBank, write_bank
from darkhaloscope.sources.cosmos import build_cosmos_bank, open_catalog

REPO = Path(__file__).resolve().parents[2]
MINI = "real_galaxy_catalog_mini.fits"


def numpy_hlr(img: np.ndarray, pixel_scale: float, q: float, phi: float, sub: int = 4) -> float:
    """Independent circularised HLR (arcsec): elliptical apertures of axis ratio q, major axis at
    phi (radians from +x), centred on the light centroid; pixels subsampled sub x sub."""
    ny, nx = img.shape
    f = np.kron(img, np.ones((sub, sub))) / sub**2
    y, x = np.mgrid[0:ny * sub, 0:nx * sub]
    y = (y + 0.5) / sub - 0.5
    x = (x + 0.5) / sub - 0.5
    w = np.clip(f, 0, None)
    y0, x0 = (w * y).sum() / w.sum(), (w * x).sum() / w.sum()
    u = (x - x0) * np.cos(phi) + (y - y0) * np.sin(phi)
    v = -(x - x0) * np.sin(phi) + (y - y0) * np.cos(phi)
    r = np.sqrt(q * u**2 + v**2 / q).ravel()
    order = np.argsort(r)
    cum = np.cumsum(f.ravel()[order])
    return float(np.interp(0.5 * f.sum(), cum, r[order]) * pixel_scale)


@pytest.fixture(scope="module")
def mini_cosmos(shared_data: Path, tmp_path_factory) -> Path:
    """A complete RealGalaxyCatalog folder assembled from real pieces (never synthetic pixels):
    the two slsim COSMOS 23.5 galaxies (images + fits) with COSMOS ACS PSFs from the GalSim example
    PSF file (theirs is not in shared data), and COSMOS 100533 from GalSim's test_images.fits with
    its own PSF, its example-catalog row and parametric fit."""
    out = tmp_path_factory.mktemp("mini_cosmos")
    sl, ex = shared_data / "slsim_cosmos_test_sample", shared_data / "galsim_cosmos_example"
    rc = ex / "real_comparison_images"
    for src in (sl / "test_galaxy_images_23.5.fits", ex / "real_galaxy_PSF_images.fits", rc / "test_images.fits", ex / "acs_I_unrot_sci_20_cf.fits"):
        (out / src.name).symlink_to(src)
    cat_sl = Table.read(sl / "real_galaxy_catalog_23.5.fits")
    # the slsim catalog lists GAL_HDU=2 for both rows; the HDU whose pixel sum is the row's stamp_flux is its image
    with fits.open(sl / "test_galaxy_images_23.5.fits") as h:
        sums = {i: float(h[i].data.sum()) for i in range(1, len(h))}
    for row in cat_sl:
        row["GAL_HDU"] = min(sums, key=lambda i: abs(sums[i] - row["stamp_flux"]))
        row["PSF_FILENAME"] = "real_galaxy_PSF_images.fits"
    cat_sl["PSF_HDU"] = [0, 1]
    assert sorted(cat_sl["GAL_HDU"]) == [1, 2]
    cat_ex = Table.read(ex / "real_galaxy_catalog_23.5_example.fits")
    row_ex = cat_ex[cat_ex["IDENT"] == 100533]
    row_ex["GAL_FILENAME"], row_ex["GAL_HDU"] = "test_images.fits", 0
    row_ex["PSF_FILENAME"], row_ex["PSF_HDU"] = "test_images.fits", 2
    vstack([cat_sl, row_ex]).write(out / MINI)
    fit_sl = Table.read(sl / "real_galaxy_catalog_23.5_fits.fits")
    fit_ex = Table.read(ex / "real_galaxy_catalog_23.5_example_fits.fits")
    vstack([fit_sl, fit_ex[fit_ex["IDENT"] == 100533]]).write(out / MINI.replace(".fits", "_fits.fits"))
    return out


@pytest.fixture(scope="module")
def cfg():
    return replace(load_config(REPO / "configs" / "dr10.yaml"), **{"bank.exclusion_level": "bad_fits"})


def _check_templates(images: np.ndarray) -> None:
    sums = images.astype(np.float64).sum(axis=(1, 2))
    np.testing.assert_allclose(sums, 1.0, atol=1e-6)
    assert np.isfinite(images).all()
    a = np.abs(images.astype(np.float64))
    neg = np.where(images < 0, a, 0).sum(axis=(1, 2)) / a.sum(axis=(1, 2))
    assert (neg <= 0.05).all(), neg


@pytest.mark.parametrize("psf_handling", ["native", "gaussian"])
def test_cosmos_templates_match_catalog_fits(mini_cosmos, cfg, psf_handling):
    images, meta, attrs = build_cosmos_bank(replace(cfg, **{"bank.stamp_size": 256, "bank.psf_handling": psf_handling}), mini_cosmos, MINI)
    assert attrs["kind"] == "cosmos" and attrs["counts"]["kept"] == 3 == len(images)
    _check_templates(images)
    fit = fits.getdata(mini_cosmos / MINI.replace(".fits", "_fits.fits"))
    for k, ident in enumerate(meta["ident"]):
        rec = fit[fit["IDENT"] == int(ident)][0]
        hlr_cat, q, phi = float(rec["hlr"][0]), float(rec["sersicfit"][3]), float(rec["sersicfit"][7])
        assert meta["hlr_arcsec"][k] == pytest.approx(hlr_cat, rel=1e-6)
        measured = numpy_hlr(images[k], 0.03, q, phi)
        assert abs(measured / hlr_cat - 1) < 0.2, (ident, measured, hlr_cat)
        assert meta["z_phot"][k] == pytest.approx(float(rec["zphot"]), rel=1e-6)
    # the light centroid sits at the array centre to within a pixel
    for img in images:
        y, x = np.indices(img.shape)
        w = np.clip(img, 0, None)
        assert abs((w * y).sum() / w.sum() - 127.5) < 1.0 and abs((w * x).sum() / w.sum() - 127.5) < 1.0


def test_flux_outside_stamp_is_recorded_and_cut(mini_cosmos, cfg):
    images, meta, attrs = build_cosmos_bank(cfg, mini_cosmos, MINI)  # S = 128 = 3.84"
    # 100533 has a q = 0.30, HLR 0.60" disk: its major axis runs well past 1.92", >5 % of its flux outside
    assert "100533" not in set(meta["ident"]) and attrs["counts"]["flux_outside"] == 1
    assert (meta["flux_outside"] <= cfg.bank.max_flux_outside).all()
    _check_templates(images)


def test_aegis_cli_build_measures_on_image(shared_data, tmp_path):
    out = tmp_path / "aegis.h5"
    rc = cli_main(["build-bank", "--config", str(REPO / "configs" / "dr10.yaml"),
                   "--cosmos-dir", str(shared_data / "galsim_cosmos_example" / "real_comparison_images"),
                   "--catalog-file", "AEGIS_F814w_catalog.fits", "--out", str(out)])
    assert rc == 0
    bank = SourceBank.open(out)
    counts = json.loads(bank.attrs["counts"])
    assert counts["catalog"] == 5 and counts["kept"] == len(bank) >= 3
    assert sum(v for k, v in counts.items() if k not in ("catalog", "kept")) == 5 - len(bank)
    images = np.stack([bank.template(i) for i in range(len(bank))])
    _check_templates(images)
    cat = fits.getdata(shared_data / "galsim_cosmos_example" / "real_comparison_images" / "AEGIS_F814w_catalog.fits")
    for k in range(len(bank)):
        row = cat[int(bank.meta["cosmos_index"][k])]
        assert str(row["IDENT"]) == bank.meta["ident"][k]
        # magnitude measured on the image vs the catalog's SExtractor MAG_AUTO (different apertures)
        assert abs(bank.meta["mag_f814w"][k] - row["MAG"]) < 0.35
        measured = numpy_hlr(images[k].astype(np.float64), 0.03, *_moments_q_phi(images[k]))
        assert abs(measured / bank.meta["hlr_arcsec"][k] - 1) < 0.2
    assert np.isnan(bank.meta["z_phot"]).all()
    for key in ("catalog_version", "cuts", "counts", "code_version", "config_hash", "psf_handling", "noise_treatment"):
        assert key in bank.attrs
    assert set(bank.meta["split_group"]) <= {"train", "val", "test"}


def _moments_q_phi(img: np.ndarray) -> tuple[float, float]:
    w = np.clip(img.astype(np.float64), 0, None)
    y, x = np.indices(img.shape)
    y0, x0 = (w * y).sum() / w.sum(), (w * x).sum() / w.sum()
    cov = np.cov(np.vstack([(x - x0).ravel(), (y - y0).ravel()]), aweights=w.ravel())
    evals, evecs = np.linalg.eigh(cov)
    return float(np.sqrt(evals[0] / evals[1])), float(np.arctan2(evecs[1, 1], evecs[0, 1]))


def test_build_is_deterministic(mini_cosmos, cfg, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path in (a, b):
        write_bank(path, *build_cosmos_bank(cfg, mini_cosmos, MINI))
    assert a.read_bytes() == b.read_bytes()


def test_marginal_exclusion_matches_galsim_rules(shared_data):
    """GalSim's 'marginal' exclusion on the 100-galaxy example, re-derived from its tables in numpy."""
    ex = shared_data / "galsim_cosmos_example"
    _, cc, kept, note = open_catalog(ex, "real_galaxy_catalog_23.5_example.fits", "marginal")
    cat = fits.getdata(ex / "real_galaxy_catalog_23.5_example.fits")
    fit = fits.getdata(ex / "real_galaxy_catalog_23.5_example_fits.fits")
    sel = fits.getdata(ex / "real_galaxy_catalog_23.5_example_selection.fits")
    peak = np.where(sel["peak_image_pixel_count"] == 0, 1e-5, sel["peak_image_pixel_count"])
    s_ok = (fit["fit_status"][:, 4] > 0) & (fit["fit_status"][:, 4] < 5)
    b_ok = (fit["fit_status"][:, 0] > 0) & (fit["fit_status"][:, 0] < 5)
    mask = ((sel["sn_ellip_gauss"] >= 20.0) & ((sel["min_mask_dist_pixels"] > 11) | (sel["average_mask_adjacent_pixel_count"] / peak < 0.2))
            & (cat["stamp_flux"] > 0) & s_ok & b_ok & ((fit["sersicfit"][:, 2] < 5) | (fit["hlr"][:, 0] < 1.0)) & (np.abs(sel["dmag"]) < 0.8))
    np.testing.assert_array_equal(kept, np.flatnonzero(mask))
    assert len(kept) == 96 and note.startswith("marginal")


def test_missing_catalog_file_is_a_clear_error(tmp_path, cfg):
    with pytest.raises(BankError, match="COSMOS catalog not found") as exc:
        build_cosmos_bank(cfg, tmp_path, "real_galaxy_catalog_25.2.fits")
    assert exc.value.path.endswith("real_galaxy_catalog_25.2.fits")


def test_catalog_without_images_is_a_clear_error(shared_data, cfg):
    with pytest.raises(BankError, match="real_galaxy_images.fits") as exc:
        build_cosmos_bank(cfg, shared_data / "galsim_cosmos_example", "real_galaxy_catalog_23.5_example.fits")
    assert "galaxy image" in str(exc.value)


def test_marginal_without_selection_file_is_a_clear_error(mini_cosmos, cfg):
    with pytest.raises(BankError, match="_selection.fits"):
        build_cosmos_bank(replace(cfg, **{"bank.exclusion_level": "marginal"}), mini_cosmos, MINI)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "no_meta"])
def test_corrupt_bank_is_a_clear_error(tmp_path, mini_cosmos, cfg, damage):
    good = write_bank(tmp_path / "good.h5", *build_cosmos_bank(cfg, mini_cosmos, MINI))
    bad = tmp_path / f"{damage}.h5"
    if damage == "garbage":
        bad.write_bytes(b"this is not an HDF5 file" * 100)
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    else:
        with h5py.File(bad, "w") as f:
            f.create_dataset("images", data=np.zeros((1, 8, 8), np.float32))
    with pytest.raises(BankError) as exc:
        SourceBank.open(bad)
    assert str(bad) in str(exc.value)
    with pytest.raises(BankError, match="not found"):
        SourceBank.open(tmp_path / "absent.h5")
