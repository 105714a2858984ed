"""inject(): one task -> one full stamp row; controls, flags, determinism, re-rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest

from darkhaloscope.config import Config, replace
from darkhaloscope.dataset.rows import encode_row
from darkhaloscope.dataset.schema import COLUMN_NAMES, rows_to_table
from darkhaloscope.dataset.stamp import decode_arc, decode_stamp
from darkhaloscope.inject import inject as inject_arrays
from darkhaloscope.inject import render_arc_from_row
from darkhaloscope.physics import metrics
from darkhaloscope.physics.reference import galsim_templates
from darkhaloscope.sources.bank import SourceBank
from darkhaloscope.sources.colours import nanomaggies_to_mag
from darkhaloscope.survey.cutout import Cutout

S = 64
SPLITS = ("train", "val", "test")


def inject(task, cutout, bank, cfg):
    """inject() + the dataset layer's encoding: the row a dataset holds."""
    return encode_row(inject_arrays(task, cutout, bank, cfg), cfg.render.write_arc)


@pytest.fixture(scope="module")
def cfg() -> Config:
    return Config()


@pytest.fixture(scope="module")
def bank() -> SourceBank:
    n = 12
    images = galsim_templates(n, seed=3)
    meta = {
        "cosmos_index": np.arange(1000, 1000 + n), "ident": np.array([f"id{i}" for i in range(n)]),
        "mag_f814w": np.linspace(20.0, 23.0, n).astype(np.float32), "hlr_arcsec": np.full(n, 0.3, np.float32),
        "z_phot": np.ones(n, np.float32), "sersic_n": np.ones(n, np.float32), "q": np.ones(n, np.float32),
        "pixel_scale": np.full(n, 0.03, np.float32), "split_group": np.array([SPLITS[i % 3] for i in range(n)]),
    }
    return SourceBank.from_arrays(images, meta)


def make_cutout(seed: int = 0, sigma: float = 0.005) -> Cutout:
    rng = np.random.default_rng(seed)
    image = rng.normal(0, sigma, (3, S, S)).astype(np.float32)
    yy, xx = np.mgrid[:S, :S] - 31.5
    image += (0.5 * np.exp(-(xx**2 + yy**2) / 8.0)).astype(np.float32)  # an LRG
    invvar = np.full((3, S, S), 1 / sigma**2, np.float32)
    maskbits = np.zeros((S, S), np.int32)
    maskbits[:4, :] = 2  # a masked strip far from the arc
    return Cutout(image=image, invvar=invvar, maskbits=maskbits, brickname="1500p100")


def make_task(task_id: int = 7, role: str = "injection", split: str = "train", **kw) -> dict:
    task = {
        "task_id": task_id, "galaxy_id": f"10000_1_{task_id}", "brickname": "1500p100", "ra": 150.0, "dec": 10.0,
        "bx": 300.3, "by": 211.8, "split": split, "role": role, "flux_g": 2.0, "flux_r": 5.0, "flux_z": 9.0,
        "flux_w1": 20.0, "psfsize_g": 1.5, "psfsize_r": 1.3, "psfsize_z": 1.2, "psfdepth_g": 2000.0,
        "psfdepth_r": 1000.0, "psfdepth_z": 200.0, "ebv": 0.02, "z_phot": 0.6,
    }
    task.update(kw)
    return task


def flat_cfg(cfg: Config) -> Config:
    """The seeds' flat theta_E and no acceptance criteria: tests of the rendering path alone."""
    return replace(cfg, **{"lens.theta_e_policy": "uniform", "accept.min_magnification": 0.0, "accept.min_snr_region": 0.0,
                           "accept.min_resolvability": 0.0, "accept.max_tries": 1})


def bright_cfg(cfg: Config) -> Config:
    """Sources 4 mag brighter than the catalog, so every arc is well detected."""
    return replace(cfg, **{"source.mag_shift": -4.0})


def test_injection_row_is_complete_and_consistent(cfg, bank):
    cfg = bright_cfg(cfg)
    cut = make_cutout()
    row = inject(make_task(), cut, bank, cfg)
    assert tuple(row) == COLUMN_NAMES
    rows_to_table([row])  # the schema accepts it
    assert row["cutout_ok"] and row["snr_reason"] is None
    for col in ("theta_e", "src_x", "arc_snr", "arc_snr_sum", "arc_snr_region", "lensed_hlr_arcsec", "magnification", "arc_flux_r"):
        assert row[col] is not None and math.isfinite(row[col]), col
    assert cfg.lens.theta_e_min <= row["theta_e"] <= cfg.lens.theta_e_max
    arc = decode_arc(row["arc_npz"])
    stamp = decode_stamp(row["stamp_npz"])
    assert arc.dtype == np.float32 and arc.shape == (3, S, S) and stamp["image"].dtype == np.float32
    # per-band arc fluxes: the stored sums, in the ratios of the band magnitudes (one lensed
    # image, per-band PSFs that conserve flux)
    for k, b in enumerate("grz"):
        assert abs(arc[k].sum(dtype=np.float64) - row[f"arc_flux_{b}"]) < 1e-6 * row[f"arc_flux_{b}"]
        expected_ratio = 10 ** (-(row[f"src_mag_{b}"] - row["src_mag_r"]) / 2.5)
        assert abs(row[f"arc_flux_{b}"] / row["arc_flux_r"] / expected_ratio - 1) < 0.005
    assert row["magnification"] > 1.0  # a strongly lensed source inside the caustic-ish radius
    # the image is the cutout + arc + zero-mean shot noise
    diff = stamp["image"].astype(np.float64) - cut.image
    assert abs(diff.sum() / arc.sum(dtype=np.float64) - 1) < 0.05
    assert np.array_equal(stamp["invvar"], cut.invvar) and np.array_equal(stamp["maskbits"], cut.maskbits)


def test_arc_without_noise_is_exactly_added(cfg, bank):
    c = replace(bright_cfg(cfg), **{"render.arc_poisson_noise": False})
    cut = make_cutout()
    cut.invvar[1, 40:44, 40:44] = 0  # no data here: nothing injected
    row = inject(make_task(), cut, bank, c)
    arc = decode_arc(row["arc_npz"])
    image = decode_stamp(row["stamp_npz"])["image"]
    expected = np.where(cut.invvar > 0, cut.image.astype(np.float64) + arc, cut.image).astype(np.float32)
    assert np.array_equal(image, expected)


def test_arc_snr_recomputed_from_arrays_and_masks(cfg, bank):
    c = bright_cfg(cfg)
    cut = make_cutout()
    row = inject(make_task(), cut, bank, c)
    arc_r = decode_arc(row["arc_npz"])[1].astype(np.float64)
    st = decode_stamp(row["stamp_npz"])
    iv, mb = st["invvar"][1].astype(np.float64), st["maskbits"]
    good = (iv > 0) & (mb == 0)
    # independent recomputation (the seeds' formula)
    snr = np.max(arc_r[good] * np.sqrt(iv[good] + 1e-12))
    snr_sum = arc_r[good].sum() / np.sqrt((1 / iv[good]).sum())
    assert np.float32(snr) == np.float32(row["arc_snr"])
    assert np.float32(snr_sum) == np.float32(row["arc_snr_sum"])
    # mask the brightest arc pixel: the stored SNR ignores it
    peak = np.unravel_index(np.argmax(np.where(good, arc_r, -np.inf)), arc_r.shape)
    cut2 = make_cutout()
    cut2.maskbits[peak] = 2  # BRIGHT
    cut2.invvar[:, peak[0], peak[1] + 1] = 0
    row2 = inject(make_task(), cut2, bank, c)
    good2 = good.copy()
    good2[peak] = False
    good2[peak[0], peak[1] + 1] = False
    assert row2["arc_snr"] < row["arc_snr"]
    assert np.float32(np.max(arc_r[good2] * np.sqrt(iv[good2] + 1e-12))) == np.float32(row2["arc_snr"])


def test_same_task_and_seed_give_identical_bytes(cfg, bank):
    a = inject(make_task(), make_cutout(), bank, cfg)
    b = inject(make_task(), make_cutout(), bank, cfg)
    assert a == b and a["stamp_npz"] == b["stamp_npz"] and a["arc_npz"] == b["arc_npz"]
    c = inject(make_task(), make_cutout(), bank, replace(cfg, seed=cfg.seed + 1))
    assert c["stamp_npz"] != a["stamp_npz"] and c["theta_e"] != a["theta_e"]


def test_colours_vary_across_sources(cfg, bank):
    cfg = flat_cfg(cfg)
    rows = [inject(make_task(task_id=100 + i), make_cutout(), bank, cfg) for i in range(25)]
    gr = np.array([r["src_mag_g"] - r["src_mag_r"] for r in rows])
    rz = np.array([r["src_mag_r"] - r["src_mag_z"] for r in rows])
    assert gr.std() > 0.05 and rz.std() > 0.05
    assert all(r["src_mag_g"] != r["src_mag_r"] != r["src_mag_z"] for r in rows)
    assert len({r["cosmos_index"] for r in rows}) > 1
    assert all(r["cosmos_index"] in (1000, 1003, 1006, 1009) for r in rows)  # train group only


def test_render_arc_from_row_is_bit_identical(cfg, bank):
    rows = [inject(make_task(task_id=200 + i, split=SPLITS[i % 3]), make_cutout(i), bank, cfg) for i in range(6)]
    for row in rows_to_table(rows).to_pylist():  # through Arrow's float32 columns and back
        assert np.array_equal(render_arc_from_row(row, bank, cfg), decode_arc(row["arc_npz"]))


def test_controls_pass_through(cfg, bank):
    cut = make_cutout()
    row = inject(make_task(role="control"), cut, bank, cfg)
    st = decode_stamp(row["stamp_npz"])
    assert np.array_equal(st["image"], cut.image) and row["cutout_ok"]
    for col in ("theta_e", "cosmos_index", "src_mag_r", "arc_snr", "magnification", "arc_npz", "snr_reason"):
        assert row[col] is None
    assert row["psf_fwhm_r"] == np.float32(1.3) and row["config_hash"] and row["code_version"]
    rows_to_table([row])


@pytest.mark.parametrize("role", ["control", "injection"])
def test_flagged_rows(cfg, bank, role):
    cases = {}
    cases["failed"] = (make_task(role=role), Cutout.failed("missing file x.fits.fz", S, 3, "1500p100"))
    nan = make_cutout()
    nan.image[0, 5, 5] = np.nan
    cases["nan"] = (make_task(role=role), nan)
    inf = make_cutout()
    inf.invvar[2, 1, 1] = np.inf
    cases["inf"] = (make_task(role=role), inf)
    dead = make_cutout()
    dead.invvar[:] = 0
    cases["no data"] = (make_task(role=role), dead)
    cases["no psf"] = (make_task(role=role, psfsize_z=None), make_cutout())
    cases["nan psf"] = (make_task(role=role, psfsize_g=float("nan")), make_cutout())
    for name, (task, cut) in cases.items():
        row = inject(task, cut, bank, cfg)
        assert row["cutout_ok"] is False and row["cutout_reason"], name
        assert row["stamp_npz"] is None and row["arc_snr"] is None, name
        assert (row["snr_reason"] is not None) == (role == "injection"), name
        rows_to_table([row])
    assert "x.fits.fz" in inject(*cases["failed"], bank, cfg)["cutout_reason"]
    assert "psfsize_z" in inject(*cases["no psf"], bank, cfg)["cutout_reason"]


def test_fully_masked_stamp_has_null_snrs_with_reason(cfg, bank):
    cut = make_cutout()
    cut.maskbits[:] = 2  # BRIGHT
    row = inject(make_task(), cut, bank, cfg)
    assert row["cutout_ok"] and row["arc_npz"] is not None
    assert row["arc_snr"] is None and row["arc_snr_sum"] is None and row["arc_snr_region"] is None
    assert "good pixels" in row["snr_reason"]
    assert row["arc_flux_r"] > 0 and row["magnification"] > 0
    rows_to_table([row])


def test_dmag_mode_sets_the_source_relative_to_the_lrg(cfg, bank):
    c = replace(cfg, **{"source.brightness_mode": "dmag"})
    row = inject(make_task(), make_cutout(), bank, c)
    host_r = float(nanomaggies_to_mag(5.0))
    assert row["brightness_mode"] == "dmag" and c.source.dmag_min <= row["src_dmag"] <= c.source.dmag_max
    assert abs(row["src_mag_r"] - host_r - row["src_dmag"]) < 1e-5
    cat = inject(make_task(), make_cutout(), bank, cfg)
    assert cat["brightness_mode"] == "catalog" and abs(cat["src_mag_r"] - host_r - cat["src_dmag"]) < 1e-5
    bad = inject(make_task(flux_r=-1.0), make_cutout(), bank, c)
    assert bad["cutout_ok"] is False and "flux_r" in bad["cutout_reason"]


def test_magnification_is_one_without_lens(cfg, bank):
    c = replace(flat_cfg(cfg), **{"lens.theta_e_min": 1e-6, "lens.theta_e_max": 1e-6})
    row = inject(make_task(), make_cutout(), bank, c)
    assert abs(row["magnification"] - 1) < 0.005
    assert metrics.half_light_radius(decode_arc(row["arc_npz"])[1], 0.262) == pytest.approx(row["lensed_hlr_arcsec"])


def test_compiled_row_passes_equal_the_numpy_definitions(cfg, bank):
    """inject's compiled noise, sum and metrics (physics.fastrow) against physics.noise / metrics."""
    from darkhaloscope.ids import task_rng
    from darkhaloscope.physics.noise import arc_poisson_noise, sky_nanomaggies_per_pixel

    c = bright_cfg(cfg)
    cut = make_cutout(3)
    cut.invvar[0, 30:34, 28:40] = 0
    cut.maskbits[30:32, 30:36] = 8
    row = inject(make_task(task_id=31), cut, bank, c)
    arc = decode_arc(row["arc_npz"])
    sky = sky_nanomaggies_per_pixel(c.survey.bands, c.render.sky_mag_arcsec2, c.survey.pixel_scale)
    noise = arc_poisson_noise(task_rng(c.seed, 31, "noise"), arc, cut.invvar, sky)
    expected = (cut.image.astype(np.float64) + np.where(cut.invvar > 0, arc.astype(np.float64) + noise, 0.0)).astype(np.float32)
    assert np.array_equal(decode_stamp(row["stamp_npz"])["image"], expected)
    snr, snr_sum, region, reason = metrics.snr_metrics(arc[1], cut.invvar[1], cut.maskbits)
    assert reason is None and row["snr_reason"] is None
    assert row["arc_snr"] == pytest.approx(snr, rel=1e-12) and row["arc_snr_sum"] == pytest.approx(snr_sum, rel=1e-12)
    assert row["arc_snr_region"] == pytest.approx(region, rel=1e-12) and region > 0
    assert row["lensed_hlr_arcsec"] == pytest.approx(metrics.half_light_radius(arc[1], 0.262), rel=1e-9)


def test_inject_returns_arrays_and_never_encodes(bank, cfg):
    """DESIGN 2: inject returns arrays and values; the dataset layer (dataset.rows) encodes."""
    cut = make_cutout()
    raw = inject_arrays(make_task(), cut, bank, cfg)
    assert raw["stamp_npz"] is None and raw["arc_npz"] is None
    assert raw["image"].dtype == np.float32 and raw["host_image"] is cut.image and raw["grids"] is cut.grids
    row = encode_row(raw, True)
    assert decode_stamp(row["stamp_npz"])["image"].tobytes() == raw["image"].tobytes()
    assert np.array_equal(decode_arc(row["arc_npz"]), raw["arc"]) and "image" not in row
    assert encode_row(raw, False)["arc_npz"] is None
