"""Normalisations on known arrays, against an independent per-pixel reference of the seeds' code."""

from __future__ import annotations

import numpy as np
import pytest

from darkhaloscope.errors import ConfigError
from darkhaloscope.ml.normalize import (
    asinh_outer,
    normalize,
    outer_mad,
    outer_mask,
    per_band_zscore,
)


def _reference_outer_stats(band: np.ndarray, inner_frac: float = 0.5) -> tuple[float, float]:
    """Seeds' robust_mad_norm_outer statistics, written pixel by pixel."""
    s = band.shape[0]
    c = (s - 1) / 2.0
    vals = [band[i, j] for i in range(s) for j in range(s) if ((i - c) ** 2 + (j - c) ** 2) ** 0.5 > inner_frac * s / 2]
    vals = np.asarray(vals, dtype=np.float64)
    med = np.median(vals)
    return med, np.median(np.abs(vals - med))


def _stamp(seed: int = 1, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    r2 = (x - 31.5) ** 2 + (y - 31.5) ** 2
    core = np.exp(-r2 / (2 * 3.0**2))
    sky = np.array([0.004, 0.006, 0.012])[:, None, None]
    offset = np.array([0.001, -0.0005, 0.002])[:, None, None]
    img = offset + sky * rng.standard_normal((3, size, size)) + np.array([0.2, 0.5, 0.9])[:, None, None] * core
    return img.astype(np.float32)


def test_outer_mask_geometry():
    m = outer_mask(64)
    assert m.shape == (64, 64)
    # pixel (31, 31) is 0.71 px from the centre (31.5, 31.5): inside; corners outside
    assert not m[31, 31] and m[0, 0] and m[63, 63]
    # pixel (31, 47): r = hypot(0.5, 15.5) = 15.51 < 16 -> inner; (31, 48): r = 16.51 -> outer
    assert not m[31, 47] and m[31, 48]
    np.testing.assert_array_equal(m, np.rot90(m))
    assert m.sum() == 4096 - sum(1 for i in range(64) for j in range(64) if np.hypot(i - 31.5, j - 31.5) <= 16)


def test_outer_mad_matches_pixel_reference():
    img = _stamp()
    out = outer_mad(img, clip=10.0)
    for b in range(3):
        med, mad = _reference_outer_stats(img[b].astype(np.float64))
        ref = np.clip((img[b] - med) / (1.4826 * mad + 1e-6), -10, 10)
        np.testing.assert_allclose(out[b], ref, rtol=1e-4, atol=1e-4)
    # sky pixels of the outer annulus: median ~0 and robust sigma ~1 (3284 pixels: +-0.05)
    outer = out[:, outer_mask(64)]
    assert np.all(np.abs(np.median(outer, axis=1)) < 0.05)
    assert np.all(np.abs(1.4826 * np.median(np.abs(outer), axis=1) - 1) < 0.06)
    # the bright core saturates at the clip, as the seeds' section 3.5 table shows
    assert out[2, 31, 31] == pytest.approx(10.0)


def test_asinh_outer_is_asinh_of_unclipped_z():
    img = _stamp(2)
    out = asinh_outer(img)
    for b in range(3):
        med, mad = _reference_outer_stats(img[b].astype(np.float64))
        z = (img[b] - med) / (1.4826 * mad + 1e-6)
        np.testing.assert_allclose(out[b], np.arcsinh(z), rtol=1e-4, atol=1e-4)
    # the core is compressed, not flattened: centre > neighbours 3 px away, all below 10
    assert out[2, 31, 31] > out[2, 31, 34] > 3.0 and out.max() < 10.0


def test_per_band_zscore_known_values():
    img = np.zeros((3, 8, 8), np.float32)
    img[:, :, :4] = 1.0  # half ones, half zeros: mean 0.5, std 0.5 -> values +-1
    img[1] *= 7.0
    out = per_band_zscore(img)
    np.testing.assert_allclose(np.abs(out), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out[:, :, :4] > 0, True)
    big = _stamp(3)
    z = per_band_zscore(big, clip=1e9)
    np.testing.assert_allclose(z.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(1, 2)), 1, atol=1e-4)


@pytest.mark.parametrize("name", ["outer_mad", "asinh_outer", "per_band_zscore"])
def test_batch_equals_single_and_commutes_with_rot90(name):
    batch = np.stack([_stamp(s) for s in range(4)])
    out = normalize(batch, name)
    for i in range(4):
        np.testing.assert_array_equal(out[i], normalize(batch[i], name))
    rot = np.rot90(batch, 1, axes=(2, 3))
    np.testing.assert_allclose(normalize(np.ascontiguousarray(rot), name), np.rot90(out, 1, axes=(2, 3)), atol=1e-6)
    assert out.dtype == np.float32 and out.shape == batch.shape


def test_nonfinite_pixels_count_as_sky_and_bad_names_fail():
    img = _stamp(4)
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    fixed = img.copy()
    fixed[0, 0, 0] = 0.0
    np.testing.assert_array_equal(outer_mad(bad), outer_mad(fixed))
    with pytest.raises(ConfigError, match="unknown normalisation"):
        normalize(img, "minmax")
    with pytest.raises(ConfigError):
        outer_mad(np.zeros((3, 8, 9), np.float32))


def test_fast_median_equals_numpy_median():
    from darkhaloscope.ml.normalize import _median

    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 3284, 3285):
        a = rng.normal(size=(4, 3, n)).astype(np.float32)
        a[0, 0, : n // 2] = 1.0  # ties
        np.testing.assert_allclose(_median(a)[..., 0], np.median(a, axis=-1), rtol=1e-6, atol=1e-7)


def _mask_based_outer_mad(images: np.ndarray, clip: float = 10.0, eps: float = 1e-6) -> np.ndarray:
    """The previous implementation (boolean mask per call, np.median): the slow path."""
    x = np.asarray(images, dtype=np.float32)
    x = np.where(np.isfinite(x), x, np.float32(0.0))
    outer = x[..., outer_mask(x.shape[-1])]
    med = np.median(outer, axis=-1, keepdims=True).astype(np.float32)
    mad = np.median(np.abs(outer - med), axis=-1, keepdims=True).astype(np.float32)
    z = (x - med[..., None]) / (np.float32(1.4826) * mad[..., None] + np.float32(eps))
    return np.clip(z, -clip, clip).astype(np.float32)


def test_vectorised_outer_stats_equal_mask_based_path():
    from darkhaloscope.ml.normalize import outer_median_mad

    batch = np.stack([_stamp(s) for s in range(6)])
    batch[0, 1, 0, 0] = np.nan  # NaN in the outer ring
    batch[1, 2, 31, 31] = np.inf  # inf in the core
    batch[2, 0] = 0.02  # every pixel equal: MAD 0, z = 0 everywhere
    batch[3, 1][outer_mask(64)] = -0.003  # all-equal outer ring, bright core: clipped at +10
    out = outer_mad(batch)
    np.testing.assert_array_equal(out, _mask_based_outer_mad(batch))
    assert np.all(out[2, 0] == 0) and out[3, 1, 31, 31] == 10.0 and np.isfinite(out).all()
    med, mad = outer_median_mad(batch)
    assert med.shape == mad.shape == (6, 3, 1, 1) and mad[2, 0, 0, 0] == mad[3, 1, 0, 0] == 0
    np.testing.assert_array_equal(asinh_outer(batch, clip=1e9), np.arcsinh(_mask_based_outer_mad(batch, clip=1e30)))
