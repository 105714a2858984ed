"""Colour model of the lensed sources.

COSMOS is single-band (F814W), so per-band magnitudes come from colours drawn per source from a
distribution in config section ``source``, never the same flux in every band. The means follow
the source's redshift (``colour_model: redshift``, a star-forming SED, sources/sed.py) or are
fixed (``gaussian``, observed-frame colours of star-forming galaxies at z ~ 1-2):

- ``r - F814W`` ~ N(r_minus_i_mean, r_minus_i_sigma)
- ``(g - r, r - z)`` ~ bivariate normal with correlation ``colour_correlation`` (dust and the
  Balmer break redden both colours together)

each truncated at ``colour_clip_sigma`` (redrawn, a bounded number of times) so that no task
gets an unphysical colour. All colours are AB magnitudes.
"""

from __future__ import annotations

import numpy as np

from ..config import SourceConfig
from .sed import colours_at_redshift

_MAX_REDRAWS = 32


def mean_colours(cfg: SourceConfig, z: float | None = None) -> np.ndarray:
    """Mean (r - F814W, g - r, r - z) (AB mag): the star-forming SED at ``z`` (sources/sed.py) when
    ``colour_model`` is 'redshift' and z is known, else the config's fixed means."""
    if cfg.colour_model == "redshift" and z is not None and z > 0:
        c = colours_at_redshift(float(z), cfg.sed_uv_slope, cfg.sed_break, cfg.sed_red_slope)
        return np.array([c["r_minus_i"], c["g_minus_r"], c["r_minus_z"]])
    return np.array([cfg.r_minus_i_mean, cfg.g_minus_r_mean, cfg.r_minus_z_mean])


def draw_colours(rng: np.random.Generator, cfg: SourceConfig, z: float | None = None) -> dict[str, float]:
    """Draw ``r_minus_i`` (r - F814W), ``g_minus_r`` and ``r_minus_z`` colours (AB mag) for one
    source at redshift ``z``: :func:`mean_colours` plus the correlated, truncated scatter.

    Deterministic given ``rng``: the same generator state gives the same colours.
    """
    mean = mean_colours(cfg, z)
    sig = np.array([cfg.r_minus_i_sigma, cfg.g_minus_r_sigma, cfg.r_minus_z_sigma])
    rho = cfg.colour_correlation
    # Cholesky factor of the (g-r, r-z) correlation matrix; r-i is independent
    chol = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, rho, np.sqrt(1.0 - rho * rho)]])
    z = rng.standard_normal(3)
    for _ in range(_MAX_REDRAWS):
        u = chol @ z
        if np.all(np.abs(u) <= cfg.colour_clip_sigma):
            break
        z = rng.standard_normal(3)
    else:  # pragma: no cover - probability < 1e-60 at the default clip
        u = np.clip(chol @ z, -cfg.colour_clip_sigma, cfg.colour_clip_sigma)
    c = mean + sig * u
    return {"r_minus_i": float(c[0]), "g_minus_r": float(c[1]), "r_minus_z": float(c[2])}


def band_magnitudes(mag_r: float, colours: dict[str, float], bands: str = "grz") -> dict[str, float]:
    """AB magnitude per band from the r magnitude and the colours (g = r + (g-r), z = r - (r-z),
    i = F814W = r - (r-i))."""
    mags = {"r": mag_r, "g": mag_r + colours["g_minus_r"], "z": mag_r - colours["r_minus_z"], "i": mag_r - colours["r_minus_i"]}
    return {b: float(mags[b]) for b in bands}


def source_band_magnitudes(mag_f814w: float, colours: dict[str, float], bands: str = "grz") -> dict[str, float]:
    """AB magnitude per band of a source whose F814W magnitude is ``mag_f814w`` (r = F814W + (r-i))."""
    return band_magnitudes(float(mag_f814w) + colours["r_minus_i"], colours, bands)


def mag_to_nanomaggies(mag: float | np.ndarray) -> float | np.ndarray:
    """AB magnitude -> flux in nanomaggies (22.5 - 2.5 log10 f)."""
    return 10.0 ** ((22.5 - np.asarray(mag, dtype=float)) / 2.5)


def nanomaggies_to_mag(flux: float | np.ndarray) -> float | np.ndarray:
    """Flux in nanomaggies -> AB magnitude (NaN for flux <= 0)."""
    flux = np.asarray(flux, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)), np.nan)
