"""Compiled (numba) ray-shooting: the same physics as :mod:`.render`, fused into one pass.

Per pixel: SIE + shear deflection (lenstronomy's NIE formulas, Keeton & Kochanek 1998, with
lenstronomy's own parameter conversion and its 1e-10 core), INTERPOL-equivalent bilinear sampling
of the template and the supersample average, without temporaries. The choice of pixels and of
their supersampling is that of :func:`.render.arc_masks`: the (S+1)^2 pixel corners are traced,
each pixel's padded source-plane bounding box is tested against summed-area tables of the
template's non-zero pixels and of its core; pixels that miss the template cost nothing. Before
that, a bound on |alpha| proves most dark pixels dark without tracing their corners (exactly
zero either way, see :func:`.fastrender_kernels._live_kernel`).

This module is the Python wrapper (argument checks, lens constants, direction table, kernel
calls); the compiled kernels are in :mod:`.fastrender_kernels`, all in one file so that numba's
per-file cache invalidation covers them together. The numba functions are compiled once per
process (``cache=True`` keeps the machine code on disk next to that file, so fresh Spark executor
processes load it instead of compiling); there is no fastmath and no parallelism, so a render
is a deterministic function of its inputs and ``render_arc_from_row`` reproduces a stored arc
bit for bit. ``error_model="numpy"`` only drops numba's ZeroDivisionError checks (no divisor
here is zero where the checks would not have raised), which makes tracing ~25 % faster with the
same bits. Units as in :mod:`.render`.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import PhysicsError
from .fastrender_kernels import (
    _build_table,
    _corners_kernel,
    _deflect_many,
    _levels_kernel,
    _live_kernel,
    _trace_kernel,
)
from .params import LensParams
from .render import (
    _FOOTPRINT_PAD_FRACTION,
    _FOOTPRINT_PAD_TEMPLATE_PIX,
    SIE_PROFILE,
    SourcePlacement,
    _prepared,
)

# q >= 1 is replaced by this in lenstronomy's NIEMajorAxis.derivatives (a round SIE).
_Q_ROUND = 0.99999999


def lens_constants(lens: LensParams, src: SourcePlacement, n: int) -> np.ndarray:
    """float64 [22] constants of one (lens, source placement) for the compiled kernels.

    The SIE conversion (theta_E, e1, e2) -> (b, s, q, phi_G) is lenstronomy's own
    ``NIE.param_conv`` with the SIE core ``s_scale`` (1e-10 arcsec). [16:22]: the affine part of
    the map (dx, dy) from the lens centre -> template (col, row) = shift, shear, scale, rotation
    and flip folded into one 2x3 matrix (the deflection is subtracted in the template frame).
    """
    b, s, q, phi = SIE_PROFILE.profile.param_conv(lens.theta_e, lens.e1, lens.e2, SIE_PROFILE._s_scale)
    q = float(q)
    if q >= 1:
        q = _Q_ROUND
    sq = math.sqrt(1.0 - q**2)
    rot = math.radians(src.rotation_deg)
    cs, sn, f = math.cos(rot) / src.scale, math.sin(rot) / src.scale, -1.0 if src.flip else 1.0
    g1, g2, half = lens.g1, lens.g2, (n - 1) / 2.0
    ox, oy = lens.x - src.x, lens.y - src.y  # ux = ox + (1 - g1) dx - g2 dy, uy = oy - g2 dx + (1 + g1) dy
    return np.array([
        lens.x, lens.y, math.cos(phi), math.sin(phi), float(b) / sq, sq, q * q, float(s),
        g1, g2, src.x, src.y, cs, sn, src.scale, f,
        half + ox * cs + oy * sn, (1.0 - g1) * cs - g2 * sn, -g2 * cs + (1.0 + g1) * sn,
        half + f * (oy * cs - ox * sn), f * (-g2 * cs - (1.0 - g1) * sn), f * ((1.0 + g1) * cs + g2 * sn),
    ])


DEFAULT_TABLE_NODES = 512  # direction-table intervals over t in [-1, 1]; 0 = exact deflections


def _lens_setup(lens: LensParams, src: SourcePlacement, n: int, table_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(constants, direction table) of one lens; an empty table means exact deflections."""
    k = lens_constants(lens, src, n)
    if table_nodes <= 0:
        return k, np.zeros((0, 2))
    tab = np.empty((int(table_nodes) + 7, 2))
    _build_table(k, tab, 1)
    return k, tab


def sie_deflection(x: np.ndarray, y: np.ndarray, lens: LensParams, table_nodes: int = DEFAULT_TABLE_NODES) -> tuple[np.ndarray, np.ndarray]:
    """SIE deflection (arcsec) at image-plane points (arcsec) as the compiled kernels compute
    it (the shear excluded): for tests against lenstronomy's ``SIE.derivatives``."""
    k = lens_constants(lens, SourcePlacement(0.0, 0.0), 1)
    tab = np.zeros((0, 2))
    if table_nodes > 0:
        tab = np.empty((int(table_nodes) + 7, 2))
        _build_table(k, tab, 0)
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    ax = np.empty_like(x)
    ay = np.empty_like(y)
    _deflect_many(x - lens.x, y - lens.y, k, tab, ax, ay)
    return ax, ay


def ray_levels(
    template: np.ndarray, lens: LensParams, src: SourcePlacement, size: int, pixel_scale: float,
    supersampling: int, faint_supersampling: int = 0, core_fraction: float = 0.0, table_nodes: int = DEFAULT_TABLE_NODES,
    ray_spacing: float = 0.0,
) -> np.ndarray:
    """int32 [2, S, S] rays per pixel along x and y (0: the pixel cannot see the template);
    which pixels and the base supersampling as :func:`.render.arc_masks` decides."""
    template = _check(template, supersampling)
    k, tab = _lens_setup(lens, src, template.shape[0], table_nodes)
    return _levels(template, k, tab, size, pixel_scale, supersampling, faint_supersampling, core_fraction, ray_spacing)


def _levels(template, k, tab, size, pixel_scale, supersampling, faint_supersampling, core_fraction, ray_spacing=0.0) -> np.ndarray:
    adaptive = 0 < faint_supersampling < supersampling and core_fraction > 0
    _, sat_all, sat_core = _prepared(template, core_fraction if adaptive else 0.0)
    n = template.shape[0]
    # |alpha| bound (template pixels): a 4-point Lagrange interpolant is at most
    # sum|w| <= 1.25 x its largest node
    amax = 1.25 * float(np.sqrt((tab * tab).sum(axis=1)).max()) + 1e-9 if tab.shape[0] >= 8 else -1.0
    live = np.zeros((size + 2, size + 2), np.bool_)
    _live_kernel(k, sat_all, n, size, float(pixel_scale), amax, live)
    cr = np.zeros((size + 1, size + 1))
    cc = np.zeros((size + 1, size + 1))
    _corners_kernel(k, tab, n, size, float(pixel_scale), cr, cc, live)
    levels = np.empty((2, size, size), np.int32)
    _levels_kernel(
        k, sat_all, sat_core, size, float(pixel_scale), int(supersampling),
        int(faint_supersampling) if adaptive else int(supersampling),
        _FOOTPRINT_PAD_FRACTION, _FOOTPRINT_PAD_TEMPLATE_PIX, float(ray_spacing), cr, cc, live, levels,
    )
    return levels


def render_unit_fast(
    template: np.ndarray, lens: LensParams, src: SourcePlacement, size: int, pixel_scale: float,
    supersampling: int, mask: np.ndarray | None = None, faint_supersampling: int = 0, core_fraction: float = 0.0,
    table_nodes: int = DEFAULT_TABLE_NODES, ray_spacing: float = 0.0,
) -> np.ndarray:
    """Compiled equivalent of :func:`.render.render_unit` (same arguments and result; with
    ``table_nodes = 0`` equal to floating-point rounding, with the direction table within its
    interpolation error, tested): float64 [S, S], flux per pixel for the template's own flux."""
    template = _check(template, supersampling)
    n = template.shape[0]
    k, tab = _lens_setup(lens, src, n, table_nodes)
    if mask is not None:
        levels = np.repeat(np.where(np.asarray(mask, bool), supersampling, 0).astype(np.int32)[None], 2, axis=0)
    else:
        levels = _levels(template, k, tab, size, pixel_scale, supersampling, faint_supersampling, core_fraction, ray_spacing)
    out = np.zeros((size, size))
    _trace_kernel(k, tab, _prepared(template)[0], n, size, float(pixel_scale), levels, out)
    return out


def _check(template: np.ndarray, supersampling: int) -> np.ndarray:
    template = np.asarray(template)
    if template.ndim != 2 or template.shape[0] != template.shape[1]:
        raise PhysicsError(f"source template must be square [n, n], got {template.shape}", field="template")
    if supersampling < 1:
        raise PhysicsError(f"supersampling must be >= 1, got {supersampling}", field="render.supersampling")
    return template
