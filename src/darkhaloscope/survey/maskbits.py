"""DR10 MASKBITS: bit names and numbers, star-mask radii, and the one rule for a good pixel.

Bits (legacypipe ``py/legacypipe/bits.py``, ``MASKBITS``, DR10.0.0-DR10.1.3 tags; the DR10
catalogue documentation lists the same): 0 NPRIMARY, 1 BRIGHT, 2-4 SATUR_G/R/Z, 5-7
ALLMASK_G/R/Z, 8-9 WISEM1/2, 10 BAILOUT, 11 MEDIUM, 12 GALAXY, 13 CLUSTER, 14 SATUR_I,
15 ALLMASK_I, 16 SUB_BLOB. SUB_BLOB is bit 16, so DR10 maskbits images are int32.

Star masks (legacypipe ``py/legacypipe/reference.py``, ``get_reference_sources`` /
``mask_radius_for_mag``): a Gaia/Tycho-2 star of magnitude ``mag`` gets a MEDIUM mask of radius
R = 1630" x 1.396^(-mag) and, when bright, a BRIGHT mask of radius R / 2.

A pixel is *good* for an optical arc when ``invvar > 0`` and none of the configured bad bits
(``survey.bad_maskbits``) is set: WISE (WISEM1/2), NPRIMARY, BAILOUT and SUB_BLOB do not spoil
an optical pixel, so the default leaves them out (DESIGN 3.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from ..errors import ConfigError

BITS: dict[str, int] = {
    "NPRIMARY": 0, "BRIGHT": 1, "SATUR_G": 2, "SATUR_R": 3, "SATUR_Z": 4,
    "ALLMASK_G": 5, "ALLMASK_R": 6, "ALLMASK_Z": 7, "WISEM1": 8, "WISEM2": 9, "BAILOUT": 10,
    "MEDIUM": 11, "GALAXY": 12, "CLUSTER": 13, "SATUR_I": 14, "ALLMASK_I": 15, "SUB_BLOB": 16,
}
# The optical masks: saturation and all-exposure masks of every optical band, stars, large galaxies, clusters.
DEFAULT_BAD_MASKBITS: tuple[str, ...] = (
    "BRIGHT", "SATUR_G", "SATUR_R", "SATUR_Z", "SATUR_I", "ALLMASK_G", "ALLMASK_R", "ALLMASK_Z", "ALLMASK_I",
    "MEDIUM", "GALAXY", "CLUSTER",
)
MEDIUM_RADIUS_ARCSEC_AT_MAG0 = 1630.0  # arcsec: R(mag) = 1630" x 1.396^(-mag) (reference.py)
MEDIUM_RADIUS_BASE = 1.396


def bit_mask(names: Iterable[str]) -> int:
    """One integer with the bits of ``names`` set (DR10 bit names, any case); unknown names are a ConfigError."""
    out = 0
    for name in names:
        key = str(name).strip().upper()
        if key not in BITS:
            raise ConfigError(f"unknown DR10 maskbit {name!r}; known: {', '.join(BITS)}", field="survey.bad_maskbits")
        out |= 1 << BITS[key]
    return out


DEFAULT_BAD_MASK = bit_mask(DEFAULT_BAD_MASKBITS)


@lru_cache(maxsize=16)
def _bit_mask_of(names: tuple[str, ...]) -> int:
    return bit_mask(names)


def bad_bit_mask(cfg) -> int:
    """The integer bad-bit mask of a Config (``survey.bad_maskbits``), parsed once per list of
    names (it is asked for on every injection)."""
    return _bit_mask_of(tuple(cfg.survey.bad_maskbits))


def unflagged(maskbits: np.ndarray, bad_mask: int = DEFAULT_BAD_MASK) -> np.ndarray:
    """Boolean [S, S]: pixels with none of ``bad_mask``'s bits set (maskbits int [S, S])."""
    return (np.asarray(maskbits).astype(np.int64, copy=False) & int(bad_mask)) == 0


def good_pixel_mask(invvar: np.ndarray, maskbits: np.ndarray, bad_mask: int = DEFAULT_BAD_MASK) -> np.ndarray:
    """Boolean mask of good pixels: ``invvar > 0`` and ``maskbits & bad_mask == 0``.

    invvar (1/nanomaggy^2) [..., S, S] or [S, S]; maskbits int [S, S] (broadcast over leading axes).
    """
    return (np.asarray(invvar) > 0) & unflagged(maskbits, bad_mask)


def medium_radius_arcsec(mag: np.ndarray) -> np.ndarray:
    """MEDIUM star-mask radius (arcsec) of stars of magnitude ``mag``: 1630" x 1.396^(-mag)."""
    return MEDIUM_RADIUS_ARCSEC_AT_MAG0 * MEDIUM_RADIUS_BASE ** (-np.asarray(mag, float))


def bright_radius_arcsec(mag: np.ndarray) -> np.ndarray:
    """BRIGHT star-mask radius (arcsec): half the MEDIUM radius."""
    return 0.5 * medium_radius_arcsec(mag)
