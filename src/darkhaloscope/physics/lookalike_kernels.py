"""Compiled passes of the look-alike painter (physics/lookalikes.py) that keep its numpy bits.

Only the arithmetic, ``hypot`` (C libm in both numpy and numba) and the summation order move
here; every ``exp`` and ``arctan2`` stays a numpy ufunc call on a whole array (numpy's SIMD
versions differ from libm's in the last bit), so the painted flux is the plain numpy form's bit
for bit (tests/unit/test_lookalikes.py keeps that form as the reference).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
def disc_frame(dxc, dxs, dyc, dys, q, u, v, r):
    """Disc-frame coordinates of the grid [ny, nx] from the per-axis terms (arcsec):
    u = dx cos(pa) + dy sin(pa), v = (-dx sin(pa) + dy cos(pa)) / q, r = hypot(u, v).

    dxc = dx cos(pa), dxs = -dx sin(pa) over the columns; dyc = dy cos(pa), dys = dy sin(pa)
    over the rows (the products numpy forms before broadcasting); writes u, v, r."""
    for i in range(dyc.shape[0]):
        for j in range(dxc.shape[0]):
            a = dxc[j] + dys[i]
            b = (dxs[j] + dyc[i]) / q
            u[i, j] = a
            v[i, j] = b
            r[i, j] = math.hypot(a, b)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def radial_exponent(r, centre, width, out):
    """out = -0.5 ((r - centre) / width)^2, the exponent of a Gaussian cross-section."""
    for i in range(r.shape[0]):
        for j in range(r.shape[1]):
            t = (r[i, j] - centre) / width
            out[i, j] = (t * t) * -0.5


@numba.njit(cache=True, nogil=True, error_model="numpy")
def clump_exponents(x1, y1, cx, cy, sig2, windows, out):
    """Exponents -0.5 ((x - x0)^2 + (y - y0)^2) / sig2 of every clump over its window, packed
    clump after clump into ``out`` (flat); windows[k] = (i0, i1, j0, j1). Returns the length used."""
    n = 0
    for k in range(cx.shape[0]):
        i0, i1, j0, j1 = windows[k, 0], windows[k, 1], windows[k, 2], windows[k, 3]
        for i in range(i0, i1):
            dy = y1[i] - cy[k]
            dy2 = dy * dy
            for j in range(j0, j1):
                dx = x1[j] - cx[k]
                out[n] = ((dx * dx + dy2) * -0.5) / sig2
                n += 1
    return n


@numba.njit(cache=True, nogil=True, error_model="numpy")
def add_clumps(values, wt, windows, knots):
    """knots[window k] += wt[k] * values (the packed exp of :func:`clump_exponents`), clump by clump."""
    n = 0
    for k in range(wt.shape[0]):
        i0, i1, j0, j1 = windows[k, 0], windows[k, 1], windows[k, 2], windows[k, 3]
        for i in range(i0, i1):
            for j in range(j0, j1):
                knots[i, j] += values[n] * wt[k]
                n += 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def window_exponent(phi, centre, half_span, edge, out):
    """Exponent -0.5 (d / edge)^2 of the soft azimuthal window, d = max(|wrap(phi - centre)| -
    half_span, 0) (radian; wrap to [-pi, pi) by float remainder, exact like numpy's)."""
    two_pi = 2 * np.pi
    for i in range(phi.shape[0]):
        for j in range(phi.shape[1]):
            a = ((phi[i, j] - centre) + np.pi) % two_pi - np.pi
            d = abs(a) - half_span
            d = (d if d > 0.0 else 0.0) / edge
            out[i, j] = (d * d) * -0.5


@numba.njit(cache=True, nogil=True, error_model="numpy")
def spiral_exponent(phi, winding, r, phi_arm, sin_pitch, width, out):
    """Exponent -0.5 (r wrap(phi - phi_arm - winding) sin(pitch) / width)^2 of one spiral arm
    (radian, arcsec; wrap as in :func:`window_exponent`)."""
    two_pi = 2 * np.pi
    for i in range(phi.shape[0]):
        for j in range(phi.shape[1]):
            a = ((phi[i, j] - phi_arm) - winding[i, j] + np.pi) % two_pi - np.pi
            t = ((r[i, j] * a) * sin_pitch) / width
            out[i, j] = (t * t) * -0.5


@numba.njit(cache=True, nogil=True, error_model="numpy")
def shell_exponent(r, rk, width, out):
    """Exponent of a shell of radius ``rk`` (arcsec): -(rk - r) / (3 width) inside it (r <= rk),
    -0.5 ((r - rk) / width)^2 outside."""
    inner_scale = 3.0 * width
    for i in range(r.shape[0]):
        for j in range(r.shape[1]):
            x = r[i, j]
            if x <= rk:
                out[i, j] = -(rk - x) / inner_scale
            else:
                t = (x - rk) / width
                out[i, j] = (t * t) * -0.5
