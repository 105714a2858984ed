"""Write coadd files exactly as the Legacy Surveys pipeline writes DR10's, with fitsio.

legacypipe writes every coadd through fitsio (cfitsio) with a compression string per file type
(``py/legacypipe/survey.py``, ``LegacySurveyData.get_compression_args`` /
``get_compression_string``; the same table at tags DR10.0.0 and DR10.1.3, read in the tagged
sources; ``q0`` is fpack's quantisation without dithering, ``qz`` SUBTRACTIVE_DITHER_2, a negative
level an absolute step):

=========  =================================  ==================================================
file       legacypipe string                  meaning
=========  =================================  ==================================================
image      ``[compress R 100,100; qz -1e-4]``  RICE, SUBTRACTIVE_DITHER_2, absolute step 1e-4 nmgy
invvar     ``[compress R 100,100; q0 16]``     RICE, NO_DITHER, step = tile noise / 16
maskbits   ``[compress H 100,100]``            HCOMPRESS scale 0 (lossless), int32
nexp       ``[compress H 100,100]``            HCOMPRESS scale 0 (lossless), int16
depth,     ``[compress G 100,100; qz 0]``      GZIP, floats not quantised
galdepth,
psfsize
=========  =================================  ==================================================

Tiles are 100 x 100 pixels unless the image is not a multiple of 100 and the last tile would be
narrower than 4 pixels (cfitsio cannot compress it): the tile grows by one pixel until it fits
(the same function). The real DR6 brick in shared/data has ZTILE1 = ZTILE2 = 100 and
SUBTRACTIVE_DITHER_2. Dither seeds (ZDITHER0) are fixed per brick and file, so the same config
gives the same bytes (fitsio writes no date or checksum unless asked).

Units: images nanomaggy, invvar 1/nanomaggy^2, depth/galdepth 1/nanomaggy^2, psfsize arcsec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Compression:
    """One DR10 file type's fitsio compression: method, quantisation level and method, dtype."""

    method: str  # fitsio compress= : RICE, HCOMPRESS, GZIP
    qlevel: float | None  # cfitsio quantize level: < 0 absolute step, > 0 noise / q, 0 none
    qmethod: str | None  # NO_DITHER, SUBTRACTIVE_DITHER_2, or None (integer / unquantised data)
    dtype: str  # numpy dtype the file holds


DR10_COMPRESSION: dict[str, Compression] = {
    "image": Compression("RICE", -1e-4, "SUBTRACTIVE_DITHER_2", "float32"),
    "invvar": Compression("RICE", 16.0, "NO_DITHER", "float32"),
    "maskbits": Compression("HCOMPRESS", None, None, "int32"),
    "nexp": Compression("HCOMPRESS", None, None, "int16"),
    "depth": Compression("GZIP", 0.0, None, "float32"),
    "galdepth": Compression("GZIP", 0.0, None, "float32"),
    "psfsize": Compression("GZIP", 0.0, None, "float32"),
}
DR10_TILE = 100  # pixels


def dr10_tile(shape: tuple[int, int], tile: int = DR10_TILE) -> tuple[int, int]:
    """(tile rows, tile columns) legacypipe uses for an image of ``shape`` (rows, columns): 100,
    grown until the last partial tile is 0 or >= 4 pixels wide."""
    out = []
    for n in shape:
        t = tile
        while t <= n and 0 < n % t < 4:
            t += 1
        out.append(t)
    return out[0], out[1]


def _fitsio_header(header) -> list[dict]:
    """astropy Header or dict -> fitsio header records (WCS and brick keywords)."""
    items = header.cards if hasattr(header, "cards") else [(k, v, "") for k, v in dict(header).items()]
    out = []
    for card in items:
        key, value, comment = (card.keyword, card.value, card.comment) if hasattr(card, "keyword") else card
        if key in ("", "COMMENT", "HISTORY"):
            continue
        out.append({"name": key, "value": value, "comment": comment or ""})
    return out


def write_coadd(path: str | Path, data: np.ndarray, kind: str, header=None, dither_seed: int = 1,
                tile: tuple[int, int] | None = None) -> None:
    """Write one coadd image of file type ``kind`` (a key of DR10_COMPRESSION) as legacypipe does.

    dither_seed: ZDITHER0, 1..10000 (image files only). tile: override of the DR10 tile shape
    (rows, columns), for tests and benchmarks of other tilings.
    """
    import fitsio

    comp = DR10_COMPRESSION[kind]
    arr = np.ascontiguousarray(data, dtype=comp.dtype)
    th, tw = tile or dr10_tile(arr.shape)
    kwargs = {"compress": comp.method, "tile_dims": [th, tw]}
    if comp.method == "HCOMPRESS":
        kwargs.update(hcomp_scale=0.0, hcomp_smooth=False)  # lossless
    else:
        kwargs["qlevel"] = comp.qlevel
        if comp.qmethod is not None:
            kwargs["qmethod"] = comp.qmethod
        if comp.qmethod == "SUBTRACTIVE_DITHER_2":
            kwargs["dither_seed"] = int(dither_seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("tmp-" + path.name)
    with fitsio.FITS(str(tmp), "rw", clobber=True) as f:
        f.write(arr, header=_fitsio_header(header) if header is not None else None, **kwargs)
    tmp.replace(path)
