"""Colour model of the lensed sources.

COSMOS is single-band (F814W), so per-band magnitudes come from colours drawn per task from a
distribution in config (observed-frame colours of star-forming galaxies at z ~ 1-2), never the
same flux in every band.
"""

from __future__ import annotations

import numpy as np

from ..config import SourceConfig


def draw_colours(rng: np.random.Generator, cfg: SourceConfig) -> dict[str, float]:
    """Draw ``r_minus_i`` (r - F814W), ``g_minus_r`` and ``r_minus_z`` colours (AB mag) for one source."""
    return {
        "r_minus_i": float(rng.normal(cfg.i_minus_r_mean, cfg.i_minus_r_sigma)),
        "g_minus_r": float(rng.normal(cfg.g_minus_r_mean, cfg.g_minus_r_sigma)),
        "r_minus_z": float(rng.normal(cfg.r_minus_z_mean, cfg.r_minus_z_sigma)),
    }


def band_magnitudes(mag_r: float, colours: dict[str, float], bands: str = "grz") -> dict[str, float]:
    """AB magnitude per band from the r magnitude and the colours (g = r + (g-r), z = r - (r-z))."""
    mags = {"r": mag_r, "g": mag_r + colours["g_minus_r"], "z": mag_r - colours["r_minus_z"], "i": mag_r - colours["r_minus_i"]}
    return {b: float(mags[b]) for b in bands}


def mag_to_nanomaggies(mag: float | np.ndarray) -> float | np.ndarray:
    """AB magnitude -> flux in nanomaggies (22.5 - 2.5 log10 f)."""
    return 10.0 ** ((22.5 - np.asarray(mag, dtype=float)) / 2.5)


def nanomaggies_to_mag(flux: float | np.ndarray) -> float | np.ndarray:
    """Flux in nanomaggies -> AB magnitude (NaN for flux <= 0)."""
    flux = np.asarray(flux, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)), np.nan)
