"""Read DR10 sweep and Tractor catalogs (FITS, astropy) into canonical lower-case columns.

Column names are matched case-insensitively (DR10 Tractor files are lower-case, sweeps upper-
case). Older releases' names are mapped too: DR8 ``SHAPEDEV_R``/``SHAPEEXP_R`` -> ``shape_r``
(by TYPE), ``Z_PHOT_MEDIAN``/``Z_PHOT_MEAN`` -> ``z_phot``. Columns the LRG cuts and the task
table need are required (a CatalogError names the file and the column); the others are optional
and come back as None, so callers decide (e.g. ``psfsize_*``: the DR8 excerpts have none).
Fluxes are nanomaggies, psfsize arcsec FWHM, psfdepth 1/nanomaggy^2.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import CatalogError, DataFileError

REQUIRED = (
    "release", "brickid", "objid", "ra", "dec", "type",
    "flux_g", "flux_r", "flux_z", "flux_w1",
    "flux_ivar_r", "flux_ivar_z", "flux_ivar_w1",
    "mw_transmission_g", "mw_transmission_r", "mw_transmission_z", "mw_transmission_w1",
    "fiberflux_z", "nobs_g", "nobs_r", "nobs_z", "maskbits",
)
OPTIONAL = (
    "brickname", "bx", "by", "ebv", "brick_primary", "fibertotflux_z", "gaia_phot_g_mean_mag",
    "psfsize_g", "psfsize_r", "psfsize_z", "psfdepth_g", "psfdepth_r", "psfdepth_z",
    "shape_r", "sersic", "z_phot",
    "shape_e1", "shape_e2", "z_spec", "sigma_v",  # population inputs (issue 15; spectroscopy optional)
)
ALIASES = {
    "z_phot": ("z_phot", "z_phot_median", "z_phot_mean"),
}


def _strs(arr) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind == "S":
        a = np.char.decode(a, "ascii", "replace")
    return np.char.strip(a.astype(str))


def read_catalog(source, label: str | None = None) -> dict:
    """Canonical columns of a sweep/Tractor FITS file (path, bytes or binary file object).

    Returns ``{name: array or None}`` for every name in REQUIRED + OPTIONAL plus ``n`` (rows).
    """
    from astropy.io import fits

    label = label or str(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        with fits.open(source, memmap=False) as hdul:
            if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                raise DataFileError(f"catalog {label} has no binary table in HDU 1", path=label)
            data = hdul[1].data
            names = {c.lower(): c for c in data.columns.names}
            raw = {lc: np.array(data[orig]) for lc, orig in names.items()}
    except DataFileError:
        raise
    except Exception as exc:
        raise DataFileError(f"cannot read catalog {label}: {type(exc).__name__}: {exc}", path=label) from None

    n = len(next(iter(raw.values()))) if raw else 0
    out: dict = {"n": n}
    for name in REQUIRED:
        if name not in raw:
            raise CatalogError(f"catalog {label} lacks required column '{name}' (case-insensitive)", path=label, field=name)
        out[name] = raw[name]
    for name in OPTIONAL:
        out[name] = None
        for alias in ALIASES.get(name, (name,)):
            if alias in raw:
                out[name] = raw[alias]
                break
    out["type"] = _strs(out["type"])
    if out["brickname"] is not None:
        out["brickname"] = _strs(out["brickname"])
    if out["shape_r"] is None and "shapedev_r" in raw and "shapeexp_r" in raw:  # DR8 and earlier
        out["shape_r"] = np.where(out["type"] == "DEV", raw["shapedev_r"], raw["shapeexp_r"]).astype(np.float32)
    return out
