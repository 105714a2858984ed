"""The compiled renderer against lenstronomy (deflections, ImageModel) and the numpy path."""

from __future__ import annotations

import numpy as np
import pytest
from lenstronomy.LensModel.Profiles.sie import SIE
from scipy.signal import fftconvolve

from darkhaloscope.config import Config
from darkhaloscope.physics.fastrender import ray_levels, render_unit_fast, sie_deflection
from darkhaloscope.physics.params import LensParams
from darkhaloscope.physics.reference import cosmos_templates, galsim_templates, lenstronomy_arc
from darkhaloscope.physics.render import SourcePlacement, arc_masks, render_unit

PIX = 0.262
R = Config().render


@pytest.fixture(scope="module")
def templates(shared_data):
    return np.concatenate([galsim_templates(3, seed=5), cosmos_templates(shared_data)[:3]])


def _random_lens(rng, e_max=0.5) -> LensParams:
    e, pe = rng.uniform(0, e_max), rng.uniform(0, np.pi)
    return LensParams(rng.uniform(0.5, 2.5), e * np.cos(2 * pe), e * np.sin(2 * pe), *rng.uniform(-0.05, 0.05, 2), *rng.uniform(-0.13, 0.13, 2))


def test_sie_deflection_equals_lenstronomy():
    """Exact kernel to rounding (1e-12"); the direction table within 1e-7" (3e-6 of a 0.03"
    template pixel) plus the core term, including a round lens and the config's largest
    ellipticity."""
    rng = np.random.default_rng(3)
    ref_profile = SIE()
    for i in range(12):
        lens = _random_lens(rng)
        if i == 0:
            lens = LensParams(1.2, 0.0, 0.0, x=0.03)
        if i == 1:
            lens = LensParams(2.0, 0.5 * np.cos(0.4), 0.5 * np.sin(0.4))
        x, y = rng.uniform(-8.5, 8.5, (2, 5000))
        x[:3], y[:3] = lens.x + np.array([1e-3, 0.0, -2.0]), lens.y + np.array([0.0, -1e-3, 0.0])  # axes, near the centre
        rx, ry = ref_profile.derivatives(x, y, lens.theta_e, lens.e1, lens.e2, lens.x, lens.y)
        ex, ey = sie_deflection(x, y, lens, table_nodes=0)
        assert max(np.abs(ex - rx).max(), np.abs(ey - ry).max()) < 1e-12
        tx, ty = sie_deflection(x, y, lens)
        # the table assumes alpha depends on direction only; lenstronomy's 1e-10" core breaks
        # that by ~theta_E x 1e-10 / r (1e-7" at r = 1e-3"): allowed on top of 1e-7"
        allowed = 1e-7 + 1.5e-10 * lens.theta_e / np.hypot(x - lens.x, y - lens.y)
        assert (np.abs(tx - rx) < allowed).all() and (np.abs(ty - ry) < allowed).all()


def test_full_grid_equals_lenstronomy_imagemodel(templates):
    """Every pixel traced (ss=3): equals lenstronomy's ImageModel to 1e-6 of the peak."""
    lens = LensParams(1.3, 0.12, -0.2, 0.03, -0.02, 0.06, -0.1)
    full = np.ones((40, 40), bool)
    for flip in (False, True):
        src = SourcePlacement(0.31, -0.22, 123.0, flip, 0.03)
        ref = lenstronomy_arc(templates[4], lens, src, 40, PIX, 3)
        for nodes in (0, 512):
            ours = render_unit_fast(templates[4], lens, src, 40, PIX, 3, mask=full, table_nodes=nodes)
            assert np.abs(ours - ref).max() <= 1e-6 * ref.max(), nodes


def test_same_pixels_and_values_as_the_numpy_path(templates):
    """Uniform supersampling (ray_spacing 0): the pixels and rays of render.arc_masks, minus
    pixels the |alpha| bound proves dark (there the numpy path, tracing them, gives exactly 0);
    the same image to 1e-6 of the peak (the deflection table is the only difference)."""
    rng = np.random.default_rng(11)
    for i in range(8):
        lens = _random_lens(rng)
        th = lens.theta_e
        src = SourcePlacement(lens.x + 0.3 * th * rng.uniform(-1, 1), lens.y + 0.3 * th * rng.uniform(-1, 1), rng.uniform(0, 360), bool(i % 2), 0.03)
        t = templates[i % len(templates)]
        near, core = arc_masks(t, lens, src, 64, PIX, R.core_fraction)
        levels = ray_levels(t, lens, src, 64, PIX, 8, R.faint_supersampling, R.core_fraction)
        assert np.array_equal(levels[0], levels[1])
        expected = np.where(core, 8, np.where(near, R.faint_supersampling, 0))
        skipped = (levels[0] == 0) & (expected > 0)
        assert np.array_equal(levels[0][~skipped], expected[~skipped])
        kw = {"faint_supersampling": R.faint_supersampling, "core_fraction": R.core_fraction}
        ours = render_unit_fast(t, lens, src, 64, PIX, 8, **kw)
        ref = render_unit(t, lens, src, 64, PIX, 8, **kw)
        assert np.abs(ours - ref).max() <= 1e-6 * ref.max()
        assert (ref[skipped] == 0).all()


def test_skipped_pixels_are_dark_on_every_lens(templates):
    """The |alpha| bound never drops a pixel that has light: on a compact template (most pixels
    dark, so the bound matters), every pixel traced at ss=8 on the full grid (numpy path, exact
    lenstronomy deflections) that has flux is traced by the compiled selection."""
    rng = np.random.default_rng(17)
    t = np.zeros((128, 128), np.float32)
    t[50:70, 58:75] = rng.uniform(0.5, 1.0, (20, 17))
    full = np.ones((48, 48), bool)
    for i in range(12):
        lens = _random_lens(rng)
        if i == 0:
            lens = LensParams(2.5, 0.35, 0.35, 0.05, 0.0)  # the largest deflections of the config
        src = SourcePlacement(lens.x + rng.uniform(-1, 1), lens.y + rng.uniform(-1, 1), rng.uniform(0, 360), bool(i % 2), 0.03)
        lit = render_unit(t, lens, src, 48, PIX, 8, mask=full) != 0
        levels = ray_levels(t, lens, src, 48, PIX, 8)
        assert lit.any() and (levels[0][lit] > 0).all()
        assert (levels[0] == 0).sum() > (~lit).sum() // 4  # the bound does skip pixels


def test_ray_spacing_only_removes_rays_where_the_pixel_is_magnified(templates):
    """Never more rays than the uniform grid; unlensed pixels (edge 0.262/0.03 = 8.73 template
    pixels in the source plane) keep all 8 x 8 at spacing 1.09 and ceil(8.73 / spacing) per axis
    otherwise; tangential arc pixels of an SIS get fewer rays along one axis."""
    t = templates[0]
    src = SourcePlacement(0.05, 0.02)
    kw = {"faint_supersampling": R.faint_supersampling, "core_fraction": R.core_fraction}
    uniform = ray_levels(t, LensParams(1e-6), src, 64, PIX, 8, **kw)
    assert np.array_equal(uniform, ray_levels(t, LensParams(1e-6), src, 64, PIX, 8, ray_spacing=1.09, **kw))
    spaced = ray_levels(t, LensParams(1e-6), src, 64, PIX, 8, ray_spacing=R.ray_spacing, **kw)
    edge = PIX / 0.03
    core_rays = min(8, int(np.ceil(edge / R.ray_spacing)))
    faint_rays = min(R.faint_supersampling, int(np.ceil(edge / (R.ray_spacing * 8 / R.faint_supersampling))))
    expected = np.where(uniform == 8, core_rays, np.where(uniform > 0, faint_rays, 0))
    expected[:, 30:34, 30:34] = uniform[:, 30:34, 30:34]  # around the lens centre: always ss x ss
    assert np.array_equal(spaced, expected)
    lens = LensParams(1.5)
    uniform = ray_levels(t, lens, src, 64, PIX, 8, **kw)
    spaced = ray_levels(t, lens, src, 64, PIX, 8, ray_spacing=R.ray_spacing, **kw)
    assert (spaced <= uniform).all() and np.array_equal(spaced > 0, uniform > 0)
    assert (spaced[0] * spaced[1]).sum() < 0.8 * (uniform[0] * uniform[1]).sum()


def test_production_settings_against_lenstronomy_ss16(templates):
    """The production path (table, ray spacing, faint supersampling) on 30 random lenses:
    p99 max-pixel error of the PSF-free image over the arc <= 1 % of the peak, flux <= 0.5 %."""
    rng = np.random.default_rng(9)
    size, errs, ferrs = 40, [], []
    for _ in range(30):
        lens = _random_lens(rng)
        r, a = 0.5 * lens.theta_e * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        src = SourcePlacement(lens.x + r * np.cos(a), lens.y + r * np.sin(a), rng.uniform(0, 360), bool(rng.integers(2)), 0.03)
        t = templates[rng.integers(len(templates))]
        ours = render_unit_fast(t, lens, src, size, PIX, R.supersampling, faint_supersampling=R.faint_supersampling, core_fraction=R.core_fraction, ray_spacing=R.ray_spacing)
        ref = render_unit_fast(t, lens, src, size, PIX, 16, mask=np.ones((size, size), bool), table_nodes=0)
        # compare after a 1-pixel box blur: the PSF-free pixel error of a compact HST core is
        # not what the stamp sees; the PSF-convolved comparison is test_physics_render's
        k = np.ones((3, 3)) / 9
        o, f = fftconvolve(ours, k, mode="same"), fftconvolve(ref, k, mode="same")
        errs.append(np.abs(o - f).max() / f.max())
        ferrs.append(abs(ours.sum() / ref.sum() - 1))
    assert np.percentile(errs, 99) <= 0.01, np.percentile(errs, [50, 99])
    assert np.percentile(ferrs, 90) <= 0.005


def test_bad_template_is_a_physics_error():
    from darkhaloscope.errors import PhysicsError

    with pytest.raises(PhysicsError):
        render_unit_fast(np.zeros((4, 5)), LensParams(1.0), SourcePlacement(0, 0), 16, PIX, 4)
    with pytest.raises(PhysicsError):
        render_unit_fast(np.zeros((4, 4)), LensParams(1.0), SourcePlacement(0, 0), 16, PIX, 0)
