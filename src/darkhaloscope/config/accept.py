"""Config section of the acceptance of an injection at generation time (physics/acceptance.py).

``inject`` redraws the source (template, position, orientation, colours), never the host or the
lens, until every enabled criterion passes or ``max_tries`` is reached; a task that never passes
keeps its row with ``accepted = false``. A criterion set to 0 is off (its value is still recorded).
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields import param


@dataclass(frozen=True)
class AcceptConfig:
    """Detectability criteria of an injection, with their literature defaults."""

    max_tries: int = param(8, "Source draws per task before the row is kept with accepted = false.", "count", ge=1, le=1000)
    min_magnification: float = param(3.0, "Total magnification of the unconvolved lensed source (flux in the stamp / source flux) at least this (LensPop, Collett 2015 sect. 2.3: mu_tot >= 3). 0 = off.", "", ge=0.0, le=100.0)
    min_snr_region: float = param(10.0, "max(arc_snr_region_g, arc_snr_region_r) at least this (Holloway et al. 2023 region SNR as slsim's Lens.snr: 4-connected pixels with SNR > 1, variance sky + host light + arc). 0 = off.", "", ge=0.0, le=1000.0)
    min_resolvability: float = param(1.0, "theta_E / sqrt(r_s^2 + (FWHM_r/2)^2) at least this: the arcs are resolved from the lens (LensPop, Collett 2015: theta_E^2 > r_s^2 + (s/2)^2). 0 = off.", "", ge=0.0, le=10.0)
    min_contrast: float = param(0.0, "Arc-to-host flux ratio over the best g-band SNR region at least this (0 = off; recorded either way).", "", ge=0.0, le=100.0)
