"""Compiled (numba) ray-shooting: the same physics as :mod:`.render`, fused into one pass.

Per pixel: SIE + shear deflection (lenstronomy's NIE formulas, Keeton & Kochanek 1998, with
lenstronomy's own parameter conversion and its 1e-10 core), INTERPOL-equivalent bilinear sampling
of the template and the supersample average, without temporaries. The choice of pixels and of
their supersampling is that of :func:`.render.arc_masks`: the (S+1)^2 pixel corners are traced,
each pixel's padded source-plane bounding box is tested against summed-area tables of the
template's non-zero pixels and of its core; pixels that miss the template cost nothing. Before
that, a bound on |alpha| proves most dark pixels dark without tracing their corners (exactly
zero either way, see :func:`.fastrender_trace._live_kernel`).

This module is the Python wrapper (argument checks, tables, kernel calls); the compiled SIE
deflection and direction table are in :mod:`.fastrender_deflection`, the per-pixel kernels in
:mod:`.fastrender_trace`. The numba functions are compiled once per process (``cache=True``
keeps the machine code on disk next to those files, so fresh Spark executor processes load it
instead of compiling); there is no fastmath and no parallelism, so a render is a deterministic
function of its inputs and ``render_arc_from_row`` reproduces a stored arc bit for bit.
``error_model="numpy"`` only drops numba's ZeroDivisionError checks (no divisor here is zero
where the checks would not have raised), which makes tracing ~25 % faster with the same bits.
Units as in :mod:`.render`.
"""

from __future__ import annotations

import numpy as np

from ..errors import PhysicsError
from .fastrender_deflection import DEFAULT_TABLE_NODES, _lens_setup, lens_constants, sie_deflection
from .fastrender_trace import _corners_kernel, _levels_kernel, _live_kernel, _trace_kernel
from .params import LensParams
from .render import (
    _FOOTPRINT_PAD_FRACTION,
    _FOOTPRINT_PAD_TEMPLATE_PIX,
    SourcePlacement,
    _prepared,
)

__all__ = ["DEFAULT_TABLE_NODES", "lens_constants", "ray_levels", "render_unit_fast", "sie_deflection"]


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
