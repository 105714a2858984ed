"""The embedded default bank: GalSim clumpy star-forming galaxies, same format, kind=procedural."""

from __future__ import annotations

import json
from pathlib import Path

import galsim
import numpy as np
import pytest
import yaml

from darkhaloscope.cli import main as cli_main
from darkhaloscope.config import load_config, replace
from darkhaloscope.sources.bank import META_FIELDS, SourceBank
from darkhaloscope.sources.clean import half_light_radius
from darkhaloscope.sources.procedural import build_procedural_bank

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_cfg():
    return replace(load_config(REPO / "configs" / "demo.yaml"), **{"bank.procedural.n_sources": 24})


@pytest.fixture(scope="module")
def bank_arrays(small_cfg):
    return build_procedural_bank(small_cfg)


def test_procedural_templates(bank_arrays, small_cfg):
    images, meta, attrs = bank_arrays
    b = small_cfg.bank
    assert images.shape == (24, b.stamp_size, b.stamp_size) and images.dtype == np.float32
    assert attrs["kind"] == "procedural"
    np.testing.assert_allclose(images.astype(np.float64).sum(axis=(1, 2)), 1.0, atol=1e-6)
    assert np.isfinite(images).all()
    a = np.abs(images.astype(np.float64))
    assert (np.where(images < 0, a, 0).sum(axis=(1, 2)) / a.sum(axis=(1, 2)) <= 0.05).all()
    assert ((meta["hlr_arcsec"] >= b.hlr_min) & (meta["hlr_arcsec"] <= b.hlr_max)).all()
    assert ((meta["mag_f814w"] >= b.mag_min) & (meta["mag_f814w"] <= b.mag_max)).all()
    assert np.all(np.abs(meta["hlr_template_arcsec"] / meta["hlr_arcsec"] - 1) <= b.max_hlr_mismatch)
    assert len(set(meta["ident"])) == 24 and set(META_FIELDS) <= set(meta) | {"pixel_scale"}


def test_hlr_estimator_against_galsim_analytic():
    """The builder's HLR estimator vs GalSim's exact HLR of sheared exponentials and Sersics."""
    for prof, q in ((galsim.Exponential(half_light_radius=0.12), 1.0), (galsim.Exponential(half_light_radius=0.35), 0.4),
                    (galsim.Sersic(2.5, half_light_radius=0.25), 0.7)):
        img = prof.shear(q=q, beta=33 * galsim.degrees).drawImage(nx=160, ny=160, scale=0.03, method="no_pixel").array
        assert half_light_radius(img, 0.03) == pytest.approx(prof.half_light_radius, rel=0.03)


def test_procedural_is_deterministic(small_cfg, bank_arrays):
    images, meta, _ = build_procedural_bank(small_cfg)
    np.testing.assert_array_equal(images, bank_arrays[0])
    np.testing.assert_array_equal(meta["split_group"], bank_arrays[1]["split_group"])
    other = build_procedural_bank(replace(small_cfg, seed=small_cfg.seed + 1))[0]
    assert not np.array_equal(other, images)


def test_cli_builds_procedural_bank_without_cosmos_dir(tmp_path):
    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    data["bank"]["procedural"]["n_sources"] = 12
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    out = tmp_path / "bank.h5"
    assert cli_main(["build-bank", "--config", str(cfg_path), "--out", str(out)]) == 0
    bank = SourceBank.open(out)
    assert len(bank) == 12 and bank.attrs["kind"] == "procedural" and bank.stamp_size == 128
    assert json.loads(bank.attrs["counts"])["kept"] == 12
    assert bank.pixel_scale == pytest.approx(0.03)
    assert float(bank.template(3).astype(np.float64).sum()) == pytest.approx(1.0, abs=1e-6)
