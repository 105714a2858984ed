"""Compiled (numba) kernels of the fast renderer (:mod:`.fastrender` is their Python wrapper).

The SIE deflection (lenstronomy's NIE formulas, Keeton & Kochanek 1998, with its 1e-10 arcsec
core) and its direction table, the bound that proves pixels dark, the traced pixel corners, the
rays per pixel and the ray-shooting average. Positions and deflections in arcsec, template
coordinates in template pixels, results in template flux per pixel; ``k`` is the float64 [22]
vector of :func:`.fastrender.lens_constants`.

All kernels stay in this one file on purpose: numba's ``cache=True`` invalidates a cached
function only when its own file changes (numba issue #1833; the numba user guide's notes on
``cache``), and these kernels inline one another, so spreading them over files could load stale
machine code after an edit.
"""

from __future__ import annotations

import math

import numba
import numpy as np


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


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _to_template(x, y, k, tab, half):
    """Image-plane (x, y) arcsec -> template (row, col) index coordinates (see render.ray_shoot
    and render.template_coords: beta = theta - alpha_SIE - alpha_shear, then shift/scale/rotate)."""
    # beta = theta - alpha_SIE - Gamma (theta - lens), then to template index coordinates
    # (lenstronomy Interpol.coord2image_pixel): all affine but alpha_SIE, which the table
    # holds in template pixels (lens_constants[16:22]; ``half`` is folded in there)
    dx = x - k[0]
    dy = y - k[1]
    tc, tr = _sie_table(dx, dy, k, tab, 1)
    return k[19] + k[20] * dx + k[21] * dy - tr, k[16] + k[17] * dx + k[18] * dy - tc


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _bilinear(padded, r, c):
    """One bilinear sample of the zero-bordered template (render.bilinear, scalar)."""
    lim = padded.shape[0] - 2.0
    r = min(max(r + 1.0, 0.0), lim)
    c = min(max(c + 1.0, 0.0), lim)
    r0 = math.floor(r)
    c0 = math.floor(c)
    fr = r - r0
    fc = c - c0
    i = int(r0)
    j = int(c0)
    top = padded[i, j] * (1.0 - fc) + padded[i, j + 1] * fc
    bot = padded[i + 1, j] * (1.0 - fc) + padded[i + 1, j + 1] * fc
    return top * (1.0 - fr) + bot * fr


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _touches(sat, rmin, rmax, cmin, cmax):
    """render._touches_support for one box: does it hold a non-zero template pixel?"""
    n = sat.shape[0] - 1
    r0 = min(max(math.floor(rmin), 0), n)
    r1 = min(max(math.floor(rmax) + 2, 0), n)
    c0 = min(max(math.floor(cmin), 0), n)
    c1 = min(max(math.floor(cmax) + 2, 0), n)
    if r1 <= r0 or c1 <= c0:
        return False
    i0, i1, j0, j1 = int(r0), int(r1), int(c0), int(c1)
    return sat[i1, j1] - sat[i0, j1] - sat[i1, j0] + sat[i0, j0] > 0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _corners_kernel(k, tab, n, size, pix, cr, cc, live):
    """Template (row, col) coordinates of the pixel corners that a live pixel uses."""
    half = (n - 1) / 2.0
    for i in range(size + 1):
        y = (i - size / 2.0) * pix
        for j in range(size + 1):
            if not (live[i, j] or live[i, j + 1] or live[i + 1, j] or live[i + 1, j + 1]):
                continue
            r, c = _to_template((j - size / 2.0) * pix, y, k, tab, half)
            cr[i, j] = r
            cc[i, j] = c


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _support_box(sat):
    """(row0, row1, col0, col1): inclusive index range of the template's non-zero pixels, from
    its summed-area table; row1 < row0 if the template is all zero."""
    n = sat.shape[0] - 1
    r0, r1, c0, c1 = n, -1, n, -1
    for i in range(n):
        if sat[i + 1, n] - sat[i, n] > 0:
            r0 = min(r0, i)
            r1 = i
        if sat[n, i + 1] - sat[n, i] > 0:
            c0 = min(c0, i)
            c1 = i
    return r0, r1, c0, c1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _live_kernel(k, sat, n, size, pix, amax, live):
    """live[1 + i, 1 + j] = pixel (i, j) may see the template (a zero border around [S, S]).

    A rigorous bound that needs no ray: every ray of a pixel lands within (1 + |gamma|) x the
    pixel's half-diagonal of the shear-mapped pixel centre, minus a deflection of length <= amax
    (arcsec). If that disc misses the template's non-zero box widened by the bilinear stencil
    (1 template pixel), every ray of the pixel samples exactly zero; such pixels, and their
    corners, are skipped. amax < 0 disables the bound (every pixel is live).
    """
    half = (n - 1) / 2.0
    r0, r1, c0, c1 = _support_box(sat)
    lo_r, hi_r, lo_c, hi_c = r0 - 1.0, r1 + 1.0, c0 - 1.0, c1 + 1.0
    rad = (1.0 + math.hypot(k[8], k[9])) * pix * math.sqrt(0.5) / k[14] + amax + 1e-6
    centre0 = (size - 1) / 2.0
    for i in range(size):
        y = (i - centre0) * pix
        for j in range(size):
            if amax < 0.0:
                live[i + 1, j + 1] = True
                continue
            if r1 < r0:
                live[i + 1, j + 1] = False
                continue
            x = (j - centre0) * pix
            dx = x - k[0]
            dy = y - k[1]
            ux = x - (k[8] * dx + k[9] * dy) - k[10]
            uy = y - (k[9] * dx - k[8] * dy) - k[11]
            c = ux * k[12] + uy * k[13] + half
            r = (uy * k[12] - ux * k[13]) * k[15] + half
            er = max(lo_r - r, 0.0, r - hi_r)
            ec = max(lo_c - c, 0.0, c - hi_c)
            live[i + 1, j + 1] = er * er + ec * ec <= rad * rad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _levels_kernel(k, sat_all, sat_core, size, pix, ss, ss_faint, pad_frac, pad_pix, spacing, cr, cc, live, levels):
    """Rays per pixel along x (``levels[0]``) and y (``levels[1]``); 0 = not traced.

    Which pixels and which base supersampling (``ss`` near the template's core, ``ss_faint`` near
    its outskirts only) as render.arc_masks decides, minus the pixels that ``live`` (see
    :func:`_live_kernel`) proves see only zeros (the 3x3 around the lens centre are always traced). With ``spacing > 0`` (template pixels) a
    pixel gets per axis only as many rays as keep the source-plane step between its rays below
    ``spacing`` x ss / base (the step of the uniform grid in an unlensed region), never more
    than the base: magnified pixels, whose edges shrink in the source plane, need fewer rays.
    """
    centre0 = (size - 1) / 2.0
    for i in range(size):
        near_y = abs((i - centre0) * pix - k[1]) <= 1.5 * pix
        for j in range(size):
            if near_y and abs((j - centre0) * pix - k[0]) <= 1.5 * pix:
                levels[0, i, j] = ss  # the lens map is singular at the lens centre
                levels[1, i, j] = ss
                continue
            if not live[i + 1, j + 1]:
                levels[0, i, j] = 0
                levels[1, i, j] = 0
                continue
            r00, r01, r10, r11 = cr[i, j], cr[i, j + 1], cr[i + 1, j], cr[i + 1, j + 1]
            c00, c01, c10, c11 = cc[i, j], cc[i, j + 1], cc[i + 1, j], cc[i + 1, j + 1]
            rmin = min(min(r00, r01), min(r10, r11))
            rmax = max(max(r00, r01), max(r10, r11))
            cmin = min(min(c00, c01), min(c10, c11))
            cmax = max(max(c00, c01), max(c10, c11))
            pr = pad_frac * (rmax - rmin) + pad_pix
            pc = pad_frac * (cmax - cmin) + pad_pix
            if not _touches(sat_all, rmin - pr, rmax + pr, cmin - pc, cmax + pc):
                levels[0, i, j] = 0
                levels[1, i, j] = 0
                continue
            base = ss
            if ss_faint != ss and not _touches(sat_core, rmin - pr, rmax + pr, cmin - pc, cmax + pc):
                base = ss_faint
            mx = base
            my = base
            if spacing > 0.0:
                step = spacing * ss / base
                lx = max(math.hypot(r01 - r00, c01 - c00), math.hypot(r11 - r10, c11 - c10))
                ly = max(math.hypot(r10 - r00, c10 - c00), math.hypot(r11 - r01, c11 - c01))
                mx = min(base, max(1, int(math.ceil(lx / step))))
                my = min(base, max(1, int(math.ceil(ly / step))))
            levels[0, i, j] = mx
            levels[1, i, j] = my


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trace_kernel(k, tab, padded, n, size, pix, levels, out):
    """Mean template value of the mx x my midpoint rays of each traced pixel (mx, my = levels)."""
    half = (n - 1) / 2.0
    centre0 = (size - 1) / 2.0
    area = (pix / k[14]) ** 2
    mmax = 1
    for i in range(size):
        for j in range(size):
            mmax = max(mmax, levels[0, i, j], levels[1, i, j])
    off = np.empty((mmax + 1, mmax))  # off[m, a]: offset (arcsec) of ray a of m in a pixel
    for m in range(1, mmax + 1):
        for a in range(m):
            off[m, a] = ((a + 0.5) / m - 0.5) * pix
    for i in range(size):
        yc = (i - centre0) * pix
        for j in range(size):
            mx = levels[0, i, j]
            my = levels[1, i, j]
            if mx <= 0 or my <= 0:
                continue
            xc = (j - centre0) * pix
            acc = 0.0
            for a in range(my):
                y = yc + off[my, a]
                for b in range(mx):
                    r, c = _to_template(xc + off[mx, b], y, k, tab, half)
                    acc += _bilinear(padded, r, c)
            out[i, j] = acc / (mx * my) * area



@numba.njit(cache=True, nogil=True, error_model="numpy")
def _deflect_many(dx, dy, k, tab, ax, ay):
    for m in range(dx.shape[0]):
        ax[m], ay[m] = _sie_table(dx[m], dy[m], k, tab, 0)
