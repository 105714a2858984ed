"""DESI LRG target selection (Zhou et al. 2023, AJ 165, 58; DR9/DR10 south cuts), cut values from config.

All magnitudes are AB and corrected for Galactic extinction (flux / mw_transmission).

Quality (desitarget ``notinLRG_mask``):
    flux_ivar_r, flux_ivar_z, flux_ivar_w1 > 0; flux_r, flux_z, flux_w1, fiberflux_z > 0;
    nobs_g, nobs_r, nobs_z > 0 (``require_nobs``); no MASKBITS in ``reject_maskbits`` (1, 12, 13);
    Gaia G == 0 (absent) or G > ``gaia_g_min`` (18); z fibre-total magnitude > ``zfibertot_min``
    (17.5; only where the catalog has FIBERTOTFLUX_Z).
Colours (``isLRG_colors``, south):
    z - W1 > stellar_slope (0.8) * (r - z) + stellar_intercept (-0.6)          non-stellar
    zfiber < zfiber_max (21.6)                                                   faint limit
    g - W1 > gw1_min (2.9) OR r - W1 > rw1_min (1.8)                             low-z removal
    (r - W1 > sliding_slope (1.8) * (W1 - sliding_w1_pivot (17.14))
        AND r - W1 > W1 - sliding_w1_offset (16.33)) OR r - W1 > rw1_override (3.3)
"""

from __future__ import annotations

import numpy as np

from ..config import LrgCutsConfig


def _mag(flux: np.ndarray) -> np.ndarray:
    return 22.5 - 2.5 * np.log10(np.clip(np.asarray(flux, float), 1e-7, None))


def lrg_mask(cols: dict, cuts: LrgCutsConfig) -> np.ndarray:
    """Boolean mask of the rows of canonical catalog columns (see catalogs.py) that are LRGs."""
    f = {b: np.asarray(cols[f"flux_{b}"], float) / np.asarray(cols[f"mw_transmission_{b}"], float) for b in ("g", "r", "z", "w1")}
    zfib = np.asarray(cols["fiberflux_z"], float) / np.asarray(cols["mw_transmission_z"], float)
    ok = (np.asarray(cols["flux_ivar_r"]) > 0) & (f["r"] > 0)
    ok &= (np.asarray(cols["flux_ivar_z"]) > 0) & (f["z"] > 0) & (zfib > 0)
    ok &= (np.asarray(cols["flux_ivar_w1"]) > 0) & (f["w1"] > 0)
    if cuts.require_nobs:
        ok &= (np.asarray(cols["nobs_g"]) > 0) & (np.asarray(cols["nobs_r"]) > 0) & (np.asarray(cols["nobs_z"]) > 0)
    mb = np.asarray(cols["maskbits"]).astype(np.int64)
    for bit in cuts.reject_maskbits:
        ok &= (mb & (1 << int(bit))) == 0
    if cols.get("gaia_phot_g_mean_mag") is not None:
        gaia = np.asarray(cols["gaia_phot_g_mean_mag"], float)
        ok &= (gaia == 0) | (gaia > cuts.gaia_g_min)
    if cols.get("fibertotflux_z") is not None:
        ztot = np.asarray(cols["fibertotflux_z"], float) / np.asarray(cols["mw_transmission_z"], float)
        ok &= ztot < 10 ** (-0.4 * (cuts.zfibertot_min - 22.5))

    g, r, z, w1 = _mag(f["g"]), _mag(f["r"]), _mag(f["z"]), _mag(f["w1"])
    ok &= z - w1 > cuts.stellar_slope * (r - z) + cuts.stellar_intercept
    ok &= _mag(zfib) < cuts.zfiber_max
    ok &= (g - w1 > cuts.gw1_min) | (r - w1 > cuts.rw1_min)
    ok &= ((r - w1 > cuts.sliding_slope * (w1 - cuts.sliding_w1_pivot)) & (r - w1 > w1 - cuts.sliding_w1_offset)) | (r - w1 > cuts.rw1_override)
    return ok
