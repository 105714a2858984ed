"""Observed colours of a star-forming galaxy at redshift z, from a two-slope SED with a break.

COSMOS templates are single-band (F814W), so their g, r, z magnitudes come from a colour model
that depends on the source's redshift: a star-forming continuum f_lambda ~ lambda^beta with UV
slope ``sed_uv_slope`` (beta ~ -1.8 at z ~ 1-3, Bouwens et al. 2014, ApJ 793, 115) blueward of
4000 A rest frame, a 4000 A / Balmer break of flux ratio ``sed_break`` (D4000 ~ 1.1-1.4 for
young populations, Kauffmann et al. 2003, MNRAS 341, 33) and slope ``sed_red_slope`` redward of
it, attenuated by the mean Lyman-alpha forest (Madau 1995, ApJ 441, 18: tau = 0.0036
(lambda_obs / 1216 A)^3.46) and zero below the Lyman limit. Band effective wavelengths: DECam
g 4800, r 6400, z 9150 A; ACS F814W 8045 A. AB colours: m_X - m_Y = -2.5 log10(f_nu(X) / f_nu(Y)).
"""

from __future__ import annotations

import math

BAND_WAVELENGTH_A = {"g": 4800.0, "r": 6400.0, "i": 8045.0, "z": 9150.0}  # i = ACS F814W
BREAK_A = 4000.0
BREAK_WIDTH_A = 300.0  # the break rises linearly (in log flux) over 3850-4150 A


def f_nu(lambda_rest: float, uv_slope: float, break_ratio: float, red_slope: float) -> float:
    """Relative f_nu of the star-forming SED at rest wavelength ``lambda_rest`` (A), IGM excluded."""
    lam = float(lambda_rest)
    if lam <= 912.0:
        return 0.0
    lo, hi = BREAK_A - BREAK_WIDTH_A / 2, BREAK_A + BREAK_WIDTH_A / 2
    log_blue = (uv_slope + 2.0) * math.log(min(lam, lo) / BREAK_A)
    log_red = math.log(break_ratio) + (red_slope + 2.0) * math.log(max(lam, hi) / BREAK_A)
    if lam <= lo:
        return math.exp(log_blue)
    if lam >= hi:
        return math.exp(log_red)
    w = (lam - lo) / (hi - lo)
    return math.exp((1 - w) * (uv_slope + 2.0) * math.log(lo / BREAK_A) + w * (math.log(break_ratio) + (red_slope + 2.0) * math.log(hi / BREAK_A)))


def igm_transmission(lambda_obs: float, z: float) -> float:
    """Mean Lyman-alpha forest transmission at observed wavelength ``lambda_obs`` (A) for a source at z."""
    if lambda_obs >= 1216.0 * (1.0 + z):
        return 1.0
    return math.exp(-0.0036 * (lambda_obs / 1216.0) ** 3.46)


def observed_f_nu(band: str, z: float, uv_slope: float, break_ratio: float, red_slope: float) -> float:
    """Relative observed f_nu of the SED at redshift ``z`` in ``band`` (one of g, r, i, z)."""
    lam = BAND_WAVELENGTH_A[band]
    return f_nu(lam / (1.0 + z), uv_slope, break_ratio, red_slope) * igm_transmission(lam, z)


def colours_at_redshift(z: float, uv_slope: float, break_ratio: float, red_slope: float) -> dict[str, float]:
    """Mean ``r_minus_i`` (r - F814W), ``g_minus_r`` and ``r_minus_z`` (AB mag) of the SED at ``z``."""
    f = {b: observed_f_nu(b, z, uv_slope, break_ratio, red_slope) for b in "grzi"}
    tiny = 1e-30  # a band below the Lyman limit: very red, finite
    def col(x: str, y: str) -> float:
        return -2.5 * math.log10(max(f[x], tiny) / max(f[y], tiny))
    return {"r_minus_i": col("r", "i"), "g_minus_r": col("g", "r"), "r_minus_z": col("r", "z")}
