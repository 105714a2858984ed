"""Unlensed companions: a bank source beside the host, not lensed (the ``unlensed`` role).

A blue galaxy near an LRG is not a lens: the finder must see the lensed geometry (arcs
tangential to the host, a counter-image), not the colour or the presence of a second object
(Canameras et al. 2020, A&A 644, A163, sec. 3.2; Jacobs et al. 2019, ApJS 243, 17, sec. 3).
The source is drawn through the same renderer as an arc with the deflection switched off
(theta_E = 0: every ray lands where it starts, the template's own flux is kept, the flux
conservation case of docs/PHYSICS.md), then through the same PSF and noise.
"""

from __future__ import annotations

import numpy as np

from .fastrender import render_unit_fast
from .params import LensParams, f32
from .render import SourcePlacement


def draw_companion_position(
    rng: np.random.Generator, theta_e: float, centre: tuple[float, float], sep_min: float, sep_max: float, r_max: float
) -> tuple[float, float, float]:
    """(x, y, separation) arcsec, float32-rounded: uniform in angle, separation uniform in
    [sep_min, sep_max] x theta_e (theta_E units), capped at ``r_max`` arcsec (the radius arcs can
    reach, so the report's arc-free outer annulus stays arc-free for every role)."""
    sep = min(float(rng.uniform(sep_min, sep_max)) * float(theta_e), float(r_max))
    a = rng.uniform(0.0, 2 * np.pi)
    return f32(centre[0] + sep * np.cos(a)), f32(centre[1] + sep * np.sin(a)), f32(sep)


def render_unlensed_unit(
    template: np.ndarray, src: SourcePlacement, size: int, pixel_scale: float, supersampling: int,
    faint_supersampling: int = 0, core_fraction: float = 0.0, ray_spacing: float = 0.0,
) -> np.ndarray:
    """The unit-flux template at ``src``, not lensed: float64 [size, size] flux per pixel
    (sums to the template's flux inside the stamp)."""
    no_lens = LensParams(theta_e=0.0, e1=0.0, e2=0.0, g1=0.0, g2=0.0, x=0.0, y=0.0)
    return render_unit_fast(
        template, no_lens, src, size, pixel_scale, supersampling,
        faint_supersampling=faint_supersampling, core_fraction=core_fraction, ray_spacing=ray_spacing,
    )
