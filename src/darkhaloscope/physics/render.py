"""Ray-shooting an SIE + shear lens onto a source template, supersampled only near the arc.

Units: stamp pixels of ``pixel_scale`` arcsec; positions in arcsec from the stamp centre
(pixel index (S-1)/2), x = +column, y = +row (a lenstronomy grid with transform diag(+p, +p)).
The deflections are lenstronomy's own SIE and SHEAR profile functions, called vectorised; the
source is sampled exactly as lenstronomy ``INTERPOL`` samples it (bilinear interpolation of
the template, zero outside it, image rows = y, rotation ``phi_G``), so with every pixel
supersampled the result equals lenstronomy's ``ImageModel`` at the same supersampling.

Speed: a pixel needs rays only if its footprint in the source plane can touch the template's
non-zero pixels. One cheap pass traces the (S+1)^2 pixel corners; each pixel's footprint is the
bounding box of its four corners (in template pixels), dilated by half its size plus 3 template
pixels (curvature of the lens map; the 3x3 pixels around the lens centre, where the map is
singular, are always supersampled). Only those pixels get ``ss x ss`` rays; the others are
exactly zero. This is what makes ss = 8 affordable (docs/PHYSICS.md gives the numbers).
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from lenstronomy.LensModel.Profiles.shear import Shear
from lenstronomy.LensModel.Profiles.sie import SIE

from ..errors import PhysicsError
from .params import LensParams

SIE_PROFILE = SIE()
SHEAR_PROFILE = Shear()
_FOOTPRINT_PAD_TEMPLATE_PIX = 3.0
_FOOTPRINT_PAD_FRACTION = 0.5


@dataclass(frozen=True)
class SourcePlacement:
    """Where and how the template sits in the source plane.

    x, y: template centre (arcsec from the stamp centre); rotation_deg: lenstronomy ``phi_G``
    in degrees; flip: mirror the template rows (``template[::-1]``) before rotating;
    scale: template pixel scale (arcsec/pixel, COSMOS 0.03).
    """

    x: float
    y: float
    rotation_deg: float = 0.0
    flip: bool = False
    scale: float = 0.03


def ray_shoot(x: np.ndarray, y: np.ndarray, lens: LensParams) -> tuple[np.ndarray, np.ndarray]:
    """Source-plane positions (arcsec) of image-plane positions (arcsec): beta = theta - alpha."""
    ax, ay = SIE_PROFILE.derivatives(x, y, lens.theta_e, lens.e1, lens.e2, lens.x, lens.y)
    sx, sy = SHEAR_PROFILE.derivatives(x, y, lens.g1, lens.g2, lens.x, lens.y)
    return x - ax - sx, y - ay - sy


def template_coords(bx: np.ndarray, by: np.ndarray, src: SourcePlacement, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) index coordinates in an n x n template of source-plane points (arcsec).

    As lenstronomy ``Interpol.coord2image_pixel``: shift, scale, rotate by phi_G; the template's
    pixel (i, j) sits at (i - (n-1)/2, j - (n-1)/2). A flip mirrors the row coordinate.
    """
    phi = math.radians(src.rotation_deg)
    c, s = math.cos(phi), math.sin(phi)
    dx = (bx - src.x) / src.scale
    dy = (by - src.y) / src.scale
    u = dx * c + dy * s
    v = -dx * s + dy * c
    if src.flip:
        v = -v
    half = (n - 1) / 2.0
    return v + half, u + half


def bilinear(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a template at index coordinates, zero outside it.

    ``padded`` is the template with one zero row/column before and two after (see
    :func:`pad_template`); this equals lenstronomy's ``RectBivariateSpline(kx=1, ky=1)`` on its
    zero-bordered image.
    """
    n2 = padded.shape[0] - 2  # = n + 1, the last zero border index
    r = np.clip(rows + 1.0, 0.0, n2)
    c = np.clip(cols + 1.0, 0.0, n2)
    r0 = np.floor(r)
    c0 = np.floor(c)
    fr = r - r0
    fc = c - c0
    w = padded.shape[1]
    idx = r0.astype(np.intp) * w + c0.astype(np.intp)
    flat = padded.ravel()
    top = flat[idx] * (1.0 - fc) + flat[idx + 1] * fc
    bot = flat[idx + w] * (1.0 - fc) + flat[idx + w + 1] * fc
    return top * (1.0 - fr) + bot * fr


def pad_template(template: np.ndarray) -> np.ndarray:
    """float64 template with a zero border (1 before, 2 after) for :func:`bilinear`."""
    n = template.shape[0]
    out = np.zeros((n + 3, n + 3))
    out[1 : n + 1, 1 : n + 1] = template
    return out


def _support_table(template: np.ndarray) -> np.ndarray:
    """Summed-area table [n+1, n+1] of the template's non-zero pixels."""
    nz = (template != 0).astype(np.int32)
    sat = np.zeros((nz.shape[0] + 1, nz.shape[1] + 1), np.int32)
    sat[1:, 1:] = nz.cumsum(0).cumsum(1)
    return sat


def _touches_support(sat: np.ndarray, rmin, rmax, cmin, cmax) -> np.ndarray:
    """True where the index box [rmin, rmax] x [cmin, cmax] (bilinear stencil included) holds a
    non-zero template pixel."""
    n = sat.shape[0] - 1
    r0 = np.clip(np.floor(rmin), 0, n).astype(np.intp)
    r1 = np.clip(np.floor(rmax) + 2, 0, n).astype(np.intp)  # exclusive
    c0 = np.clip(np.floor(cmin), 0, n).astype(np.intp)
    c1 = np.clip(np.floor(cmax) + 2, 0, n).astype(np.intp)
    count = sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0]
    return (count > 0) & (r1 > r0) & (c1 > c0)


_PREP_CACHE: OrderedDict[int, tuple] = OrderedDict()
_PREP_CACHE_SIZE = 512  # ~0.27 MB per 128 px template: <= ~140 MB per process


def _prepared(template: np.ndarray, core_fraction: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(padded float64 template, support table of its non-zero pixels, support table of its
    core: pixels >= core_fraction x its peak), memoised per template array object (LRU).

    The bank hands out the same (read-only by contract) array for a source every time, so the
    preparation is done once per source per process; a dead or different object is recomputed.
    One entry per template holds the padding, the support table and the core tables by
    fraction, so the renderer's two look-ups of a stamp hit the same entry.
    """
    key = id(template)
    hit = _PREP_CACHE.get(key)
    if hit is None or hit[0]() is not template:
        try:
            ref = weakref.ref(template)
        except TypeError:  # not weak-referenceable: do not cache
            ref = None
        hit = (ref, pad_template(template), _support_table(template), {})
        if ref is not None:
            _PREP_CACHE[key] = hit
            if len(_PREP_CACHE) > _PREP_CACHE_SIZE:
                _PREP_CACHE.popitem(last=False)
    else:
        _PREP_CACHE.move_to_end(key)
    _, padded, sat_all, cores = hit
    fraction = float(core_fraction)
    sat_core = cores.get(fraction)
    if sat_core is None:
        sat_core = sat_all if fraction <= 0 else _support_table(np.where(template >= fraction * template.max(), template, 0))
        cores[fraction] = sat_core
    return padded, sat_all, sat_core


def pixel_centres(size: int, pixel_scale: float) -> np.ndarray:
    """Pixel-centre coordinates (arcsec) along one axis, 0 at the stamp centre."""
    return (np.arange(size) - (size - 1) / 2.0) * pixel_scale


def subpixel_offsets(ss: int, pixel_scale: float) -> np.ndarray:
    """Sub-ray offsets (arcsec) within a pixel along one axis: midpoints of ss equal cells."""
    return ((np.arange(ss) + 0.5) / ss - 0.5) * pixel_scale


def arc_masks(
    template: np.ndarray, lens: LensParams, src: SourcePlacement, size: int, pixel_scale: float, core_fraction: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean [S, S] pairs (near, core): pixels whose source-plane footprint may touch the
    template's non-zero pixels, and those that may touch its core (>= core_fraction x peak)."""
    n = template.shape[0]
    edges = (np.arange(size + 1) - size / 2.0) * pixel_scale
    gx, gy = np.meshgrid(edges, edges)
    bx, by = ray_shoot(gx, gy, lens)
    r, c = template_coords(bx, by, src, n)
    corners_r = (r[:-1, :-1], r[:-1, 1:], r[1:, :-1], r[1:, 1:])
    corners_c = (c[:-1, :-1], c[:-1, 1:], c[1:, :-1], c[1:, 1:])
    rmin = np.minimum.reduce(corners_r)
    rmax = np.maximum.reduce(corners_r)
    cmin = np.minimum.reduce(corners_c)
    cmax = np.maximum.reduce(corners_c)
    pad_r = _FOOTPRINT_PAD_FRACTION * (rmax - rmin) + _FOOTPRINT_PAD_TEMPLATE_PIX
    pad_c = _FOOTPRINT_PAD_FRACTION * (cmax - cmin) + _FOOTPRINT_PAD_TEMPLATE_PIX
    box = (rmin - pad_r, rmax + pad_r, cmin - pad_c, cmax + pad_c)
    _, sat_all, sat_core = _prepared(template, core_fraction)
    near = _touches_support(sat_all, *box)
    core = _touches_support(sat_core, *box)
    # The lens map is singular at the lens centre: always supersample the pixels around it.
    centres = pixel_centres(size, pixel_scale)
    near_x = np.abs(centres - lens.x) <= 1.5 * pixel_scale
    near_y = np.abs(centres - lens.y) <= 1.5 * pixel_scale
    centre = near_y[:, None] & near_x[None, :]
    return near | centre, (core | centre) & near | centre


def arc_mask(template: np.ndarray, lens: LensParams, src: SourcePlacement, size: int, pixel_scale: float) -> np.ndarray:
    """Boolean [S, S]: pixels whose source-plane footprint may touch the template's non-zero pixels."""
    return arc_masks(template, lens, src, size, pixel_scale)[0]


def render_unit(
    template: np.ndarray,
    lens: LensParams,
    src: SourcePlacement,
    size: int,
    pixel_scale: float,
    supersampling: int,
    mask: np.ndarray | None = None,
    faint_supersampling: int = 0,
    core_fraction: float = 0.0,
) -> np.ndarray:
    """Lensed image of the template, before the PSF: float64 [S, S], flux per pixel for the
    template's own flux (a unit-flux template gives a unit-flux source).

    template: [n, n] flux per template pixel (``src.scale`` arcsec/pixel). Surface brightness
    is template / scale^2 (lenstronomy INTERPOL units) and a pixel's flux is the mean surface
    brightness of its ``supersampling^2`` rays times pixel_scale^2. ``mask`` = pixels to trace
    (default :func:`arc_mask`; all-True reproduces lenstronomy's full supersampled grid).
    With ``0 < faint_supersampling < supersampling`` and ``core_fraction > 0`` (and no explicit
    mask), pixels that can only see the template's faint outskirts (below ``core_fraction`` of
    its peak: wings, sky noise) get ``faint_supersampling`` rays per axis instead.
    """
    template = np.asarray(template)
    if template.ndim != 2 or template.shape[0] != template.shape[1]:
        raise PhysicsError(f"source template must be square [n, n], got {template.shape}", field="template")
    if supersampling < 1:
        raise PhysicsError(f"supersampling must be >= 1, got {supersampling}", field="render.supersampling")
    n = template.shape[0]
    levels = []
    if mask is not None:
        levels.append((np.asarray(mask, bool), supersampling))
    elif 0 < faint_supersampling < supersampling and core_fraction > 0:
        near, core = arc_masks(template, lens, src, size, pixel_scale, core_fraction)
        levels += [(core, supersampling), (near & ~core, faint_supersampling)]
    else:
        levels.append((arc_mask(template, lens, src, size, pixel_scale), supersampling))
    out = np.zeros((size, size))
    for level_mask, ss in levels:
        rows_i, cols_j = np.nonzero(level_mask)
        if rows_i.size:
            out[rows_i, cols_j] = _trace_pixels(template, n, lens, src, rows_i, cols_j, size, pixel_scale, ss)
    return out


def _trace_pixels(template, n, lens, src, rows_i, cols_j, size, pixel_scale, ss) -> np.ndarray:
    """Mean flux of ss x ss midpoint rays in each listed pixel (flux per pixel, unit template)."""
    centres = pixel_centres(size, pixel_scale)
    off = subpixel_offsets(ss, pixel_scale)
    oy, ox = np.meshgrid(off, off, indexing="ij")
    x = centres[cols_j][:, None] + ox.ravel()[None, :]
    y = centres[rows_i][:, None] + oy.ravel()[None, :]
    bx, by = ray_shoot(x, y, lens)
    r, c = template_coords(bx, by, src, n)
    values = bilinear(_prepared(template)[0], r, c)
    return values.mean(axis=1) * (pixel_scale / src.scale) ** 2
