"""Shortcut diagnostics with hand-made scorers on toy stamps (ml/toydata.py): every function
runs and writes its figure; the ring and arc-suppression tests move the score the way their
construction implies; pixel statistics equal an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest

from darkhaloscope.errors import ConfigError
from darkhaloscope.ml import diagnostics as D
from darkhaloscope.ml.toydata import make_stamp

S = 64


def _toy(n: int, inject: bool, seed: int, snr=(4.0, 20.0)):
    rows = [make_stamp(np.random.default_rng([seed, i]), S, inject, snr) for i in range(n)]
    images = np.stack([r["image"] for r in rows])
    arcs = np.stack([r["arc"] for r in rows])
    meta = {"psf_fwhm_r": np.array([r["psf_fwhm_r"] for r in rows]), "psfdepth_r": np.array([r["psfdepth_r"] for r in rows])}
    cols = {"theta_e": np.array([r.get("theta_e", np.nan) for r in rows]), "arc_snr": np.array([r.get("arc_snr", np.nan) for r in rows])}
    return images, arcs, meta, cols


@pytest.fixture(scope="module")
def toy():
    ctl = _toy(48, False, 1)
    inj = _toy(48, True, 2, (0.5, 20.0))
    return ctl, inj


def _zscore(images):
    """Independent outer-annulus (r > S/4 from (S-1)/2) median/MAD z-score of the r band."""
    c = (S - 1) / 2
    y, x = np.mgrid[:S, :S]
    outer = np.hypot(y - c, x - c) > S / 4
    xr = images[:, 1].astype(np.float64)
    med = np.median(xr[:, outer], axis=1)[:, None, None]
    mad = np.median(np.abs(xr[:, outer] - med[:, :, 0]), axis=1)[:, None, None]
    return (xr - med) / (1.4826 * mad + 1e-6)


_R = D.radius_map(S)
_ANNULUS = (_R >= 3) & (_R < 10)  # 0.8"-2.6": Einstein-radius-like


def make_ring_scorer(reference_images):
    """p rises with the mean z-scored flux at Einstein-like radii (a toy 'lens finder')."""
    f0 = _zscore(reference_images)[:, _ANNULUS].mean(axis=1)
    mu, sd = np.percentile(f0, 90), f0.std() + 1e-9

    def scorer(images, meta):
        for k, v in meta.items():  # the seeds' bug: metadata set to zero
            assert np.all(np.isfinite(v)) and np.all(v > 0), k
        f = _zscore(images)[:, _ANNULUS].mean(axis=1)
        return 1.0 / (1.0 + np.exp(-(f - mu) / sd))

    return scorer


def shortcut_scorer(images, meta):
    """Fires on any extended light far from the centre (a ring detector, not a lens finder)."""
    outer = images[:, 1][:, (_R >= 14) & (_R < 28)].mean(axis=1)
    return 1.0 / (1.0 + np.exp(-(outer - 0.002) / 0.001))


def test_ring_test_fires_inside_not_outside(toy, tmp_path):
    (ci, _, cm, _), _ = toy
    scorer = make_ring_scorer(ci)
    d = D.ring_test(scorer, ci[:24], {k: v[:24] for k, v in cm.items()}, radii_pix=(4, 6, 8, 20, 25),
                    amplitudes=(0.005, 0.02), out_dir=tmp_path)
    assert d.figure.is_file() and d.figure.stat().st_size > 1000
    rows = {(r["radius_pix"], r["amplitude_nmgy"]): r for r in d.table}
    assert len(d.table) == 10
    # inside the training theta_E range (0.5-2.5" = 1.9-9.5 px) a strong ring raises the score ...
    assert rows[(6.0, 0.02)]["mean_delta_p"] > 0.3 and rows[(6.0, 0.02)]["frac_above"] > 0.5
    assert rows[(6.0, 0.02)]["mean_p"] > rows[(6.0, 0.005)]["mean_p"] > d.numbers["base_mean_p"]
    assert rows[(6.0, 0.02)]["in_training_range"] and not rows[(20.0, 0.02)]["in_training_range"]
    # ... and a ring at 5-6.5", where no training lens has arcs, does not
    assert rows[(20.0, 0.02)]["mean_delta_p"] <= 0.0 and rows[(25.0, 0.02)]["frac_above"] < 0.5
    assert d.numbers["fires_outside_training_range"] is False

    # a shortcut detector is caught firing outside the range
    s = D.ring_test(shortcut_scorer, ci[:24], {k: v[:24] for k, v in cm.items()}, radii_pix=(6, 20), amplitudes=(0.02,))
    assert s.numbers["fires_outside_training_range"] is True


def test_add_ring_matches_seeds_formula():
    img = np.zeros((1, 3, S, S), np.float32)
    out = D.add_ring(img, 15, 0.01, 20)
    y, x = np.ogrid[:S, :S]
    r = np.sqrt((y - 32) ** 2 + (x - 32) ** 2)
    ring = np.exp(-((r - 15) ** 2) / 20) * 0.01  # the seeds' code, section 3.2
    for c in range(3):
        np.testing.assert_allclose(out[0, c], ring, rtol=1e-6, atol=1e-9)


def test_arc_suppression_score_falls(toy, tmp_path):
    (ci, _, _, _), (ii, ia, im, _) = toy
    scorer = make_ring_scorer(ci)
    d = D.arc_suppression_test(scorer, ii, im, ia, out_dir=tmp_path)
    assert d.figure.is_file()
    assert d.numbers["score_falls"] and d.numbers["mean_p_without_arc"] < d.numbers["mean_p_with_arc"]
    assert d.numbers["frac_score_fell"] > 0.8
    np.testing.assert_allclose(D.subtract_arcs(ii, ia), ii - ia, atol=1e-7)
    # replacement by matched controls' pixels: the score falls too
    r = D.arc_suppression_test(scorer, ii, im, ia, donors=ci, invvar=np.full_like(ii, 1 / 0.006**2))
    assert r.numbers["mode"] == "replace" and r.numbers["score_falls"]
    # a scorer blind to the arc is exposed: its score does not fall
    blind = D.arc_suppression_test(lambda x, m: D.central_max(x) / 100.0, ii, im, ia)
    assert abs(blind.numbers["mean_p_with_arc"] - blind.numbers["mean_p_without_arc"]) < 1e-3


def test_score_vs_arc_snr_and_correlations(toy, tmp_path):
    (ci, _, cm, _), (ii, _, im, icol) = toy
    scorer = make_ring_scorer(ci)
    images = np.concatenate([ci, ii])
    p = scorer(images, {k: np.r_[cm[k], im[k]] for k in cm})
    inj = np.r_[np.zeros(len(ci), bool), np.ones(len(ii), bool)]
    snr = np.r_[np.full(len(ci), np.nan), icol["arc_snr"]]
    d = D.score_vs_arc_snr(p, snr, inj, edges=(0, 2, 5, 10, 50), out_dir=tmp_path)
    assert d.figure.is_file() and sum(r["n"] for r in d.table) == len(ii)
    assert d.table[-1]["recall"] > d.table[0]["recall"]  # harder at low arc_snr, as it must be
    assert d.numbers["controls_fpr"] == pytest.approx(float((p[: len(ci)] > 0.5).mean()))

    c = D.score_correlations(p[inj], ii, icol["theta_e"], out_dir=tmp_path)
    assert c.figure.is_file()
    assert c.numbers["theta_e"]["r"] == pytest.approx(np.corrcoef(p[inj], icol["theta_e"])[0, 1], abs=1e-9)
    rmax = ii[:, 1, 28:36, 28:36].reshape(len(ii), -1).max(axis=1)
    assert c.numbers["central_r_max"]["r"] == pytest.approx(np.corrcoef(p[inj], rmax)[0, 1], abs=1e-6)
    assert c.numbers["theta_e"]["n"] == len(ii)


def test_pixel_statistics_match_numpy(toy, tmp_path):
    (ci, _, _, _), (ii, _, _, _) = toy
    groups = {"training_positives": ii, "training_negatives": ci, "anchors": ci[:10] * 0.1}
    cb = D.central_brightness(groups, out_dir=tmp_path)
    for k, v in groups.items():
        ref = v[:, 1, 28:36, 28:36].reshape(len(v), -1).max(axis=1)
        assert cb.numbers[k]["mean"] == pytest.approx(float(ref.mean()), rel=1e-6)
        assert cb.numbers[k]["n"] == len(v)
    ob = D.outer_background(groups, out_dir=tmp_path)
    c = (S - 1) / 2
    y, x = np.mgrid[:S, :S]
    outer = np.hypot(y - c, x - c) > S / 4
    assert ob.numbers["training_negatives"]["outer_mean"] == pytest.approx(float(ci[:, 1][:, outer].mean(axis=1).mean()), rel=1e-5)
    npar = D.normalisation_parameters(groups, out_dir=tmp_path)
    med = np.median(ci[:, 1][:, outer], axis=1)
    assert npar.numbers["groups"]["training_negatives"]["outer_median"] == pytest.approx(float(np.median(med)), rel=1e-5)
    rf = D.region_flux(groups, out_dir=tmp_path)
    z = np.clip(_zscore(ii), -10, 10)
    for reg, (lo, hi) in D.REGIONS.items():
        m = (_R >= lo) & (_R < hi)
        assert rf.numbers["groups"]["training_positives"][reg] == pytest.approx(float(z[:, m].mean()), rel=1e-4, abs=1e-4)
    for d in (cb, ob, npar, rf):
        assert d.figure.is_file() and d.figure.stat().st_size > 1000


def test_metadata_zeros_refused(toy):
    (ci, _, cm, _), _ = toy
    bad = {**cm, "psf_fwhm_r": np.zeros(len(ci))}
    with pytest.raises(ConfigError, match="psf_fwhm_r"):
        D.ring_test(make_ring_scorer(ci), ci, bad, radii_pix=(6,), amplitudes=(0.01,))
    with pytest.raises(ConfigError, match="shape"):
        D.central_max(ci[0])
