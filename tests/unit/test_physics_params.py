"""Lens / source parameter draws: bounds, float32 rounding, LRG position, caustic region."""

from __future__ import annotations

import numpy as np
from astropy.nddata import Cutout2D

from darkhaloscope.config import Config, replace
from darkhaloscope.physics.params import (
    LensParams,
    cut_curve,
    draw_source_position,
    lrg_offset_arcsec,
)
from darkhaloscope.physics.render import ray_shoot
from darkhaloscope.physics.trials import draw_host_lens


def draw_lens(cfg: Config, task_id: int) -> LensParams:
    """The seeds' flat draws (theta_e_policy uniform, ellipticity_policy random) of physics/trials.py."""
    h = draw_host_lens({"task_id": task_id}, cfg)
    return LensParams(h.theta_e_uniform, h.e1, h.e2, h.g1, h.g2, h.x, h.y)


def test_draws_within_bounds_and_float32():
    full = replace(Config(), **{"lens.theta_e_policy": "uniform", "lens.ellipticity_policy": "random"})
    cfg = full.lens
    rng = np.random.default_rng(0)
    for t in range(300):
        lens = draw_lens(full, t)
        assert cfg.theta_e_min <= lens.theta_e <= cfg.theta_e_max
        assert np.hypot(lens.e1, lens.e2) <= cfg.ellipticity_max + 1e-6
        assert np.hypot(lens.g1, lens.g2) <= cfg.shear_max + 1e-6
        assert max(abs(lens.x), abs(lens.y)) <= cfg.center_offset_max * 0.262 + 1e-6
        assert lens.theta_e == float(np.float32(lens.theta_e))
        sx, sy = draw_source_position(rng, lens, cfg)
        assert np.hypot(sx - lens.x, sy - lens.y) <= cfg.source_radius_fraction * lens.theta_e + 1e-5


def test_lrg_offset_matches_astropy_cutout2d():
    data = np.zeros((500, 500))
    for bx, by in [(100.0, 200.0), (100.4, 200.6), (250.9, 37.2), (64.5, 300.49)]:
        cut = Cutout2D(data, (bx, by), 64)
        cx, cy = cut.to_cutout_position((bx, by))
        x, y = lrg_offset_arcsec(bx, by, 64, 0.262)
        assert abs(x - (cx - 31.5) * 0.262) < 1e-9 and abs(y - (cy - 31.5) * 0.262) < 1e-9
    assert lrg_offset_arcsec(None, float("nan"), 64, 0.262) == (0.0, 0.0)


def test_sis_cut_is_the_einstein_circle():
    ang, rad = cut_curve(LensParams(1.7))
    assert np.allclose(rad, 1.7, rtol=1e-5)


def test_caustic_mode_sources_are_multiply_imaged():
    """Every drawn source has >= 2 images: counted by ray-shooting a fine polar grid."""
    full = replace(Config(), **{"lens.source_position": "caustic", "lens.theta_e_policy": "uniform", "lens.ellipticity_policy": "random"})
    cfg = full.lens
    rng = np.random.default_rng(5)
    for t in range(10):
        lens = draw_lens(full, 1000 + t)
        sx, sy = draw_source_position(rng, lens, cfg)
        assert np.hypot(sx - lens.x, sy - lens.y) < 1.5 * lens.theta_e
        # images = image-plane points that map within 0.01" of the source, in separate clumps
        r = np.linspace(0.02, 3 * lens.theta_e, 600)
        phi = np.linspace(0, 2 * np.pi, 720, endpoint=False)
        R, P = np.meshgrid(r, phi)
        x, y = lens.x + R * np.cos(P), lens.y + R * np.sin(P)
        bx, by = ray_shoot(x, y, lens)
        hit = np.hypot(bx - sx, by - sy) < 0.03 * lens.theta_e
        angles = np.unique(np.round(P[hit] / (np.pi / 4)))  # image directions, coarse
        assert hit.any() and len(angles) >= 2


def test_f32_equals_numpy_float32_rounding():
    """f32 (struct fast path) rounds exactly as numpy's cast, overflow and NaN included."""
    import warnings

    from darkhaloscope.physics.params import f32

    rng = np.random.default_rng(4)
    values = list(rng.normal(size=2000) * 10.0 ** rng.integers(-45, 39, 2000)) + [0.0, -0.0, 3.4028235e38, 3.5e38, -1e39, 7e-46, np.inf]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in values:
            assert f32(float(v)) == float(np.float32(v))
    assert np.isnan(f32(float("nan")))
