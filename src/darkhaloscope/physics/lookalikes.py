"""Procedural non-lensing look-alikes: star-forming rings, partial rings, spiral arms, tidal shells.

The hardest false positives of lens finders are ring-like galaxies (Metcalf et al. 2019, A&A 625,
A119, sec. 6: the Strong Gravitational Lens Finding Challenge) and the seeds' finder scored
p = 1.0 on any LRG with a ring added (seeds/gen5_failure_analysis.md, sec. 3.2). A ``ring`` row
paints one of these shapes on its host: a single image with no counter-image, drawn as surface
brightness on a supersampled grid, then through the same Moffat PSF, shot noise and SNR code as
an arc (inject.py). Every shape is a pure function of a :class:`Lookalike` (the row's
``lookalike_*`` columns), so a row re-renders bit for bit.

Geometry (arcsec, lenstronomy's convention x = +column, y = +row from the stamp centre): the
shape is centred on (x, y), with position angle ``pa_deg`` (counter-clockwise from +x) and axis
ratio ``q`` (a tilted disc: elliptical radius sqrt(u^2 + (v/q)^2)); ``width`` is the Gaussian
sigma (arcsec) of a ring / arm / shell cross-section; clumps (star-forming knots, Gaussians of
sigma 0.7 width) sit on the structure at places drawn from ``seed``.

Kinds:
  ring          full ring of radius ``radius``.
  partial_ring  the ring over ``span_deg`` of azimuth centred on ``phase_deg`` (soft 0.2 rad edges).
  spiral        ``arms`` logarithmic arms of pitch ``pitch_deg`` from 0.25 radius out to ``radius``.
  shells        ``arms`` concentric shells (radius, 0.7 radius, 0.49 radius ...) on alternating
                sides (phase_deg, phase_deg + 180 ...), each over ``span_deg``, sharp outer edge
                and an exponential inner fall-off of scale 3 width (Quinn 1984's phase-wrapped
                shells, as seen around ellipticals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PhysicsError
from . import lookalike_kernels as kernels

KINDS = ("ring", "partial_ring", "spiral", "shells")
_EDGE_RAD = 0.2  # soft azimuthal edge of partial rings and shells (radian)
_SHELL_STEP = 0.7  # radius ratio of successive shells
_SPIRAL_INNER = 0.25  # spiral arms start at this fraction of the outer radius
_EXP_ZERO = 750.0  # exp(-x) is exactly 0 in float64 for x > 745.2


@dataclass(frozen=True)
class Lookalike:
    """One look-alike's parameters (the row's ``lookalike_*`` columns); units in the module doc."""

    kind: str
    x: float
    y: float
    radius: float
    width: float
    q: float
    pa_deg: float
    span_deg: float
    phase_deg: float
    pitch_deg: float
    arms: int
    clumps: int
    clump_fraction: float
    seed: int


def _window(phi: np.ndarray, centre: float, span: float) -> np.ndarray:
    """1 within +-span/2 of ``centre`` (radian), Gaussian edges of sigma _EDGE_RAD beyond."""
    if span >= 2 * np.pi:
        return np.ones_like(phi)
    out = np.empty_like(phi)
    kernels.window_exponent(phi, float(centre), float(span / 2), _EDGE_RAD, out)
    return np.exp(out, out=out)


def _frame(p: Lookalike, xs: np.ndarray, ys: np.ndarray, azimuth: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(elliptical radius arcsec, azimuth radian or None when not ``azimuth``) of the grid points
    in the look-alike's disc frame: xs a row [1, nx], ys a column [ny, 1] of sky positions (arcsec).
    The per-axis products are formed once; one compiled pass combines them (same bits as numpy's
    broadcast)."""
    pa = np.deg2rad(p.pa_deg)
    dx, dy = (xs - p.x)[0], (ys - p.y)[:, 0]
    shape = (dy.shape[0], dx.shape[0])
    u, v, r = np.empty(shape), np.empty(shape), np.empty(shape)
    kernels.disc_frame(dx * np.cos(pa), -dx * np.sin(pa), dy * np.cos(pa), dy * np.sin(pa), float(p.q), u, v, r)
    return r, (np.arctan2(v, u, out=v) if azimuth else None)


def _to_sky(p: Lookalike, r: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disc-frame (radius, azimuth) -> sky (x, y) arcsec."""
    pa = np.deg2rad(p.pa_deg)
    u, v = r * np.cos(phi), r * np.sin(phi) * p.q
    return p.x + u * np.cos(pa) - v * np.sin(pa), p.y + u * np.sin(pa) + v * np.cos(pa)


def _radial(r: np.ndarray, centre: float, width: float) -> np.ndarray:
    """exp(-0.5 ((r - centre) / width)^2): a Gaussian cross-section of sigma ``width`` arcsec."""
    t = np.empty_like(r)
    kernels.radial_exponent(r, float(centre), float(width), t)
    return np.exp(t, out=t)


def smooth_profile(p: Lookalike, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Un-normalised surface brightness of the smooth part at sky points (xs, ys) arcsec (arrays
    that broadcast to the grid: a row of x and a column of y, or two full grids)."""
    r, phi = _frame(p, xs, ys, azimuth=p.kind != "ring")
    w = p.width
    if p.kind in ("ring", "partial_ring"):
        prof = _radial(r, p.radius, w)
        if p.kind == "partial_ring":
            prof *= _window(phi, np.deg2rad(p.phase_deg), np.deg2rad(p.span_deg))
        return prof
    if p.kind == "spiral":
        r_in = _SPIRAL_INNER * p.radius
        envelope = np.where(r < r_in, _radial(r, r_in, w), 1.0)
        envelope *= np.where(r > p.radius, _radial(r, p.radius, w), 1.0)
        sin_pitch = np.sin(np.deg2rad(p.pitch_deg))
        # the arms' winding log(r / r_in) / tan(pitch) is the same for every arm: once
        winding = np.log(np.maximum(r, 1e-6) / r_in)
        winding /= np.tan(np.deg2rad(p.pitch_deg))
        arms, arm = None, np.empty_like(r)
        for k in range(p.arms):  # r = r_in exp(tan(pitch) (phi - phi_arm)) for arm k
            phi_arm = np.deg2rad(p.phase_deg) + 2 * np.pi * k / p.arms
            kernels.spiral_exponent(phi, winding, r, float(phi_arm), float(sin_pitch), float(w), arm)
            np.exp(arm, out=arm)
            arms = arm.copy() if arms is None else np.add(arms, arm, out=arms)
        envelope *= arms
        return envelope
    if p.kind == "shells":
        prof, edge = np.zeros_like(r), np.empty_like(r)
        for k in range(p.arms):
            rk = p.radius * _SHELL_STEP**k
            kernels.shell_exponent(r, float(rk), float(w), edge)  # inside: exponential; outside: Gaussian fall-off
            np.exp(edge, out=edge)
            edge *= _window(phi, np.deg2rad(p.phase_deg) + np.pi * k, np.deg2rad(p.span_deg))
            prof += edge
        return prof
    raise PhysicsError(f"unknown look-alike kind {p.kind!r}; kinds are {list(KINDS)}", field="lookalike_kind")


def clump_positions(p: Lookalike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y arcsec, relative weight) of the clumps, drawn from ``p.seed`` on the structure."""
    rng = np.random.Generator(np.random.PCG64(int(p.seed)))
    n = p.clumps
    weight = rng.uniform(0.5, 1.5, n)
    t = rng.uniform(0.0, 1.0, n)
    phase = np.deg2rad(p.phase_deg)
    if p.kind == "ring":
        r, phi = np.full(n, p.radius), 2 * np.pi * t
    elif p.kind == "partial_ring":
        r, phi = np.full(n, p.radius), phase + (t - 0.5) * np.deg2rad(p.span_deg)
    elif p.kind == "spiral":
        arm = rng.integers(0, p.arms, n)
        r_in = _SPIRAL_INNER * p.radius
        r = r_in * np.exp(t * np.log(p.radius / r_in))
        phi = phase + 2 * np.pi * arm / p.arms + np.log(r / r_in) / np.tan(np.deg2rad(p.pitch_deg))
    else:  # shells: knots on the outermost shell's edge
        r, phi = np.full(n, p.radius), phase + (t - 0.5) * np.deg2rad(p.span_deg)
    x, y = _to_sky(p, r, phi)
    return x, y, weight


def _clumps(xs: np.ndarray, ys: np.ndarray, cx: np.ndarray, cy: np.ndarray, wt: np.ndarray, sig: float) -> np.ndarray:
    """Sum of the clumps' Gaussians (sigma ``sig`` arcsec, peak ``wt``) on the grid of the row
    ``xs`` [1, nx] and column ``ys`` [ny, 1] (arcsec), float64 [ny, nx].

    Each Gaussian is evaluated only on the rows and columns where its exponent is above -750:
    beyond, exp underflows to exactly 0 (below -745.2), so the sum is the full grid's, bit for bit.
    The exponents of every clump go through one numpy exp (packed), the sum in clump order.
    """
    knots = np.zeros((ys.shape[0], xs.shape[1]))
    reach = np.sqrt(2 * _EXP_ZERO) * sig
    x1, y1 = np.ascontiguousarray(xs[0]), np.ascontiguousarray(ys[:, 0])
    windows = np.empty((len(cx), 4), np.int64)
    windows[:, 0:2] = np.searchsorted(y1, np.stack([cy - reach, cy + reach], axis=1))
    windows[:, 2:4] = np.searchsorted(x1, np.stack([cx - reach, cx + reach], axis=1))
    size = int(((windows[:, 1] - windows[:, 0]) * (windows[:, 3] - windows[:, 2])).sum())
    if size == 0:
        return knots
    values = np.empty(size)
    kernels.clump_exponents(x1, y1, np.asarray(cx, np.float64), np.asarray(cy, np.float64), float(sig**2), windows, values)
    kernels.add_clumps(np.exp(values, out=values), np.asarray(wt, np.float64), windows, knots)
    return knots


def lookalike_unit(p: Lookalike, size: int, pixel_scale: float, supersampling: int) -> np.ndarray:
    """The look-alike as flux per pixel, float64 [size, size], summing to 1 on the stamp.

    Surface brightness is sampled at ``supersampling``^2 points per pixel and averaged; the
    smooth part holds (1 - clump_fraction) of the flux and the clumps the rest.
    """
    if p.kind not in KINDS:
        raise PhysicsError(f"unknown look-alike kind {p.kind!r}; kinds are {list(KINDS)}", field="lookalike_kind")
    if not (p.radius > 0 and p.width > 0 and 0 < p.q <= 1):
        raise PhysicsError(f"look-alike needs radius > 0, width > 0, 0 < q <= 1, got {p}", field="lookalike_radius")
    ss = int(supersampling)
    # only the pixels within radius + 7 width of the centre are drawn (the profiles fall below
    # exp(-24) of their peak beyond): a look-alike covers a fraction of the stamp
    reach = (p.radius + 7.0 * p.width) / pixel_scale
    centre = (size - 1) / 2.0
    c0, c1 = (max(0, int(np.floor(v / pixel_scale + centre - reach))) for v in (p.x, p.y))
    c0e, c1e = (min(size, int(np.ceil(v / pixel_scale + centre + reach)) + 1) for v in (p.x, p.y))
    if c0e <= c0 or c1e <= c1:
        raise PhysicsError(f"look-alike {p.kind} lies off the stamp (centre {p.x}, {p.y} arcsec)", field="lookalike_x")
    cols = (np.arange(c0 * ss, c0e * ss) + 0.5) / ss - 0.5 - centre  # sub-pixel centres, pixel units from the stamp centre
    rows = (np.arange(c1 * ss, c1e * ss) + 0.5) / ss - 0.5 - centre
    xs, ys = (cols * pixel_scale)[None, :], (rows * pixel_scale)[:, None]  # broadcast: one row, one column
    smooth = smooth_profile(p, xs, ys)
    total = smooth.sum()
    if not total > 0:
        raise PhysicsError(f"look-alike {p.kind} has no flux on the stamp (radius {p.radius} arcsec)", field="lookalike_radius")
    image = smooth * ((1.0 - p.clump_fraction) / total)
    if p.clumps > 0 and p.clump_fraction > 0:
        cx, cy, wt = clump_positions(p)
        sig = 0.7 * p.width
        knots = _clumps(xs, ys, cx, cy, wt, sig)
        ksum = knots.sum()
        if ksum > 0:
            image += knots * (p.clump_fraction / ksum)
    box = image.reshape(c1e - c1, ss, c0e - c0, ss).sum(axis=(1, 3))
    out = np.zeros((size, size))
    out[c1:c1e, c0:c0e] = box / box.sum()
    return out
