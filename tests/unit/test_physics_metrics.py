"""Arc metrics on hand-built arrays, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from darkhaloscope.physics import metrics


def _arrays():
    arc = np.zeros((20, 20))
    arc[3:6, 3:6] = 2.0  # region A: 9 pixels
    arc[12:14, 10:17] = 1.0  # region B: 14 pixels
    invvar = np.full((20, 20), 4.0)  # sigma = 0.5
    maskbits = np.zeros((20, 20), np.int32)
    return arc, invvar, maskbits


def test_snr_definitions():
    arc, iv, mb = _arrays()
    assert metrics.arc_snr(arc, iv, mb) == pytest.approx(2.0 / 0.5, rel=1e-9)
    assert metrics.arc_snr_sum(arc, iv, mb) == pytest.approx((18 + 14) / np.sqrt(400 * 0.25), rel=1e-12)
    # region SNRs: A = 18 / sqrt(9 * 0.25) = 12, B = 14 / sqrt(14 * 0.25) = 7.48
    assert metrics.arc_snr_region(arc, iv, mb) == pytest.approx(12.0, rel=1e-9)


def test_masked_and_no_data_pixels_are_ignored():
    arc, iv, mb = _arrays()
    arc[0, 0] = 1000.0
    mb[0, 0] = 4
    arc[19, 19] = 1000.0
    iv[19, 19] = 0
    assert metrics.arc_snr(arc, iv, mb) == pytest.approx(4.0)
    assert metrics.arc_snr_sum(arc, iv, mb) == pytest.approx(32 / np.sqrt(398 * 0.25))
    mb[3:6, 3:6] = 2  # BRIGHT: mask region A: region B is the best
    assert metrics.arc_snr_region(arc, iv, mb) == pytest.approx(14 / np.sqrt(14 * 0.25))


def test_no_good_pixels_gives_none_with_reason():
    arc, iv, mb = _arrays()
    mb[:] = 2  # BRIGHT
    assert metrics.snr_metrics(arc, iv, mb)[:3] == (None, None, None)
    assert "good pixels" in metrics.snr_metrics(arc, iv, mb)[3]
    assert metrics.arc_snr_region(np.zeros((5, 5)), np.ones((5, 5)), np.zeros((5, 5))) == 0.0


def test_diagonal_pixels_form_one_region():
    arc = np.zeros((6, 6))
    arc[1, 1] = arc[2, 2] = 3.0
    iv = np.ones((6, 6))
    assert metrics.arc_snr_region(arc, iv, np.zeros((6, 6))) == pytest.approx(6 / np.sqrt(2))


def test_half_light_radius_of_a_gaussian():
    """A circular Gaussian's HLR is sigma sqrt(2 ln 2), here off-centre (2 %)."""
    sigma = 3.0
    yy, xx = np.mgrid[:64, :64]
    img = np.exp(-((xx - 30.3) ** 2 + (yy - 35.6) ** 2) / (2 * sigma**2))
    assert metrics.half_light_radius(img, 0.262) == pytest.approx(sigma * np.sqrt(2 * np.log(2)) * 0.262, rel=0.02)
    assert metrics.half_light_radius(np.zeros((8, 8)), 0.262) is None
