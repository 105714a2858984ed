"""Spectroscopy for part of the synthetic sky's LRGs: ``z_spec`` and ``sigma_v`` columns.

DR10 LRGs have photo-z for all and, where DESI (or SDSS/BOSS) observed them, a spectroscopic
redshift and velocity dispersion. The synthetic sky mimics that: a fixed share
(``SPEC_FRACTION``) of the objects with a photo-z, chosen by a hash of (seed, brickid, objid) so
any brick layout gives the same choice, get

- ``z_spec`` = z_phot + N(0, 0.02 (1 + z)): the photo-z scatter of DESI LRGs (Zhou et al. 2021,
  MNRAS 501, 3309: sigma_NMAD ~ 0.02 (1 + z)) read the other way round;
- ``sigma_v`` (km/s) from the Faber-Jackson relation of config section ``lens`` on the object's
  extinction-corrected r magnitude at z_spec, with its scatter and a 10 % measurement error
  (SDSS/BOSS dispersions: Thomas et al. 2013).

Others get NaN in both (no spectrum). Pure function of (config, brick catalog).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..config import Config
from ..physics.population import faber_jackson_log_sigma

SPEC_FRACTION = 0.4  # share of the photo-z objects with a synthetic spectrum
SIGMA_V_ERROR = 0.10  # fractional measurement error of a spectroscopic sigma_v


def _object_rng(seed: int, brickid: int, objid: int) -> np.random.Generator:
    h = hashlib.blake2b(f"synth-spec|{seed}|{brickid}|{objid}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(h, "little"))


def add_spectroscopy(cfg: Config, cat: dict) -> dict:
    """Add ``z_spec`` and ``sigma_v`` (float32, NaN without a spectrum) to a synthetic Tractor catalog in place."""
    zp = np.asarray(cat.get("z_phot_median", []), np.float64)
    n = len(zp)
    z_spec = np.full(n, np.nan, np.float32)
    sigma = np.full(n, np.nan, np.float32)
    for k in np.flatnonzero(np.isfinite(zp)):
        rng = _object_rng(cfg.seed, int(cat["brickid"][k]), int(cat["objid"][k]))
        u, dz, ds, de = rng.random(), rng.standard_normal(), rng.standard_normal(), rng.standard_normal()
        flux = float(cat["flux_r"][k]) / float(cat.get("mw_transmission_r", np.ones(n))[k])
        if u >= SPEC_FRACTION or not flux > 0:
            continue
        z = max(0.01, float(zp[k]) + 0.02 * (1.0 + zp[k]) * dz)
        log_sigma = faber_jackson_log_sigma(22.5 - 2.5 * np.log10(flux), z, cfg.lens) + cfg.lens.fj_scatter_dex * ds
        z_spec[k] = z
        sigma[k] = 10.0**log_sigma * (1.0 + SIGMA_V_ERROR * de)
    cat["z_spec"], cat["sigma_v"] = z_spec, sigma
    return cat
