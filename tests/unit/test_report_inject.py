"""The report on rows made by the real ``inject()``: the physics re-render gate passes on honest
rows (arcs re-rendered from row + bank) and fails when a stored arc is tampered with; the SNR,
leakage and shortcut gates pass on honest injections (arc Poisson noise included)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_inject import inject  # noqa: E402 (the row as a dataset holds it)
from test_report_fixture import write_dataset  # noqa: E402

from darkhaloscope.config import Config  # noqa: E402
from darkhaloscope.dataset.stamp import decode_arc, decode_stamp, encode_arc  # noqa: E402
from darkhaloscope.physics import metrics  # noqa: E402
from darkhaloscope.physics.reference import galsim_templates  # noqa: E402
from darkhaloscope.report.build import build_report  # noqa: E402
from darkhaloscope.sources.bank import SourceBank  # noqa: E402
from darkhaloscope.survey.cutout import Cutout  # noqa: E402

S = 64
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def bank() -> SourceBank:
    n = 18
    meta = {
        "cosmos_index": np.arange(5000, 5000 + n), "ident": np.array([f"id{i}" for i in range(n)]),
        "mag_f814w": np.linspace(21.0, 23.5, n).astype(np.float32), "hlr_arcsec": np.full(n, 0.3, np.float32),
        "z_phot": np.linspace(0.8, 2.5, n).astype(np.float32), "sersic_n": np.ones(n, np.float32), "q": np.ones(n, np.float32),
        "pixel_scale": np.full(n, 0.03, np.float32), "split_group": np.array([SPLITS[i % 3] for i in range(n)]),
    }
    return SourceBank.from_arrays(galsim_templates(n, seed=5), meta)


def _cutout(rng: np.random.Generator, flux_r: float, sigma: float) -> Cutout:
    yy, xx = np.mgrid[:S, :S] - 31.5
    size = rng.uniform(1.5, 3.5)  # pixels
    lrg = np.exp(-0.5 * (xx**2 + yy**2) / size**2)
    lrg /= lrg.sum()
    fluxes = flux_r * np.array([0.25, 1.0, 2.0])
    sig = sigma * np.array([0.7, 1.0, 2.0])
    image = (fluxes[:, None, None] * lrg + rng.normal(0, 1, (3, S, S)) * sig[:, None, None]).astype(np.float32)
    invvar = np.broadcast_to((1 / sig**2)[:, None, None], (3, S, S)).astype(np.float32)
    maskbits = np.zeros((S, S), np.int32)
    return Cutout(image=image, invvar=invvar, maskbits=maskbits, brickname="1500p100")


@pytest.fixture(scope="module")
def rows(bank) -> list[dict]:
    from darkhaloscope.config import replace

    cfg = replace(Config(), **{"lens.theta_e_out_of_range": "clip"})  # every injection gets an arc to check
    rng = np.random.default_rng(11)
    out = []
    for i in range(240):
        flux_r = 10 ** ((22.5 - rng.uniform(19.0, 21.5)) / 2.5)
        sigma = rng.uniform(0.005, 0.008)
        psf_r = rng.uniform(0.9, 1.6)
        task = {
            "task_id": (10000 << 41) | (7 << 21) | i, "galaxy_id": f"10000_7_{i}", "brickname": "1500p100",
            "ra": 150.0, "dec": 10.0, "bx": 300.0, "by": 200.0,
            "split": SPLITS[int(rng.integers(3))], "role": "injection" if rng.random() < 0.5 else "control",
            "flux_g": 0.25 * flux_r, "flux_r": flux_r, "flux_z": 2.0 * flux_r, "flux_w1": 4 * flux_r,
            "psfsize_g": 1.1 * psf_r, "psfsize_r": psf_r, "psfsize_z": 0.9 * psf_r,
            "psfdepth_g": 1 / (0.7 * sigma) ** 2, "psfdepth_r": 1 / sigma**2, "psfdepth_z": 1 / (2 * sigma) ** 2,
            "z_phot": rng.uniform(0.3, 0.6), "shape_e1": rng.normal(0, 0.15), "shape_e2": rng.normal(0, 0.15),
        }
        out.append(inject(task, _cutout(rng, flux_r, sigma), bank, cfg))
    return out


def test_real_injections_pass_every_gate(tmp_path, rows, bank):
    root = write_dataset(tmp_path / "ds", rows)
    result = build_report(str(root), Config(), bank=bank, make_figures=False)
    gates = result.data["gates"]
    for name, g in gates.items():
        assert g["status"] == "pass", (name, g["message"])
    rr = gates["physics.rerender"]["details"]
    n_inj = sum(1 for r in rows if r["role"] == "injection" and r["cutout_ok"])
    assert rr["n_rendered"] == min(Config().report.rerender_sample, n_inj)
    assert gates["physics.rerender"]["value"] <= 1e-6  # re-rendering is deterministic
    assert gates["physics.snr_recomputed"]["details"]["n_checked"] == n_inj


def test_tampered_arc_fails_the_rerender_gate_only(tmp_path, rows, bank):
    rows = [dict(r) for r in rows]
    tampered = [r for r in rows if r["role"] == "injection"][:2]
    for r in tampered:
        arc = decode_arc(r["arc_npz"]) * np.float32(1.03)
        r["arc_npz"] = encode_arc(arc)
        st = decode_stamp(r["stamp_npz"])
        snr, snr_sum, region, _ = metrics.snr_metrics(arc[1], st["invvar"][1], st["maskbits"])
        r.update(arc_snr=snr, arc_snr_sum=snr_sum, arc_snr_region=region)  # consistent SNRs: only the re-render can tell
    cfg = Config()
    from darkhaloscope.config import replace

    cfg = replace(cfg, **{"report.rerender_sample": 200})  # re-render every injection
    root = write_dataset(tmp_path / "ds", rows)
    result = build_report(str(root), cfg, bank=bank, make_figures=False)
    g = result.data["gates"]["physics.rerender"]
    assert g["status"] == "fail", g["message"]
    assert g["details"]["n_mismatch"] == 2
    assert {e["task_id"] for e in g["details"]["examples"]} == {r["task_id"] for r in tampered}
    assert 0.02 < g["value"] < 0.04  # 3 % of the peak
    assert result.data["gates"]["physics.snr_recomputed"]["status"] == "pass"
