"""physics/lookalikes.py against its first, plain numpy form (kept here as the reference): the
in-place, broadcast and windowed evaluation must give the same flux per pixel bit for bit, for
every kind, with and without clumps."""

from __future__ import annotations

import numpy as np
import pytest

from darkhaloscope.physics import lookalikes as la
from darkhaloscope.physics.lookalikes import KINDS, Lookalike, clump_positions, lookalike_unit


def _ref_wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def _ref_window(phi, centre, span):
    if span >= 2 * np.pi:
        return np.ones_like(phi)
    d = np.maximum(np.abs(_ref_wrap(phi - centre)) - span / 2, 0.0)
    return np.exp(-0.5 * (d / la._EDGE_RAD) ** 2)


def _ref_smooth(p, xs, ys):
    pa = np.deg2rad(p.pa_deg)
    dx, dy = xs - p.x, ys - p.y
    u = dx * np.cos(pa) + dy * np.sin(pa)
    v = (-dx * np.sin(pa) + dy * np.cos(pa)) / p.q
    r, phi = np.hypot(u, v), np.arctan2(v, u)
    w = p.width
    if p.kind in ("ring", "partial_ring"):
        prof = np.exp(-0.5 * ((r - p.radius) / w) ** 2)
        return prof * _ref_window(phi, np.deg2rad(p.phase_deg), np.deg2rad(p.span_deg)) if p.kind == "partial_ring" else prof
    if p.kind == "spiral":
        r_in = la._SPIRAL_INNER * p.radius
        env = np.where(r < r_in, np.exp(-0.5 * ((r - r_in) / w) ** 2), 1.0)
        env = env * np.where(r > p.radius, np.exp(-0.5 * ((r - p.radius) / w) ** 2), 1.0)
        sp = np.sin(np.deg2rad(p.pitch_deg))

        def off(k):
            phi_arm = np.deg2rad(p.phase_deg) + 2 * np.pi * k / p.arms
            return _ref_wrap(phi - phi_arm - np.log(np.maximum(r, 1e-6) / r_in) / np.tan(np.deg2rad(p.pitch_deg)))

        return env * sum(np.exp(-0.5 * (r * off(k) * sp / w) ** 2) for k in range(p.arms))
    prof = np.zeros_like(r)
    for k in range(p.arms):
        rk = p.radius * la._SHELL_STEP**k
        edge = np.where(r <= rk, np.exp(-(rk - r) / (3.0 * w)), np.exp(-0.5 * ((r - rk) / w) ** 2))
        prof += edge * _ref_window(phi, np.deg2rad(p.phase_deg) + np.pi * k, np.deg2rad(p.span_deg))
    return prof


def _ref_unit(p, size, pix, ss):
    reach = (p.radius + 7.0 * p.width) / pix
    centre = (size - 1) / 2.0
    c0, c1 = (max(0, int(np.floor(v / pix + centre - reach))) for v in (p.x, p.y))
    c0e, c1e = (min(size, int(np.ceil(v / pix + centre + reach)) + 1) for v in (p.x, p.y))
    cols = (np.arange(c0 * ss, c0e * ss) + 0.5) / ss - 0.5 - centre
    rows = (np.arange(c1 * ss, c1e * ss) + 0.5) / ss - 0.5 - centre
    ys, xs = np.meshgrid(rows * pix, cols * pix, indexing="ij")
    smooth = _ref_smooth(p, xs, ys)
    image = smooth * ((1.0 - p.clump_fraction) / smooth.sum())
    if p.clumps > 0 and p.clump_fraction > 0:
        cx, cy, wt = clump_positions(p)
        sig = 0.7 * p.width
        knots = np.zeros_like(image)
        for x0, y0, w0 in zip(cx, cy, wt, strict=True):
            knots += w0 * np.exp(-0.5 * ((xs - x0) ** 2 + (ys - y0) ** 2) / sig**2)
        if knots.sum() > 0:
            image += knots * (p.clump_fraction / knots.sum())
    box = image.reshape(c1e - c1, ss, c0e - c0, ss).sum(axis=(1, 3))
    out = np.zeros((size, size))
    out[c1:c1e, c0:c0e] = box / box.sum()
    return out


def _draw(rng, kind):
    return Lookalike(kind, float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), float(rng.uniform(0.5, 3.5)), float(rng.uniform(0.06, 0.3)),
                     float(rng.uniform(0.5, 1.0)), float(rng.uniform(0, 180)), float(rng.uniform(60, 240)), float(rng.uniform(0, 360)),
                     float(rng.uniform(10, 30)), int(rng.integers(1, 4)), int(rng.integers(0, 9)), float(rng.uniform(0, 0.6)), int(rng.integers(0, 2**62)))


@pytest.mark.parametrize("kind", KINDS)
def test_lookalike_unit_is_bitwise_its_plain_numpy_form(kind):
    rng = np.random.default_rng(list(KINDS).index(kind))
    for _ in range(40):
        p = _draw(rng, kind)
        assert np.array_equal(lookalike_unit(p, 64, 0.262, 4), _ref_unit(p, 64, 0.262, 4)), p
