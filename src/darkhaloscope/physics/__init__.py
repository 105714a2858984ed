"""Injection physics: lens parameters, SIE + shear ray-shooting (lenstronomy deflections,
INTERPOL sampling), Moffat PSF, arc shot noise and arc metrics, as pure functions on numpy
arrays. ``darkhaloscope.inject`` puts them together; docs/PHYSICS.md states the conventions."""

from .fastrender import ray_levels, render_unit_fast
from .metrics import (
    arc_snr,
    arc_snr_region,
    arc_snr_sum,
    good_pixels,
    half_light_radius,
    snr_metrics,
)
from .noise import arc_poisson_noise, effective_gain, sky_nanomaggies_per_pixel
from .params import LensParams, draw_source_position, lrg_offset_arcsec
from .psf import convolve_bands, moffat_kernel
from .render import SourcePlacement, arc_mask, ray_shoot, render_unit

__all__ = [
    "LensParams", "SourcePlacement", "arc_mask", "arc_poisson_noise", "arc_snr", "arc_snr_region", "arc_snr_sum",
    "convolve_bands", "draw_source_position", "effective_gain", "good_pixels", "half_light_radius",
    "lrg_offset_arcsec", "moffat_kernel", "ray_levels", "ray_shoot", "render_unit", "render_unit_fast", "sky_nanomaggies_per_pixel", "snr_metrics",
]
