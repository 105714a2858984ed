"""Compiled per-row passes (physics.fastrow) against the numpy definitions (metrics, noise) and
independent numpy computations, on random arrays with masks and missing data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from darkhaloscope.physics import fastrow, metrics
from darkhaloscope.physics.noise import arc_poisson_noise
from darkhaloscope.survey.maskbits import DEFAULT_BAD_MASK


def _random_case(seed: int, s: int = 48):
    """A lumpy positive arc with PSF-like ringing (tiny negative values), masks and dead pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:s, :s]
    arc = np.zeros((s, s))
    for _ in range(rng.integers(1, 5)):
        cy, cx, w = rng.uniform(5, s - 5), rng.uniform(5, s - 5), rng.uniform(0.8, 4.0)
        arc += rng.uniform(0.001, 0.2) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
    arc += rng.normal(0, 1e-7, arc.shape)
    arc = arc.astype(np.float32)
    invvar = rng.uniform(1e3, 5e4, (s, s)).astype(np.float32)
    invvar[rng.uniform(size=(s, s)) < 0.03] = 0
    maskbits = np.where(rng.uniform(size=(s, s)) < 0.05, 2 ** rng.integers(0, 12, (s, s)), 0).astype(np.int32)
    return arc, invvar, maskbits


@pytest.mark.parametrize("seed", range(12))
def test_snr_metrics_equal_the_numpy_definitions(seed):
    arc, iv, mb = _random_case(seed)
    fast = fastrow.snr_metrics_fast(arc, iv, mb)
    ref = metrics.snr_metrics(arc, iv, mb)
    assert fast[3] is None and ref[3] is None
    for f, r in zip(fast[:3], ref[:3], strict=True):
        assert f == pytest.approx(r, rel=1e-12)
    # an independent recomputation of the region SNR (scipy labels, explicit loop over regions)
    a, v = arc.astype(np.float64), iv.astype(np.float64)
    good = (v > 0) & ((mb & DEFAULT_BAD_MASK) == 0)  # the default survey.bad_maskbits rule
    lab, n = ndimage.label(good & (a * np.sqrt(v + 1e-12) > 1), structure=np.ones((3, 3)))
    best = max((a[lab == k].sum() / np.sqrt((1 / v[lab == k]).sum()) for k in range(1, n + 1)), default=0.0)
    assert fast[2] == pytest.approx(best, rel=1e-12)
    assert fast[0] == np.max(a[good] / (1 / np.sqrt(v[good] + 1e-12)))  # the max is exact


def test_snr_metrics_edge_cases():
    arc, iv, mb = _random_case(3)
    mb[:] = 2  # BRIGHT everywhere
    assert fastrow.snr_metrics_fast(arc, iv, mb) == metrics.snr_metrics(arc, iv, mb)
    zero = np.zeros((6, 6), np.float32)
    assert fastrow.snr_metrics_fast(zero, np.ones((6, 6)), np.zeros((6, 6), np.int32))[2] == 0.0
    ring = np.zeros((9, 9))  # a ring around a hole is one 8-connected region; two diagonal touches too
    ring[2:7, 2:7] = 5.0
    ring[3:6, 3:6] = 0.0
    ring[0, 0] = ring[1, 1] = 3.0
    one = np.ones((9, 9))
    assert fastrow.snr_metrics_fast(ring, one, np.zeros((9, 9), int))[2] == pytest.approx(
        metrics.arc_snr_region(ring, one, np.zeros((9, 9))), rel=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_half_light_radius_equals_the_sorted_definition(seed):
    arc, _, _ = _random_case(seed)
    assert fastrow.half_light_radius_fast(arc, 0.262) == pytest.approx(metrics.half_light_radius(arc, 0.262), rel=1e-9)


def test_half_light_radius_edge_cases():
    img = np.zeros((16, 16))
    assert fastrow.half_light_radius_fast(img, 0.262) is None
    img[7, 9] = 1.0  # one pixel holds all the flux: radius 0
    assert fastrow.half_light_radius_fast(img, 0.262) == metrics.half_light_radius(img, 0.262) == 0.0
    img[7, 10] = 1.0  # two equal pixels: ties in radius, zero-flux pixels in between in the order
    img[3, 3] = -5.0
    assert fastrow.half_light_radius_fast(img, 0.262) == pytest.approx(metrics.half_light_radius(img, 0.262), rel=1e-12)


def test_band_sums():
    arc = np.random.default_rng(1).normal(size=(3, 20, 20)).astype(np.float32)
    assert fastrow.band_sums(arc) == pytest.approx(arc.sum(axis=(1, 2), dtype=np.float64), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("noise", [True, False])
def test_noise_and_injection_sum_equal_the_numpy_reference(noise):
    """Same pixels, same draws, same sums: bit-identical to noise.arc_poisson_noise + numpy."""
    rng = np.random.default_rng(8)
    arc = np.stack([_random_case(s)[0] for s in (1, 2, 3)])
    arc[1, 10, 10] = -0.01
    invvar = rng.uniform(1e3, 5e4, arc.shape).astype(np.float32)
    invvar[:, 20:24, 20:30] = 0
    image = rng.normal(0, 0.01, arc.shape).astype(np.float32)
    sky = np.array([0.1, 0.3, 2.8])
    index, lam = np.empty(arc.size, np.int64), np.empty(arc.size)
    n = fastrow.noise_pixels(arc, invvar, sky, 1e-3 if noise else np.inf, index, lam)
    counts = np.random.default_rng(5).poisson(lam[:n])
    out = np.empty(arc.shape, np.float32)
    sums = fastrow.add_arc(image, arc, invvar, sky, index[:n], lam[:n], counts, out)
    assert np.array_equal(sums, fastrow.band_sums(arc))  # the arc's flux, taken in the same pass
    assert sums == pytest.approx(arc.sum(axis=(1, 2), dtype=np.float64), rel=1e-12)
    add = arc.astype(np.float64)
    if noise:
        ref_noise = arc_poisson_noise(np.random.default_rng(5), arc, invvar, sky, 1e-3)
        assert n == np.count_nonzero((arc > 0) & (invvar > 0) & (arc >= 1e-3 * sky[:, None, None]))
        assert 0 < n < np.count_nonzero((arc > 0) & (invvar > 0))  # the faint wings are skipped
        add = add + ref_noise
    else:
        assert n == 0
    expected = (image.astype(np.float64) + np.where(invvar > 0, add, 0.0)).astype(np.float32)
    assert np.array_equal(out, expected)



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cutout_flags_equal_the_numpy_checks(dtype):
    rng = np.random.default_rng(3)
    image = rng.normal(size=(3, 16, 16)).astype(dtype)
    invvar = rng.uniform(0, 2, (3, 16, 16)).astype(dtype)
    cases = [
        (image, invvar),
        (np.where(np.arange(16) == 5, np.nan, image).astype(dtype), invvar),
        (image, np.where(np.arange(16) == 2, np.inf, invvar).astype(dtype)),
        (image, np.where(np.arange(16) == 7, -1.0, invvar).astype(dtype)),
        (image, np.zeros_like(invvar)),
        (image, np.where(np.arange(16) == 7, np.nan, np.zeros_like(invvar)).astype(dtype)),
    ]
    for img, iv in cases:
        expected = (not np.isfinite(img).all(), not np.isfinite(iv).all(), bool((iv < 0).any()), bool((iv > 0).any()))
        assert fastrow.cutout_flags(img, iv) == expected
