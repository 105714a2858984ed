"""Streaming statistics: exact over any batching; the quantile sample is a deterministic,
uniform, bounded subset; per-stamp measurements against direct numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from darkhaloscope.dataset.schema import rows_to_table
from darkhaloscope.report.accumulate import Moments, hash_unit_array
from darkhaloscope.report.pixels import (
    StampGeometry,
    nuisance_features,
    recompute_snr,
    unmasked_peak_snr,
)
from darkhaloscope.report.tables import SplitTally


def test_moments_do_not_depend_on_batching():
    rng = np.random.default_rng(0)
    x = rng.lognormal(1.0, 1.0, 10_001)
    for size in (1, 7, 1000, 10_001):
        m = Moments()
        for i in range(0, x.size, size):
            m.update(x[i:i + size])
        assert m.n == x.size
        assert m.mean == pytest.approx(x.mean(), rel=1e-12)
        assert m.std == pytest.approx(x.std(), rel=1e-10)
        assert (m.min, m.max) == (x.min(), x.max())


def test_hash_sample_is_deterministic_and_uniform():
    ids = np.arange(200_000, dtype=np.int64) * 2654435761
    u = hash_unit_array(ids, "s")
    assert np.array_equal(u, hash_unit_array(ids, "s"))
    assert not np.array_equal(u, hash_unit_array(ids, "other"))
    assert ((u >= 0) & (u < 1)).all()
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    assert np.all(np.abs(counts - 10_000) < 5 * np.sqrt(10_000))  # 5 sigma per bin


def _rows(n: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        inj = i % 2 == 0
        r = {"task_id": i, "galaxy_id": f"g{i}", "brickname": "b", "ra": 0.0, "dec": 0.0, "split": "train",
             "role": "injection" if inj else "control", "cutout_ok": True, "seed": 1, "config_hash": "h",
             "code_version": "t", "psf_fwhm_r": float(rng.uniform(0.9, 1.6)), "flux_r": 5.0, "psfdepth_r": 1.0}
        if inj:
            r.update(arc_snr=float(rng.lognormal(1.5, 1.0)), theta_e=float(rng.uniform(0.5, 2.5)), cosmos_index=int(rng.integers(50)))
        rows.append(r)
    return rows


def test_split_tally_exact_moments_and_bounded_sample():
    table = rows_to_table(_rows(4000))
    full = SplitTally("train", 4000, sample_max=10_000)
    sampled = SplitTally("train", 4000, sample_max=1000)
    for batch in table.to_batches(max_chunksize=333):
        full.update(batch)
        sampled.update(batch)
    a, b = full.table()["stats"]["arc_snr"], sampled.table()["stats"]["arc_snr"]
    snr = table.column("arc_snr").drop_null().to_numpy().astype(np.float64)
    assert a["quantiles_exact"] and not b["quantiles_exact"]
    for t in (a, b):  # moments and threshold shares are exact either way
        assert t["mean"] == pytest.approx(snr.mean(), rel=1e-12)
        assert t["pct_gt_10"] == pytest.approx(100 * np.mean(snr > 10), rel=1e-12)
    assert a["p50"] == pytest.approx(np.median(snr), rel=1e-12)
    n_kept = sampled.sample.get("arc_snr").size
    assert 800 < n_kept < 1200  # about sample_max rows, never all
    assert b["p50"] == pytest.approx(np.median(snr), rel=0.1)
    assert full.table()["unique_cosmos_indices"] == len(set(table.column("cosmos_index").drop_null().to_pylist()))


def test_stamp_measurements_against_numpy():
    rng = np.random.default_rng(2)
    s = 64
    sigma = np.array([0.004, 0.006, 0.012])
    image = rng.normal(0, 1, (3, s, s)) * sigma[:, None, None]
    invvar = np.broadcast_to(1 / sigma[:, None, None] ** 2, (3, s, s)).astype(np.float32)
    maskbits = np.zeros((s, s), np.int32)
    geom = StampGeometry.make(s, 0.262, 6.75, 1.0)
    f = nuisance_features(image.astype(np.float32), invvar, maskbits, geom)
    for b, name in enumerate("grz"):
        assert f[f"noise_ratio_{name}"] == pytest.approx(1.0, abs=0.06)  # ~2000 pixels: 1.5 % per-sigma error x 4
        assert f[f"noise_invvar_{name}"] == pytest.approx(sigma[b], rel=1e-6)
    assert geom.outer.sum() == np.count_nonzero(np.hypot(*(np.mgrid[:s, :s] - 31.5)) * 0.262 >= 6.75)

    arc = np.zeros((s, s))
    arc[30:34, 40:44] = 0.02
    maskbits[30:32, 40:44] = 2  # BRIGHT
    peak, total, region = recompute_snr(arc, invvar[1], maskbits)
    good = maskbits == 0
    assert peak == pytest.approx(0.02 / 0.006, rel=1e-6)
    assert total == pytest.approx(arc[good].sum() / np.sqrt(good.sum() * 0.006**2), rel=1e-6)
    assert region == pytest.approx(8 * 0.02 / np.sqrt(8 * 0.006**2), rel=1e-6)  # the 2x4 unmasked block
    maskbits[:] = 2  # BRIGHT
    assert recompute_snr(arc, invvar[1], maskbits) == (None, None, None)
    assert unmasked_peak_snr(arc, invvar[1]) == pytest.approx(0.02 / 0.006, rel=1e-6)
