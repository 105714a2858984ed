"""Config section of the non-lensing roles painted on hosts: ``unlensed`` and ``ring`` (look-alikes).

Sizes are in units of the Einstein radius the task's injection would have had, so the negatives
cover the same radii as the arcs (Canameras et al. 2020, A&A 644, A163, sec. 3.2: negatives must
look like the positives in everything but lensing); brightness is matched per task to that
injection's arc (roles.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields import param

LOOKALIKE_KINDS = ("ring", "partial_ring", "spiral", "shells")


@dataclass(frozen=True)
class NegativesConfig:
    """Unlensed companions and procedural non-lensing look-alikes (physics/unlensed.py, physics/lookalikes.py)."""

    unlensed_sep_min: float = param(1.0, "Smallest distance of an unlensed source from the host centre.", "theta_E", gt=0.0, le=10.0)
    unlensed_sep_max: float = param(3.0, "Largest distance of an unlensed source from the host centre.", "theta_E", gt=0.0, le=10.0)
    kind_weights: dict = param({"ring": 0.3, "partial_ring": 0.3, "spiral": 0.2, "shells": 0.2},
                               "Relative frequency of each look-alike kind (ring, partial_ring, spiral, shells) among 'ring' rows.", "weight")
    radius_min: float = param(0.8, "Smallest look-alike radius (ring radius, spiral outer radius, outer shell).", "theta_E", gt=0.0, le=10.0)
    radius_max: float = param(1.6, "Largest look-alike radius.", "theta_E", gt=0.0, le=10.0)
    width_min: float = param(0.06, "Smallest Gaussian sigma of a ring / arm / shell cross-section.", "arcsec", gt=0.0, le=5.0)
    width_max: float = param(0.30, "Largest Gaussian sigma of a cross-section.", "arcsec", gt=0.0, le=5.0)
    q_min: float = param(0.5, "Smallest axis ratio of a look-alike (a tilted disc's ring).", "", gt=0.05, le=1.0)
    span_min: float = param(60.0, "Smallest azimuthal extent of a partial ring or a shell.", "deg", gt=0.0, le=360.0)
    span_max: float = param(240.0, "Largest azimuthal extent of a partial ring or a shell.", "deg", gt=0.0, le=360.0)
    pitch_min: float = param(10.0, "Smallest pitch angle of a logarithmic spiral arm.", "deg", gt=0.0, lt=90.0)
    pitch_max: float = param(30.0, "Largest pitch angle of a spiral arm.", "deg", gt=0.0, lt=90.0)
    clumps_max: int = param(8, "Most star-forming clumps on a ring or arm (0 = smooth only).", "count", ge=0, le=64)
    clump_fraction_max: float = param(0.6, "Largest share of a look-alike's flux in its clumps.", "fraction", ge=0.0, le=1.0)
    host_colour_scatter: float = param(0.15, "Gaussian scatter added to the host's g-r and r-z for a look-alike's colours.", "mag", ge=0.0, le=2.0)
    supersampling: int = param(4, "Sub-pixels per stamp pixel per axis when drawing a look-alike's surface brightness.", "count", ge=1, le=16)
