"""The lens population from the host: redshift, velocity dispersion, Einstein radius, mass shape.

Pure functions on task values (docs/PHYSICS.md, "Population"):

- ``lens_redshift``: the task's spectroscopic ``z_spec`` when present, else its photo-z ``z_phot``.
- ``host_sigma_v``: the task's spectroscopic ``sigma_v`` (km/s) when present, else the
  Faber-Jackson relation log10 sigma = a + b (M_r + 21) (L ~ sigma^4, Faber & Jackson 1976; slope
  and 0.08 dex scatter of SDSS early types, Bernardi et al. 2003, AJ 125, 1849) on the host's
  rest-frame M_r = r - DM(z) - K_r(z) (astropy cosmology distance modulus; a linear elliptical
  K-correction, Poggianti 1997). Clipped to [sigma_v_min, sigma_v_max].
- ``theta_e_sis``: theta_E = 4 pi (sigma/c)^2 D_ls / D_s (arcsec), angular-diameter distances
  from the configured astropy cosmology: the SIS Einstein radius, used as lenstronomy's SIE
  ``theta_E`` (defined on the intermediate axis, so the SIE keeps the SIS's mass inside it); the
  weak axis-ratio dependence of the sigma-theta_E relation (Kormann et al. 1994) is ignored.
- ``tractor_to_pixel_ellipticity``: a Tractor ``shape_e1, shape_e2`` (sky frame: theta =
  atan2(e2, e1)/2 is the major axis' position angle East of North, tractor/ellipses.py
  ``EllipseE.getRaDecBasis``) -> (e1, e2) in the stamp's pixel frame (lenstronomy x = +column,
  y = +row), for DR10's north-up, east-left (CD1_1 < 0) bricks. The major axis points along
  (dRA, dDec) = (sin theta, cos theta); with x = -RA (east left), y = +Dec it lies at
  phi = theta + 90 deg from +x, so e_pixel = -e_tractor (both components).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from ..config import LensConfig
from .params import finite_or_none

C_KM_S = 299792.458  # speed of light, km/s
RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0


@lru_cache(maxsize=8)
def cosmology(name: str):
    """The astropy cosmology realisation ``name`` (Planck18, Planck15, WMAP9)."""
    from astropy import cosmology as cosmo

    return getattr(cosmo, name)


def lens_redshift(task: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """(lens_z, "spec" | "phot") from the task, or (None, None) when it has neither (> 0)."""
    for key, kind in (("z_spec", "spec"), ("z_phot", "phot")):
        z = finite_or_none(task.get(key))
        if z is not None and z > 0:
            return z, kind
    return None, None


Z_TABLE_MAX, Z_TABLE_STEP = 12.0, 5e-4  # redshift grid of the comoving-distance table


@lru_cache(maxsize=8)
def _comoving_table(name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(z grid, transverse comoving distance D_M in Mpc) from astropy, once per cosmology; None
    for a curved cosmology (the flat-space distance relations below would not hold). Linear
    interpolation on this grid is within 5e-7 (relative) of astropy (test vs a hand computation)."""
    c = cosmology(name)
    if abs(float(c.Ok0)) > 0:
        return None
    z = np.arange(0.0, Z_TABLE_MAX + Z_TABLE_STEP / 2, Z_TABLE_STEP)
    return z, np.asarray(c.comoving_transverse_distance(z).value, np.float64)


@lru_cache(maxsize=8192)
def _comoving(z: float, name: str) -> float | None:
    """Tabulated D_M (Mpc) at ``z``, memoised: a task's lens redshift and the bank's source
    redshifts recur on every try."""
    table = _comoving_table(name)
    if table is None or not 0.0 <= z <= Z_TABLE_MAX:
        return None
    return float(np.interp(z, table[0], table[1]))


def _distance_modulus(z: float, name: str) -> float:
    d_m = _comoving(z, name)
    if d_m is None:
        return float(cosmology(name).distmod(z).value)
    return 5.0 * math.log10((1.0 + z) * d_m * 1e5)  # D_L in units of 10 pc


def faber_jackson_log_sigma(mag_r: float, z: float, cfg: LensConfig) -> float:
    """Mean log10 sigma_v (km/s) of a host of apparent r magnitude ``mag_r`` (AB) at redshift ``z``."""
    abs_r = mag_r - _distance_modulus(float(z), cfg.cosmology) - cfg.kcorr_r_per_z * z
    return cfg.fj_log_sigma_at_m21 + cfg.fj_slope * (abs_r + 21.0)


def host_sigma_v(task: Mapping[str, Any], lens_z: float, cfg: LensConfig, rng: np.random.Generator) -> tuple[float | None, str | None]:
    """(sigma_v km/s, "spec" | "fj") of the host; one normal draw from ``rng`` always (stable stream).

    The host's r flux (nanomaggies) is the task's ``flux_r`` divided by ``mw_transmission_r`` when
    the task has it (DR10 fluxes are not extinction-corrected). (None, None) without flux_r > 0.
    """
    u = float(rng.standard_normal())
    spec = finite_or_none(task.get("sigma_v"))
    if spec is not None and spec > 0:
        return spec, "spec"
    flux = finite_or_none(task.get("flux_r"))
    if flux is None or flux <= 0:
        return None, None
    trans = finite_or_none(task.get("mw_transmission_r"))
    if trans is not None and trans > 0:
        flux /= trans
    mag_r = 22.5 - 2.5 * math.log10(flux)
    log_sigma = faber_jackson_log_sigma(mag_r, lens_z, cfg) + cfg.fj_scatter_dex * u
    return float(min(max(10.0**log_sigma, cfg.sigma_v_min), cfg.sigma_v_max)), "fj"


def distance_ratio(z_lens: float, z_source: float, name: str) -> float:
    """D_ls / D_s (angular-diameter distances) for ``z_source > z_lens``; 0 otherwise. In a flat
    universe D_ls / D_s = (D_M(z_s) - D_M(z_l)) / D_M(z_s) (tabulated D_M); else astropy directly."""
    if not z_source > z_lens:
        return 0.0
    d_l, d_s = _comoving(z_lens, name), _comoving(z_source, name)
    if d_l is not None and d_s is not None:
        return (d_s - d_l) / d_s
    c = cosmology(name)
    d_s = c.angular_diameter_distance(z_source).value
    d_ls = c.angular_diameter_distance(z_lens, z_source).value
    return float(d_ls / d_s)


def theta_e_sis(sigma_v: float, z_lens: float, z_source: float, cosmology_name: str) -> float:
    """Einstein radius (arcsec) of a singular isothermal sphere of dispersion ``sigma_v`` (km/s)."""
    ratio = distance_ratio(float(z_lens), float(z_source), cosmology_name)
    return 4.0 * math.pi * (sigma_v / C_KM_S) ** 2 * ratio * RAD_TO_ARCSEC


def tractor_to_pixel_ellipticity(e1: float, e2: float) -> tuple[float, float]:
    """Tractor sky-frame (e1, e2) -> pixel-frame (e1, e2) of a north-up, east-left image (see module doc)."""
    return -float(e1), -float(e2)


def mass_ellipticity(task: Mapping[str, Any], cfg: LensConfig, rng: np.random.Generator) -> tuple[float, float, str]:
    """SIE (e1, e2) in the pixel frame and where it came from ("light" | "random").

    Always five draws from ``rng`` (stable stream). ``light``: the host's Tractor shape turned
    into the pixel frame, its angle scattered by N(0, angle_scatter_deg) and each component by
    N(0, ellipticity_scatter), |e| capped at ellipticity_max; a host without a shape (PSF/REX
    or missing columns) falls back to ``random``.
    """
    e_rand = rng.uniform(0.0, cfg.ellipticity_max)
    phi_rand = rng.uniform(0.0, np.pi)
    d_angle = math.radians(cfg.angle_scatter_deg) * float(rng.standard_normal())
    d1, d2 = cfg.ellipticity_scatter * rng.standard_normal(2)
    s1, s2 = finite_or_none(task.get("shape_e1")), finite_or_none(task.get("shape_e2"))
    if cfg.ellipticity_policy == "light" and s1 is not None and s2 is not None:
        p1, p2 = tractor_to_pixel_ellipticity(s1, s2)
        e = math.hypot(p1, p2)
        phi = 0.5 * math.atan2(p2, p1) + d_angle
        e1, e2 = e * math.cos(2 * phi) + d1, e * math.sin(2 * phi) + d2
        e_new = math.hypot(e1, e2)
        if e_new > cfg.ellipticity_max:
            e1, e2 = e1 * cfg.ellipticity_max / e_new, e2 * cfg.ellipticity_max / e_new
        return float(e1), float(e2), "light"
    return float(e_rand * math.cos(2 * phi_rand)), float(e_rand * math.sin(2 * phi_rand)), "random"
