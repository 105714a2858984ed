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
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset.fits_quant import QuantGrid
    from ..dataset.storage import StorageOptions


@dataclass
class Cutout:
    """One stamp's pixels.

    image:    float32 [B, S, S], nanomaggies per pixel, bands in the requested order
    invvar:   float32 [B, S, S], 1/nanomaggy^2 (0 where there is no data)
    maskbits: int32 [S, S], DR10 MASKBITS
    ok:       False when the stamp could not be made
    reason:   why not (names the file), None when ok
    brickname: the brick the stamp centre falls in
    note:     remarks that do not make the stamp bad (e.g. "no maskbits file: maskbits set to 0")
    grids:    {"image": [QuantGrid | None per band], "invvar": [...]}: where the pixels sit on
              their file's fpack quantisation (dataset.fits_quant), for lossless compact storage;
              None when unknown (cutout service, failed stamp)
    """

    image: np.ndarray
    invvar: np.ndarray
    maskbits: np.ndarray
    ok: bool = True
    reason: str | None = None
    brickname: str | None = None
    note: str | None = None
    grids: dict[str, list[QuantGrid | None]] | None = None

    @classmethod
    def failed(cls, reason: str, size: int = 64, nbands: int = 3, brickname: str | None = None) -> Cutout:
        """A zero-filled cutout with ``ok=False`` and the given reason."""
        return cls(
            image=np.zeros((nbands, size, size), np.float32),
            invvar=np.zeros((nbands, size, size), np.float32),
            maskbits=np.zeros((size, size), np.int32),
            ok=False,
            reason=reason,
            brickname=brickname,
        )


_READERS: dict = {}


def cutout(
    root: str,
    ra: float,
    dec: float,
    size: int = 64,
    bands: str = "grz",
    *,
    brickname: str | None = None,
    options: StorageOptions | None = None,
    cache_size: int = 8,
) -> Cutout:
    """The size x size stamp at (ra, dec) degrees from the bricks under ``root``.

    image in nanomaggies, invvar in 1/nanomaggy^2, maskbits DR10 bits; ``ok=False`` and a reason
    naming the file when it cannot be made (never raises for bad data). Without ``brickname`` the
    brick is looked up in ``<root>/survey-bricks.fits.gz``. One
    :class:`~darkhaloscope.survey.brick_reader.BrickReader` (LRU of open bricks) is kept per
    (root, S3 endpoint) in this process.
    """
    from .brick_reader import BrickReader

    key = (str(root), getattr(options, "endpoint", ""), getattr(options, "region", ""))
    reader = _READERS.get(key)
    if reader is None:
        reader = _READERS[key] = BrickReader(root, cache_size=cache_size, options=options)
    return reader.cutout(ra, dec, size=size, bands=bands, brickname=brickname)
