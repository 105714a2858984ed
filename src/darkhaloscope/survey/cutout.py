"""Cutouts from DR10 coadd bricks: image, invvar and maskbits for a stamp at (ra, dec).

CONTRACT (other modules depend on it; the survey layer implements it):

    cutout(root, ra, dec, size=64, bands="grz") -> Cutout

``root`` is a local folder, ``s3://bucket/prefix`` or an ``https://`` mirror holding
``coadd/<AAA>/<brick>/legacysurvey-<brick>-{image,invvar}-<band>.fits.fz`` and
``legacysurvey-<brick>-maskbits.fits.fz``. A stamp that cannot be made returns ``ok=False`` and
a ``reason`` (never raises for bad data), with zero-filled arrays of the right shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Cutout:
    """One stamp's pixels.

    image:    float32 [B, S, S], nanomaggies per pixel, bands in the requested order
    invvar:   float32 [B, S, S], 1/nanomaggy^2 (0 where there is no data)
    maskbits: int32 [S, S], DR10 MASKBITS
    ok:       False when the stamp could not be made
    reason:   why not (names the file), None when ok
    brickname: the brick the stamp centre falls in
    """

    image: np.ndarray
    invvar: np.ndarray
    maskbits: np.ndarray
    ok: bool = True
    reason: str | None = None
    brickname: str | None = None

    @classmethod
    def failed(cls, reason: str, size: int = 64, nbands: int = 3, brickname: str | None = None) -> "Cutout":
        """A zero-filled cutout with ``ok=False`` and the given reason."""
        return cls(
            image=np.zeros((nbands, size, size), np.float32),
            invvar=np.zeros((nbands, size, size), np.float32),
            maskbits=np.zeros((size, size), np.int32),
            ok=False,
            reason=reason,
            brickname=brickname,
        )
