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


PHOTOZ_MISSING_BELOW = -1.0  # DR10 photo-z files write -99 where an object has none


def photoz_relpath(sweep_rel: str) -> str:
    """Photo-z file of a sweep, relative to the photo-z folder: ``sweep-X-Y.fits`` -> ``sweep-X-Y-pz.fits``
    (DR10 ``south/sweep/10.1-photo-z/``)."""
    head, _, name = sweep_rel.rpartition("/")
    base = name[:-8] if name.endswith(".fits.gz") else name[:-5]
    return (head + "/" if head else "") + base + "-pz.fits"


def join_photoz(cols: dict, source, label: str, pz_label: str) -> dict:
    """``cols`` with ``z_phot`` = Z_PHOT_MEDIAN of the photo-z file ``source`` (path, bytes or
    file object), joined row by row as DR10 publishes them; -99 becomes NaN.

    The files must have the same number of rows and, where the photo-z file has them, the same
    RELEASE/BRICKID/OBJID in every row; otherwise a CatalogError names both files and the first
    differing row.
    """
    pz = read_table_columns(source, pz_label)
    n = cols["n"]
    if len(next(iter(pz.values()), [])) != n:
        raise CatalogError(f"photo-z file {pz_label} has {len(next(iter(pz.values()), []))} rows, catalog {label} has {n}", path=pz_label)
    for key in ("release", "brickid", "objid"):
        if key in pz:
            bad = np.flatnonzero(np.asarray(pz[key], np.int64) != np.asarray(cols[key], np.int64))
            if bad.size:
                raise CatalogError(f"photo-z file {pz_label} row {int(bad[0])} is not catalog {label}'s ({key} differs)",
                                   path=pz_label, field=key, row=int(bad[0]))
    name = next((a for a in ("z_phot_median", "z_phot_mean") if a in pz), None)
    if name is None:
        raise CatalogError(f"photo-z file {pz_label} lacks Z_PHOT_MEDIAN/Z_PHOT_MEAN", path=pz_label, field="z_phot_median")
    z = np.asarray(pz[name], np.float32)
    out = dict(cols)
    out["z_phot"] = np.where(z > PHOTOZ_MISSING_BELOW, z, np.float32(np.nan)).astype(np.float32)
    return out


def read_table_columns(source, label: str) -> dict[str, np.ndarray]:
    """Every column of HDU 1 of a FITS table, lower-case names (path, bytes or file object)."""
    from astropy.io import fits

    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        with fits.open(source, memmap=False) as hdul:
            data = hdul[1].data
            return {c.lower(): np.array(data[c]) for c in data.columns.names}
    except Exception as exc:
        raise DataFileError(f"cannot read table {label}: {type(exc).__name__}: {exc}", path=label) from None
