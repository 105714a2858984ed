"""The arc's own Poisson noise, from an effective gain derived from the coadd.

A DR10 coadd is sky-limited and its ``invvar`` is the sky noise. For a sky of B nanomaggies per
pixel, observed with g electrons per nanomaggy (summed over the exposures of the coadd),
var_sky = B / g (nanomaggy^2), hence

    g_eff = invvar * B            [electrons / nanomaggy], per pixel and band
    arc noise = (Poisson(g_eff * arc) - g_eff * arc) / g_eff      [nanomaggies]

with B = 10^((22.5 - mu_sky) / 2.5) * pixel_scale^2 from the nominal dark-sky surface
brightness mu_sky (mag/arcsec^2, config ``render.sky_mag_arcsec2``). Pixels without data
(invvar = 0) get no noise. The noise has zero mean: it only adds the arc's shot noise.

Where the arc is fainter than ``ARC_NOISE_MIN_SKY_FRACTION`` (3e-3) of the sky level B, no noise
is drawn: there its shot-noise variance, arc / B of the sky's, would raise the pixel's noise sigma
by < 0.15 %, and skipping those pixels (the PSF wings, ~77 % of the lit pixels) cuts the Poisson
draws ~4x (docs/PHYSICS.md). The draws are one ``rng.poisson`` call over the selected pixels in C order over
(band, row, col), so they are a pure function of the arc, invvar and the task's "noise" stream.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import ConfigError

ARC_NOISE_MIN_SKY_FRACTION = 3e-3  # no arc shot noise below this fraction of the sky level


def sky_nanomaggies_per_pixel(bands: str, sky_mag_arcsec2: Mapping[str, float], pixel_scale: float) -> np.ndarray:
    """Sky level B per band (nanomaggies per pixel) from surface brightness (AB mag/arcsec^2)."""
    missing = [b for b in bands if b not in sky_mag_arcsec2]
    if missing:
        raise ConfigError(f"render.sky_mag_arcsec2 lacks band(s) {missing}", field="render.sky_mag_arcsec2")
    mu = np.array([float(sky_mag_arcsec2[b]) for b in bands])
    return 10.0 ** ((22.5 - mu) / 2.5) * pixel_scale**2


def effective_gain(invvar: np.ndarray, sky_nmgy: np.ndarray) -> np.ndarray:
    """Electrons per nanomaggy [B, S, S]: invvar (1/nanomaggy^2) x sky (nanomaggies/pixel)."""
    return np.asarray(invvar, np.float64) * np.asarray(sky_nmgy, np.float64)[:, None, None]


def arc_poisson_noise(
    rng: np.random.Generator, arc: np.ndarray, invvar: np.ndarray, sky_nmgy: np.ndarray, min_sky_fraction: float = ARC_NOISE_MIN_SKY_FRACTION
) -> np.ndarray:
    """Zero-mean shot noise of the arc [B, S, S] (nanomaggies); 0 where invvar = 0, arc <= 0 or
    arc < ``min_sky_fraction`` x the band's sky level (nanomaggies per pixel).

    Draws one Poisson count per selected pixel, in C order over (band, row, col), so the draw
    sequence is a pure function of the arc and invvar (numpy reference of the compiled
    ``fastmetrics.noise_pixels`` + ``add_arc`` that ``inject`` uses).
    """
    gain = effective_gain(invvar, sky_nmgy)
    arc = np.asarray(arc, np.float64)
    lam = np.clip(arc, 0.0, None) * gain
    noise = np.zeros(lam.shape)
    floor = min_sky_fraction * np.asarray(sky_nmgy, np.float64)[:, None, None]
    live = (lam > 0) & (arc >= floor)
    if live.any():
        lam_live = lam[live]
        noise[live] = (rng.poisson(lam_live) - lam_live) / gain[live]
    return noise
