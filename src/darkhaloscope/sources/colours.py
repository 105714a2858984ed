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

import math
from functools import lru_cache

import numpy as np

from ..config import SourceConfig
from .sed import colours_at_redshift

_MAX_REDRAWS = 32


def mean_colours(cfg: SourceConfig, z: float | None = None) -> np.ndarray:
    """Mean (r - F814W, g - r, r - z) (AB mag): the star-forming SED at ``z`` (sources/sed.py) when
    ``colour_model`` is 'redshift' and z is known, else the config's fixed means. Read-only
    (memoised per (z, SED parameters): every try of every task at a bank redshift reuses it)."""
    if cfg.colour_model == "redshift" and z is not None and z > 0:
        return _sed_means(float(z), cfg.sed_uv_slope, cfg.sed_break, cfg.sed_red_slope)
    return _frozen((cfg.r_minus_i_mean, cfg.g_minus_r_mean, cfg.r_minus_z_mean))


@lru_cache(maxsize=4096)
def _sed_means(z: float, uv_slope: float, break_ratio: float, red_slope: float) -> np.ndarray:
    c = colours_at_redshift(z, uv_slope, break_ratio, red_slope)
    return _frozen((c["r_minus_i"], c["g_minus_r"], c["r_minus_z"]))


@lru_cache(maxsize=64)
def _frozen(values: tuple[float, ...]) -> np.ndarray:
    a = np.array(values)
    a.flags.writeable = False
    return a


@lru_cache(maxsize=64)
def _scatter_model(sigmas: tuple[float, float, float], rho: float) -> tuple[np.ndarray, np.ndarray]:
    """(sigma per colour, Cholesky factor of the (g-r, r-z) correlation; r-i independent), read-only."""
    chol = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, rho, np.sqrt(1.0 - rho * rho)]])
    chol.flags.writeable = False
    return _frozen(sigmas), chol


def draw_colours(rng: np.random.Generator, cfg: SourceConfig, z: float | None = None) -> dict[str, float]:
    """Draw ``r_minus_i`` (r - F814W), ``g_minus_r`` and ``r_minus_z`` colours (AB mag) for one
    source at redshift ``z``: :func:`mean_colours` plus the correlated, truncated scatter.

    Deterministic given ``rng``: the same generator state gives the same colours.
    """
    mean = mean_colours(cfg, z)
    sig, chol = _scatter_model((cfg.r_minus_i_sigma, cfg.g_minus_r_sigma, cfg.r_minus_z_sigma), cfg.colour_correlation)
    clip = cfg.colour_clip_sigma
    z = rng.standard_normal(3)
    for _ in range(_MAX_REDRAWS):
        u = chol @ z
        if abs(u[0]) <= clip and abs(u[1]) <= clip and abs(u[2]) <= clip:
            break
        z = rng.standard_normal(3)
    else:  # pragma: no cover - probability < 1e-60 at the default clip
        u = np.clip(chol @ z, -clip, clip)
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
    """Flux in nanomaggies -> AB magnitude (NaN for flux <= 0). One Python or numpy float takes
    a scalar path (the same numpy log10, without the array temporaries)."""
    if isinstance(flux, float | int) and not isinstance(flux, bool):
        f = float(flux)
        return 22.5 - 2.5 * np.log10(f) if f > 0 else math.nan
    flux = np.asarray(flux, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)), np.nan)
