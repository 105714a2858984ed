"""Shortcut diagnostics of a lens finder: the seeds' hand investigation (failure analysis
section 3) as functions, each returning numbers and (with ``out_dir``) writing a figure.

Every function that needs a model takes a *scorer*::

    scorer(images: float32 [N, B, S, S] nanomaggies, metadata: dict[str, float array [N]]) -> p [N]

so it runs with a trained model (``ml.predict.score_stamps``) or a hand-made function in tests.
Metadata must come from the stamps' own rows / catalogs (PSF FWHM, depth); the seeds ran their
ring test and anchor recall with metadata set to zero. :func:`check_metadata` refuses zeros.

Geometry follows the seeds: stamp centre at pixel (S/2, S/2) (32, 32 for 64x64), radii in
pixels; "central r_max" is the maximum of the r band in the central 8x8 box [28:36, 28:36];
regions: centre r < 8, inner ring 8 <= r < 16, outer ring 16 <= r < 24 pixels; the outer
annulus of the normalisation is ``ml.normalize.outer_mask`` (r > S/4).

The functions live in :mod:`.diagnostics_base` (record, scorer call, geometry),
:mod:`.diagnostics_scores` (3.1, 3.7), :mod:`.diagnostics_probes` (3.2, arc suppression) and
:mod:`.diagnostics_pixels` (3.3-3.6); this module re-exports them as one namespace.
"""

from __future__ import annotations

from .diagnostics_base import (
    PIXSCALE,
    Diagnostic,
    Scorer,
    _as_images,
    _score,
    band_index,
    central_max,
    check_metadata,
    radius_map,
)
from .diagnostics_pixels import (
    REGIONS,
    central_brightness,
    normalisation_parameters,
    outer_background,
    region_flux,
)
from .diagnostics_probes import (
    add_ring,
    arc_suppression_test,
    replace_arc_pixels,
    ring_test,
    subtract_arcs,
)
from .diagnostics_scores import score_correlations, score_vs_arc_snr

__all__ = [
    "PIXSCALE", "REGIONS", "Diagnostic", "Scorer", "_as_images", "_score", "add_ring", "arc_suppression_test",
    "band_index", "central_brightness", "central_max", "check_metadata", "normalisation_parameters",
    "outer_background", "radius_map", "region_flux", "replace_arc_pixels", "ring_test", "score_correlations",
    "score_vs_arc_snr", "subtract_arcs",
]
