"""Lens and source-position parameters of one injection, drawn from a task's random stream.

Conventions (DESIGN 4, docs/PHYSICS.md): angles in arcsec, positions in arcsec from the stamp
centre with lenstronomy's axes x = +column, y = +row. Every drawn value is rounded to float32
before use, because the stamp row stores float32: re-rendering from the row then reproduces the
stored arc bit for bit.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import LensConfig
from ..errors import PhysicsError

_F32 = struct.Struct("<f")


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, NaN, inf and non-numbers): a catalogue value
    that may be missing."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def f32(value: float) -> float:
    """``value`` rounded to the nearest float32, as a Python float (what a float32 column keeps)."""
    try:  # struct rounds to nearest-even as numpy's cast does, ~5x faster for one scalar
        return _F32.unpack(_F32.pack(value))[0]
    except (OverflowError, struct.error, TypeError):  # beyond float32 range (numpy: +-inf) or exotic input
        return float(np.float32(value))


@dataclass(frozen=True)
class LensParams:
    """SIE + external shear (lenstronomy ``["SIE", "SHEAR"]``).

    theta_e: Einstein radius (arcsec); e1, e2: SIE eccentricity components, |e| = (1-q)/(1+q);
    g1, g2: external shear; x, y: lens centre (arcsec from the stamp centre). The shear is
    anchored at the lens centre (``ra_0, dec_0 = x, y``) so it adds no constant deflection.
    """

    theta_e: float
    e1: float = 0.0
    e2: float = 0.0
    g1: float = 0.0
    g2: float = 0.0
    x: float = 0.0
    y: float = 0.0

    def lenstronomy_kwargs(self) -> list[dict]:
        """Models as data: the kwargs of ``LensModel(["SIE", "SHEAR"])``."""
        return [
            {"theta_E": self.theta_e, "e1": self.e1, "e2": self.e2, "center_x": self.x, "center_y": self.y},
            {"gamma1": self.g1, "gamma2": self.g2, "ra_0": self.x, "dec_0": self.y},
        ]


def lrg_offset_arcsec(bx: float | None, by: float | None, size: int, pixel_scale: float) -> tuple[float, float]:
    """Position (arcsec from the stamp centre) of the LRG at brick pixel (bx, by), 0-based.

    The cutout box starts at ``ceil(b - size/2)`` (astropy Cutout2D, survey/brick_reader.py), so
    the LRG sits within half a pixel of the stamp centre (pixel index (size-1)/2). Missing or
    non-finite (bx, by) give the stamp centre.
    """
    out = []
    for b in (bx, by):
        if b is None or not math.isfinite(float(b)):
            out.append(0.0)
            continue
        pix = float(b) - math.ceil(float(b) - size / 2.0)
        out.append((pix - (size - 1) / 2.0) * pixel_scale)
    return out[0], out[1]


def cut_curve(lens: LensParams, n: int = 720) -> tuple[np.ndarray, np.ndarray]:
    """The SIE's pseudo-caustic (cut) relative to the lens centre: (angle, radius) in (rad, arcsec).

    The SIE deflection is a direction-dependent constant alpha(phi), so the image of the
    neighbourhood of the singular centre, the cut, is the curve -alpha(phi); the shear
    deflection vanishes there. Sources inside it are
    multiply imaged (naked-cusp regions of very flat lenses outside the cut are ignored).
    """
    from .render import SIE_PROFILE

    phi = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    # An isothermal deflection depends on direction only, so any radius gives the limit r -> 0
    # (theta_E keeps lenstronomy's 1e-10 core negligible).
    r = max(lens.theta_e, 1e-6)
    ax, ay = SIE_PROFILE.derivatives(r * np.cos(phi), r * np.sin(phi), lens.theta_e, lens.e1, lens.e2, 0.0, 0.0)
    ang = np.arctan2(-ay, -ax)
    rad = np.hypot(ax, ay)
    order = np.argsort(ang)
    return ang[order], rad[order]


def draw_source_position(rng: np.random.Generator, lens: LensParams, cfg: LensConfig) -> tuple[float, float]:
    """Source centre (arcsec from the stamp centre), float32-rounded.

    ``theta_fraction``: area-uniform within ``source_radius_fraction * theta_E`` of the lens
    centre. ``caustic``: area-uniform inside the SIE cut curve (the multiply-imaged region), by
    rejection from its bounding box (at most 200 tries, then the lens centre).
    """
    if cfg.source_position == "theta_fraction":
        r = cfg.source_radius_fraction * lens.theta_e * np.sqrt(rng.uniform())
        a = rng.uniform(0.0, 2 * np.pi)
        return f32(lens.x + r * np.cos(a)), f32(lens.y + r * np.sin(a))
    if cfg.source_position == "caustic":
        ang, rad = cut_curve(lens)
        rmax = float(rad.max())
        for _ in range(200):
            px, py = rng.uniform(-rmax, rmax, size=2)
            limit = np.interp(np.arctan2(py, px), ang, rad, period=2 * np.pi)
            if np.hypot(px, py) < limit:
                return f32(lens.x + px), f32(lens.y + py)
        return f32(lens.x), f32(lens.y)
    raise PhysicsError(f"unknown lens.source_position {cfg.source_position!r}", field="lens.source_position")
