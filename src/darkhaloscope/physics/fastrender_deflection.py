"""Compiled (numba) SIE deflection of the fast renderer (:mod:`.fastrender`): lenstronomy's NIE
formulas (Keeton & Kochanek 1998) with lenstronomy's own parameter conversion and its 1e-10
arcsec core, and the direction table that replaces them per ray (an isothermal deflection
depends only on the direction). Positions and deflections in arcsec, or template pixels where
said. ``cache=True`` keeps the machine code on disk next to this file (keyed by file).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .params import LensParams
from .render import SIE_PROFILE, SourcePlacement

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


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sie_exact(dx, dy, k):
    """lenstronomy's SIE deflection (NIE with a 1e-10 core: shift, rotate to the major axis,
    NIEMajorAxis.derivatives, rotate back) at (dx, dy) arcsec from the lens centre.
    atanh(z) is evaluated as log1p(2z / (1 - z)) / 2 (same value, 4x faster than libm atanh)."""
    c = k[2]
    s = k[3]
    xr = dx * c + dy * s
    yr = -dx * s + dy * c
    q2 = k[6]
    core = k[7]
    psi = math.sqrt(q2 * (core * core + xr * xr) + yr * yr)
    fx = k[4] * math.atan(k[5] * xr / (psi + core))
    z = k[5] * yr / (psi + q2 * core)
    fy = k[4] * 0.5 * math.log1p(2.0 * z / (1.0 - z))
    return fx * c - fy * s, fx * s + fy * c


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _to_frame(ax, ay, k, frame):
    """A deflection (arcsec) in the table's frame: arcsec (frame 0) or template (col, row)
    pixels (frame 1: scaled, rotated by phi_G, rows flipped)."""
    if frame == 0:
        return ax, ay
    return ax * k[12] + ay * k[13], (ay * k[12] - ax * k[13]) * k[15]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _build_table(k, tab, frame):
    """SIE deflection on the unit circle at nodes uniform in t = tan(phi/2), t in
    [-1 - 3h, 1 + 3h] (h = 2 / (len - 7)): the right half-plane plus a margin for the stencil;
    in arcsec (frame 0) or already in template (col, row) pixels (frame 1, what the tracer uses:
    the map to the template is affine, so rotating the table once saves that work per ray)."""
    nt = tab.shape[0] - 7
    h = 2.0 / nt
    for m in range(tab.shape[0]):
        t = -1.0 + (m - 3) * h
        d = 1.0 + t * t
        ax, ay = _sie_exact((1.0 - t * t) / d, 2.0 * t / d, k)
        tab[m, 0], tab[m, 1] = _to_frame(ax, ay, k, frame)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sie_table(dx, dy, k, tab, frame):
    """SIE deflection from the direction table (in the table's frame, see :func:`_build_table`):
    an isothermal deflection depends only on the direction (the 1e-10 arcsec core aside), and
    alpha(-d) = -alpha(d). 4-point Lagrange interpolation in t = tan(phi/2) (smooth in phi),
    error O(h^4)."""
    r = math.sqrt(dx * dx + dy * dy)
    if r == 0.0 or tab.shape[0] < 8:
        ax, ay = _sie_exact(dx, dy, k)
        return _to_frame(ax, ay, k, frame)
    sign = 1.0
    if dx < 0.0:
        dx = -dx
        dy = -dy
        sign = -1.0
    t = dy / (r + dx)
    nt = tab.shape[0] - 7
    u = (t + 1.0) * (nt / 2.0) + 3.0
    i = int(u)
    f = u - i
    fm1 = f - 1.0
    fm2 = f - 2.0
    fp1 = f + 1.0
    w0 = (-1.0 / 6.0) * f * fm1 * fm2
    w1 = 0.5 * fp1 * fm1 * fm2
    w2 = -0.5 * fp1 * f * fm2
    w3 = (1.0 / 6.0) * fp1 * f * fm1
    ax = w0 * tab[i - 1, 0] + w1 * tab[i, 0] + w2 * tab[i + 1, 0] + w3 * tab[i + 2, 0]
    ay = w0 * tab[i - 1, 1] + w1 * tab[i, 1] + w2 * tab[i + 1, 1] + w3 * tab[i + 2, 1]
    return sign * ax, sign * ay


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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _deflect_many(dx, dy, k, tab, ax, ay):
    for m in range(dx.shape[0]):
        ax[m], ay[m] = _sie_table(dx[m], dy[m], k, tab, 0)
